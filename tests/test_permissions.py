"""The core decides who may do what, from one table (bot/domain/permissions.py): each action,
each role, a person on either app. A refusal is audited; an allowed role is never told "not
allowed" (its request may still be refused for what it asks, here dummy arguments)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from bot.bootstrap import Services
from bot.domain.models import Actor, Identity, Refused, Role
from bot.domain.permissions import MAY, NOT_ALLOWED, Action
from tests.conftest import RunningBot

Attempt = Callable[[Services, Actor], Awaitable[object]]

ATTEMPTS: dict[Action, Attempt] = {
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


def test_every_action_of_the_table_has_an_attempt_here() -> None:
    assert set(ATTEMPTS) == set(MAY) == set(Action)


@pytest.mark.parametrize("channel", ["telegram", "whatsapp"])
@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("action", list(Action))
async def test_the_core_refuses_and_audits_exactly_what_the_table_forbids(
    bot: RunningBot, action: Action, role: Role, channel: str
) -> None:
    user_id = "50" if channel == "telegram" else "34699000111"
    actor = Actor(Identity(channel, user_id), role)
    outcome = await ATTEMPTS[action](bot.services, actor)
    async with bot.services.database.reading() as tx:
        audited = await tx.fetch_all(
            "SELECT actor FROM audit_log WHERE action = 'refused' AND subject = ?",
            (action.value,),
        )
    if role in MAY[action]:
        assert outcome != NOT_ALLOWED and audited == []
    else:
        assert isinstance(outcome, Refused) and outcome == NOT_ALLOWED
        assert [row["actor"] for row in audited] == [actor.label]
