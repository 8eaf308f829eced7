"""Manual corrections of a balance by the owner: a signed ledger row with a reason, audited."""

from __future__ import annotations

from dataclasses import dataclass

from bot.clock import Clock
from bot.domain.lookup import find_by_code_or_phone
from bot.domain.models import Actor, Customer, LedgerReason, Refused
from bot.domain.notices import tell_customer
from bot.domain.permissions import Action, permitted
from bot.program import Program
from bot.storage.database import Database
from bot.storage.ledger import LedgerRepository
from bot.storage.staff import AuditLog

LARGEST_ADJUSTMENT = 10_000


@dataclass(frozen=True)
class Adjusted:
    customer: Customer
    delta: int
    balance: int
    first_time: bool


class AdjustmentService:
    def __init__(self, database: Database, clock: Clock, program: Program) -> None:
        self._db = database
        self._clock = clock
        self._program = program

    async def adjust(
        self, owner: Actor, customer_query: str, delta: int, reason: str, idempotency_key: str
    ) -> Adjusted | Refused:
        """Add or take points; taking never goes below zero. The key makes a retry harmless."""
        if refused := await permitted(self._db, self._clock, owner, Action.ADJUST):
            return refused
        if delta == 0 or abs(delta) > LARGEST_ADJUSTMENT:
            return Refused("adjustment_out_of_range")
        if not reason.strip():
            return Refused("adjustment_reason_missing")
        now = self._clock.now()
        async with self._db.transaction() as tx:
            found = await find_by_code_or_phone(tx, customer_query, self._program.shop.phone_region)
            if len(found) != 1:
                return Refused("customer_unknown" if not found else "customer_ambiguous")
            customer = found[0]
            ledger = LedgerRepository(tx)
            if delta < 0 and await ledger.balance(customer.id) + delta < 0:
                return Refused("adjustment_below_zero")
            first_time = await ledger.append(
                customer.id,
                delta,
                LedgerReason.ADJUSTMENT,
                actor=owner.label,
                idempotency_key=idempotency_key,
                at=now,
                note=reason.strip()[:200],
            )
            balance = await ledger.balance(customer.id)
            if first_time:
                await AuditLog(tx).record(
                    owner.label,
                    "adjustment",
                    now,
                    subject=f"customer:{customer.id}",
                    points=delta,
                    reason=reason.strip(),
                )
                await tell_customer(
                    tx,
                    customer,
                    idempotency_key,
                    "adjustments/customer",
                    now,
                    delta=delta,
                    balance=balance,
                )
            return Adjusted(customer, delta, balance, first_time)
