"""The member's control over their data and what they receive: /language, /notifications
(and `baja`, offers off in one word), /mydata, /forget, and /link (a number that wrote on
another app is theirs too)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Literal

from bot.conversation.replies import Document, Option, Reply, one_row, rows
from bot.conversation.router import MEMBER, Router
from bot.conversation.turn import Turn
from bot.domain.models import ConsentTopic, Customer
from bot.domain.models import Language as Languages
from bot.taps import ForgetButton, LanguageButton, NotificationsButton

router = Router()


@router.command("language", needs=MEMBER)
async def language(turn: Turn) -> AsyncIterator[Reply]:
    assert turn.member is not None
    options = [
        Option(turn.label("language_name", option), LanguageButton(option)) for option in Languages
    ]
    yield Reply("language/choose", turn.member.language, options=one_row(*options))


@router.tap(LanguageButton, needs=MEMBER)
async def language_chosen(turn: Turn) -> AsyncIterator[Reply]:
    assert isinstance(turn.tap, LanguageButton) and turn.member is not None
    chosen = turn.tap.language
    await turn.services.membership.set_language(turn.member, chosen)
    yield Reply("language/changed", chosen, replaces_prompt=True)


def _notifications(turn: Turn, member: Customer, *, tapped: bool = False) -> Reply:
    """What the member receives, with a tap to turn each kind on or off."""
    options = []
    for topic, enabled in (
        (ConsentTopic.PROMOTIONS, member.promotions_consent),
        (ConsentTopic.SURVEYS, member.surveys_enabled),
    ):
        action: Literal["on", "off"] = "off" if enabled else "on"
        label = turn.label(f"{topic.value}_turn_{action}", member.language)
        options.append(Option(label, NotificationsButton(topic, action)))
    return Reply(
        "notifications",
        member.language,
        {"promotions": member.promotions_consent, "surveys": member.surveys_enabled},
        options=rows(options),
        replaces_prompt=tapped,
    )


@router.command("notifications", needs=MEMBER)
async def notifications(turn: Turn) -> AsyncIterator[Reply]:
    assert turn.member is not None
    yield _notifications(turn, turn.member)


@router.tap(NotificationsButton, needs=MEMBER)
async def notifications_toggled(turn: Turn) -> AsyncIterator[Reply]:
    assert isinstance(turn.tap, NotificationsButton) and turn.member is not None
    membership = turn.services.membership
    await membership.set_consent(turn.member, turn.tap.topic, turn.tap.action == "on")
    updated = await membership.member(turn.said.person)
    if updated is not None:
        yield _notifications(turn, updated, tapped=True)


@router.command("stop", needs=MEMBER)
async def stop(turn: Turn) -> AsyncIterator[Reply]:
    """No more offers, in one word (WhatsApp's `baja`)."""
    assert turn.member is not None
    await turn.services.membership.set_consent(turn.member, ConsentTopic.PROMOTIONS, False)
    yield Reply("whatsapp/stopped", turn.member.language)


@router.command("mydata", needs=MEMBER)
async def my_data(turn: Turn) -> AsyncIterator[Reply]:
    member = turn.member
    assert member is not None
    quadrant = await turn.services.churn.quadrant_of(member)
    data = await turn.services.membership.personal_data(
        member, quadrant.value if quadrant else None
    )
    content = json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8")
    yield Reply("mydata", member.language, document=Document("my-data.json", content))


@router.command("forget", needs=MEMBER)
async def forget(turn: Turn) -> AsyncIterator[Reply]:
    assert turn.member is not None
    language = turn.member.language
    yield Reply(
        "forget/confirm",
        language,
        options=rows(
            [
                turn.option("forget_confirm", ForgetButton("yes"), language),
                turn.option("forget_keep", ForgetButton("no"), language),
            ]
        ),
    )


@router.tap(ForgetButton, needs=MEMBER)
async def forget_answered(turn: Turn) -> AsyncIterator[Reply]:
    assert isinstance(turn.tap, ForgetButton) and turn.member is not None
    template = "forget/kept"
    if turn.tap.answer == "yes":
        await turn.services.membership.forget(turn.member, turn.said.person)
        template = "forget/done"
    yield Reply(template, turn.member.language, closes_prompt=True, clears_suggestions=True)


@router.command("link", needs=MEMBER)
async def link(turn: Turn) -> AsyncIterator[Reply]:
    assert turn.member is not None
    linked = await turn.services.membership.accept_link(turn.member)
    yield Reply("whatsapp/link_done" if linked else "whatsapp/link_none", turn.member.language)
