"""Who may do what: one table for every channel. A service that acts for the shop's team
asks `permitted` first; a refusal is audited and answered with "not allowed", whichever app
the request came from."""

from __future__ import annotations

import logging
from enum import StrEnum

from bot.clock import Clock
from bot.domain.models import Actor, Refused, Role
from bot.storage.database import Database
from bot.storage.staff import AuditLog

log = logging.getLogger(__name__)


class Action(StrEnum):
    SELL = "sell"
    VOID = "void"  # staff: their own sales of the last 24 hours (sales.py says which)
    REDEEM = "redeem"
    WINBACK = "winback"
    FOLLOW_UP = "follow_up"
    STAFF = "staff"  # inviting and removing
    COUPON = "coupon"
    ADJUST = "adjust"
    CAMPAIGN = "campaign"
    LOOKUP = "lookup"  # a customer's profile, the customers at risk
    STATS = "stats"
    EXPORT = "export"


TEAM = frozenset({Role.OWNER, Role.STAFF})
OWNERS = frozenset({Role.OWNER})

MAY: dict[Action, frozenset[Role]] = {
    Action.SELL: TEAM,
    Action.VOID: TEAM,
    Action.REDEEM: TEAM,
    Action.WINBACK: OWNERS,
    Action.FOLLOW_UP: OWNERS,
    Action.STAFF: OWNERS,
    Action.COUPON: OWNERS,
    Action.ADJUST: OWNERS,
    Action.CAMPAIGN: OWNERS,
    Action.LOOKUP: TEAM,
    Action.STATS: TEAM,
    Action.EXPORT: OWNERS,
}

NOT_ALLOWED = Refused("not_allowed")


async def permitted(
    database: Database, clock: Clock, actor: Actor, action: Action
) -> Refused | None:
    """None when `actor` may; else the refusal, written to the audit log first."""
    if actor.role in MAY[action]:
        return None
    log.warning("refused %s to a %s (see the audit log)", action.value, actor.role.value)
    async with database.transaction() as tx:
        await AuditLog(tx).record(actor.label, "refused", clock.now(), subject=action.value)
    return NOT_ALLOWED
