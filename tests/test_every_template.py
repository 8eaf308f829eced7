"""A tour of every flow in each language: each template must render with what the code gives it.

StrictUndefined makes a template fail on any variable the code did not pass; this tour makes
sure every template is actually rendered, in both languages, by the real handlers.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.app import build_application
from bot.domain.models import Language
from bot.domain.money import Currency
from bot.messages import Messages
from bot.program import Program
from tests.conftest import FakeClock, running, settings_for
from tests.flows import CONSENT_YES, register
from tests.standin import ApiCall, FakeTelegram, api_error

MESSAGES = Path(__file__).parent.parent / "messages"


class RecordingMessages(Messages):
    """The real renderer, noting which templates it rendered."""

    def __init__(self) -> None:
        super().__init__(ZoneInfo("Europe/Madrid"), Currency("EUR", 2, ","))
        self.seen: set[tuple[str, str]] = set()

    def render(self, language: Language, template_name: str, /, **context: Any) -> Any:
        self.seen.add((language.value, template_name))
        return super().render(language, template_name, **context)


def _all_templates(language: str) -> set[str]:
    folder = MESSAGES / language
    names = {str(path.relative_to(folder)).removesuffix(".j2") for path in folder.rglob("*.j2")}
    # labels and commands are read through label() and command_descriptions(); macros by import.
    return {name for name in names if not name.startswith("_")} - {"labels", "commands"}


@pytest.mark.parametrize("language", ["es", "en"])
async def test_every_template_is_rendered_by_the_handlers(
    api: FakeTelegram, clock: FakeClock, program: Program, tmp_path: Path, language: str
) -> None:
    messages = RecordingMessages()
    settings = settings_for(api, tmp_path / "tour.db", default_language=language)
    async with running(build_application(settings, program, clock, messages)):
        ana = api.user(1, "Ana", language)
        await ana.send("/balance")  # not a member yet
        await ana.send("/cancel")  # nothing to cancel
        await ana.send("/nosuchcommand")
        await ana.send("/start")
        await ana.share_contact("+34612345678")  # name expected
        await ana.send(" ")  # empty name
        await ana.send("/x" + "y" * 3)  # unknown command while registering
        await ana.send("a\u0007b")  # invalid name
        await ana.send("n" * 65)  # too long
        await ana.send("Ana")
        await ana.send("123")  # invalid phone
        await ana.share_contact("+34699999999", owner_id=2)  # not her own
        await ana.send("612345678")
        for wrong in ("mañana", "31/02", "24/12/1800"):
            await ana.send(wrong)
        await ana.send("24/12")
        await ana.send("yes")  # consent must be tapped
        _, consent = await api.wait_for(
            lambda call: call.callback_data_or_none(CONSENT_YES[language]) is not None
        )
        await ana.press(consent, CONSENT_YES[language])
        await ana.receive("sendPhoto")
        await ana.send("/cancel")  # after joining: nothing to cancel
        for command in ("/help", "/balance", "/rewards", "/card", "/invite", "/mydata"):
            await ana.send(command)
        # Telegram refuses the photo: the handler fails and the customer hears an apology.
        api.override = lambda call: (
            api_error(400, "Bad Request: IMAGE_PROCESS_FAILED")
            if call.method == "sendPhoto"
            else None
        )
        await ana.send("/card")
        await api.wait_for(
            lambda call: (
                call.chat_id == 1
                and "problems" not in call.text
                and call.method == "sendMessage"
                and ("algo ha fallado" in call.text or "went wrong" in call.text)
            )
        )
        api.override = None
        await ana.send("/notifications")
        _, panel = await api.wait_for(
            lambda call: (
                call.chat_id == 1
                and "inline_keyboard" in call.params.get("reply_markup", "")
                and "notify:" in call.params["reply_markup"]
            )
        )
        await ana.press_data(panel, "notify:promotions:off")
        await ana.send("/language")
        _, choose = await api.wait_for(
            lambda call: call.chat_id == 1 and "language:" in call.params.get("reply_markup", "")
        )
        await ana.press_data(choose, "language:" + language)
        await ana.press_data(choose, "forged")
        await ana.send("/forget")
        _, confirm = await api.wait_for(
            lambda call: call.chat_id == 1 and "forget:" in call.params.get("reply_markup", "")
        )
        await ana.press_data(confirm, "forget:no")
        await ana.press_data(confirm, "forget:yes")

        friend = api.user(2, "Bea", language)
        await friend.send("/start ref_WRONGCODE")
        await friend.send("/cancel")
        await register(friend, consent=False)
        await friend.send("/invite")
        invite = await friend.receive("sendMessage")
        code = invite.text.split("ref_")[1].split()[0]
        await friend.send(f"/start ref_{code}")  # her own link
        newcomer = api.user(3, "Cris", language)
        await newcomer.send(f"/start ref_{code}")
        await newcomer.send("/cancel")
        await friend.send("/start ref_WRONGCODE")  # a member with someone's link
        await friend.send("/help")
        # Updates are handled in order: once the last reply is out, every earlier one was handled.
        await api.wait_for(_help_for_members_to(2))

    rendered = {name for lang, name in messages.seen if lang == language}
    assert _all_templates(language) - rendered == set()


def _help_for_members_to(chat_id: int) -> Callable[[ApiCall], bool]:
    return lambda call: (
        call.chat_id == chat_id and call.method == "sendMessage" and "/forget" in call.text
    )
