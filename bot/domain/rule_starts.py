"""Rules that apply only from the day they are turned on, never to what happened before:
points expiry (points already held count as earned that day) and the automatic win-back
(customers flagged before it was on are left to the owner's /churn)."""

from __future__ import annotations

from datetime import datetime

from bot.program import ExpiryMode, Program
from bot.storage.database import Transaction
from bot.storage.expiry import RuleStarts

EXPIRY = "expiry"
AUTOMATIC_WINBACK = "automatic_winback"


def switched_on(program: Program) -> dict[str, str]:
    """Each such rule that is on, with its settings as they matter for the start date."""
    on = {}
    if program.expiry.mode is not ExpiryMode.OFF:
        on[EXPIRY] = program.expiry.model_dump_json()
    if program.churn.automatic_winback:
        on[AUTOMATIC_WINBACK] = "true"
    return on


async def note_rule_starts(tx: Transaction, program: Program, now: datetime) -> None:
    """At start-up: a rule newly on starts now; a rule turned off is forgotten, so turning it
    on again starts afresh."""
    starts = RuleStarts(tx)
    on = switched_on(program)
    for name in (EXPIRY, AUTOMATIC_WINBACK):
        if name in on:
            await starts.turned_on(name, on[name], now)
        else:
            await starts.turned_off(name)


async def started(tx: Transaction, name: str, now: datetime) -> datetime:
    """When `name` was turned on (now, if this start has not noted it yet)."""
    found = await RuleStarts(tx).since(name)
    return found[0] if found else now
