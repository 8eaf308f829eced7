"""Permission marketing in one place: every promotional push (birthday, win-back, nudge, map
action, campaign) is decided here, only for customers who accepted offers, and never past the
contact cap of the program file: at most N in any 7 days.

Two shapes, one set of rules (stated once, in SQL: bot/storage/promotions.py): `promote`
weighs a list of promotions, each with its own message (a birthday greeting by name, a
campaign); `promote_chosen` weighs everyone a job chose in the database (the automatic
win-back, thousands with one message), so that no Python object is made per customer.

The stated rule for what the cap holds back: it is dropped, not postponed (a late offer reads
as noise), and recorded as `capped`, so /customer shows what was not sent and why. A coupon the
message carried stays in the customer's /rewards. Quiet hours only delay (bot/domain/contact.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.domain.contact import CAP_WINDOW, PROMOTIONAL_KINDS
from bot.domain.models import Customer
from bot.domain.pushes import PushMessage
from bot.program import Contact
from bot.storage.database import Transaction
from bot.storage.outbox import NewPush, OutboxRepository
from bot.storage.promotions import PromotionRepository, Proposed


@dataclass(frozen=True)
class Promotion:
    customer: Customer
    kind: str  # one of PROMOTIONAL_KINDS
    key: str  # once per key, whatever happens to it
    message: PushMessage
    reason: str  # why this customer, in a word or two: "lapsing", "campaign:3", ...


@dataclass
class Promoted:
    queued: int = 0
    capped: int = 0
    without_consent: int = 0


async def promote(
    tx: Transaction, promotions: list[Promotion], at: datetime, contact: Contact
) -> Promoted:
    """Queue these promotions (of one kind) in the outbox, in order, as consent and the
    cap allow; keys decided before are skipped. Many at once cost a handful of statements."""
    if not promotions:
        return Promoted()
    kind = promotions[0].kind
    assert kind in PROMOTIONAL_KINDS and all(p.kind == kind for p in promotions), kind
    decided = await PromotionRepository(tx).decide(
        [Proposed(p.customer.id, p.reason, p.key) for p in promotions],
        kind,
        at,
        at - CAP_WINDOW,
        contact.promotions_per_week,
    )
    pushes = [
        NewPush(p.customer.id, kind, p.key, p.message.template, p.message.payload())
        for p in promotions
        if p.key in decided.queued
    ]
    await OutboxRepository(tx).enqueue_many(pushes, at)
    return Promoted(len(pushes), decided.capped, decided.without_consent)


async def promote_chosen(
    tx: Transaction, kind: str, message: PushMessage, at: datetime, contact: Contact
) -> Promoted:
    """Queue `message` to everyone PromotionRepository.choose wrote down, as consent and the
    cap allow; keys decided before are skipped."""
    assert kind in PROMOTIONAL_KINDS, kind
    decided = await PromotionRepository(tx).decide_chosen(
        kind, at, at - CAP_WINDOW, contact.promotions_per_week
    )
    queued = await OutboxRepository(tx).enqueue_selected(
        decided.queued, kind, message.template, message.payload(), at
    )
    return Promoted(queued, decided.capped, decided.without_consent)
