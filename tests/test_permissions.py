"""The core decides who may do what, from one table (bot/domain/permissions.py): each action,
each role, a person on either app, asked the way people ask (a command or a tap) through the
core's conversation, which both channels hand every message to. A refusal is audited and
answered "not allowed"; an allowed role is never told so (its request may still be refused
for what it asks, here dummy arguments). The services check the same table themselves."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from bot.bootstrap import Services
from bot.conversation.core import Conversation
from bot.conversation.said import Said, Surface
from bot.domain.models import Actor, Identity, Language, Refused, Role
from bot.domain.permissions import MAY, NOT_ALLOWED, Action
from bot.taps import FollowUpButton, WinbackButton
from tests.conftest import RunningBot

ASKED: dict[Action, tuple[str, str | None]] = {  # (typed, tapped)
    Action.SELL: ("/sale NOBODY 10 1", None),
    Action.VOID: ("/void 999 a mistake", None),
    Action.REDEEM: ("/redeem NOCODE", None),
    Action.WINBACK: ("", WinbackButton(999).pack()),
    Action.FOLLOW_UP: ("", FollowUpButton(999, "called").pack()),
    Action.COUPON: ("/coupon NOBODY 10", None),
    Action.ADJUST: ("/adjust NOBODY +5 why", None),
    Action.CAMPAIGN: ("/broadcast", None),
    Action.STAFF: ("/staff", None),
    Action.LOOKUP: ("/customer Nobody", None),
    Action.STATS: ("/stats", None),
    Action.EXPORT: ("/export", None),
}
PEOPLE = {"telegram": "50", "whatsapp": "34699000111"}
Attempt = Callable[[Services, Actor], Awaitable[object]]
SERVICE_CALLS: dict[Action, Attempt] = {
    Action.SELL: lambda core, actor: core.sales.prepare(actor, "NOBODY", "10", "1"),
    Action.VOID: lambda core, actor: core.sales.void(actor, 999, "a mistake"),
    Action.REDEEM: lambda core, actor: core.rewards.confirm(actor, "NOCODE"),
    Action.WINBACK: lambda core, actor: core.churn.send_winback(actor, 999),
    Action.FOLLOW_UP: lambda core, actor: core.follow_ups.close(actor, 999, "called"),
    Action.COUPON: lambda core, actor: core.rewards.grant_typed(actor, ["NOBODY", "10"], "k"),
    Action.ADJUST: lambda core, actor: core.adjustments.adjust(actor, "NOBODY", 5, "why", "k"),
    Action.CAMPAIGN: lambda core, actor: core.campaigns.start(actor),
    Action.STAFF: lambda core, actor: core.staff.invite(actor),
}


def test_every_action_of_the_table_is_asked_here() -> None:
    assert set(ASKED) == set(MAY) == set(Action)


async def _in_role(
    bot: RunningBot, person: Identity, role: Role, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Owners come from the settings (OWNER_IDS, OWNER_PHONES); staff from an invitation."""
    if role is Role.OWNER:
        monkeypatch.setattr(bot.services.staff, "_owners", frozenset({person}))
    elif role is Role.STAFF:
        owner = Actor(Identity("telegram", "1"), Role.OWNER)
        invite = await bot.services.staff.invite(owner)
        assert not isinstance(invite, Refused)
        accepted = await bot.services.staff.accept(person, invite.token, "Pepe", Language.ES)
        assert not isinstance(accepted, Refused)


async def _refusals(bot: RunningBot, action: Action) -> list[str]:
    async with bot.services.database.reading() as tx:
        rows = await tx.fetch_all(
            "SELECT actor FROM audit_log WHERE action = 'refused' AND subject = ?",
            (action.value,),
        )
    return [row["actor"] for row in rows]


@pytest.mark.parametrize("channel", ["telegram", "whatsapp"])
@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("action", list(Action))
async def test_the_conversation_refuses_and_audits_exactly_what_the_table_forbids(
    bot: RunningBot, action: Action, role: Role, channel: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    person = Identity(channel, PEOPLE[channel])
    await _in_role(bot, person, role, monkeypatch)
    typed, tapped = ASKED[action]
    surface = Surface(channel, channel == "telegram", 10, channel == "whatsapp", lambda p: p)
    said = Said(person, surface, key=f"{channel}:1", text=typed, tap=tapped)
    templates = [reply.template async for reply in Conversation(bot.services).answer(said)]
    refused = "problems/not_allowed" in templates
    if role in MAY[action]:
        assert not refused and await _refusals(bot, action) == []
    else:
        assert templates == ["problems/not_allowed"]
        assert await _refusals(bot, action) == [Actor(person, role).label]


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("action", list(SERVICE_CALLS))
async def test_the_services_hold_to_the_same_table(
    bot: RunningBot, action: Action, role: Role
) -> None:
    actor = Actor(Identity("telegram", "50"), role)
    outcome = await SERVICE_CALLS[action](bot.services, actor)
    if role in MAY[action]:
        assert outcome != NOT_ALLOWED
    else:
        assert outcome == NOT_ALLOWED and await _refusals(bot, action) == [actor.label]
