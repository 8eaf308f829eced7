"""Whole conversations that several tests need, played through the stand-in like a person would."""

from __future__ import annotations

from tests.standin import ApiCall, ChatUser

CONSENT_YES = {"es": "Sí", "en": "Yes"}
CONSENT_NO = {"es": "No", "en": "No"}


async def register(
    user: ChatUser,
    *,
    name: str | None = None,
    phone: str | None = "+34 612 345 678",
    birthday: str | None = "24/12/1990",
    consent: bool = True,
    start: str = "/start",
) -> ApiCall:
    """Join with the given answers (None skips a step); returns the member card the bot sent."""
    language = user.language_code if user.language_code in ("es", "en") else "es"
    await user.send(start)
    await user.receive_containing("1/4")
    await user.send(name or user.first_name)
    phone_question = await user.receive_containing("2/4")
    if phone is None:
        await user.send(_skip_label(phone_question))
    else:
        await user.share_contact(phone)
    birthday_question = await user.receive_containing("3/4")
    await user.send(birthday if birthday is not None else _skip_label(birthday_question))
    consent_question = await user.receive_containing("4/4")
    label = CONSENT_YES[language] if consent else CONSENT_NO[language]
    await user.press(consent_question, label)
    return await user.receive("sendPhoto")


def _skip_label(question: ApiCall) -> str:
    labels = [button["text"] for button in question.keyboard_buttons() if "⏭" in button["text"]]
    assert labels, f"no skip button under {question.text!r}"
    return str(labels[0])
