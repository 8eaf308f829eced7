"""Churn risk measured from real purchases and answers, and the satisfaction x relationship map.

Flags: `detractor` (latest NPS 0-6 or satisfaction 1-2), `lapsing` (no purchase for longer than
K times the customer's own typical gap, or than a floor after a single purchase), `lost` (no
purchase for longer than a set number of days). Each clears when its cause goes away; the
history stays.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from bot.clock import Clock
from bot.domain.models import Actor, Coupon, CouponKind, Customer, Identity, Refused
from bot.program import Program
from bot.storage.customers import CustomerRepository
from bot.storage.database import Database
from bot.storage.flags import Flag, FlagRepository
from bot.storage.rewards import CouponRepository
from bot.storage.sales import SalesRepository
from bot.storage.staff import AuditLog

VALUE_WINDOW = timedelta(days=365)
AT_RISK_SHOWN = 20


class Quadrant(StrEnum):
    APOSTLE = "apostle"  # satisfied, strong relationship
    MERCENARY = "mercenary"  # satisfied, weak relationship
    HOSTAGE = "hostage"  # dissatisfied, strong relationship
    TERRORIST = "terrorist"  # dissatisfied, weak relationship


def quadrant_for(satisfied: bool | None, strong: bool) -> Quadrant | None:
    """None while the customer has not told us how satisfied they are."""
    if satisfied is None:
        return None
    if satisfied:
        return Quadrant.APOSTLE if strong else Quadrant.MERCENARY
    return Quadrant.HOSTAGE if strong else Quadrant.TERRORIST


@dataclass(frozen=True)
class AtRisk:
    customer: Customer
    flags: list[Flag]
    value_minor: int
    quadrant: Quadrant | None


@dataclass(frozen=True)
class WinBack:
    customer: Customer
    customer_identity: Identity | None
    coupon: Coupon


class ChurnService:
    def __init__(self, database: Database, clock: Clock, program: Program) -> None:
        self._db = database
        self._clock = clock
        self._program = program

    async def recompute(self, customer_id: int | None = None) -> tuple[int, int]:
        """Raise and clear flags for everyone (the daily run) or one customer: (raised, cleared)."""
        rules = self._program.churn
        async with self._db.transaction() as tx:
            return await FlagRepository(tx).recompute(
                self._clock.now(),
                lapsing_factor=rules.lapsing_gap_factor,
                lapsing_floor_days=rules.lapsing_floor_days,
                lost_after_days=rules.lost_after_days,
                customer_id=customer_id,
            )

    async def flags_of(self, customer: Customer) -> list[Flag]:
        async with self._db.reading() as tx:
            return await FlagRepository(tx).open_for(customer.id)

    async def quadrant_of(self, customer: Customer) -> Quadrant | None:
        async with self._db.reading() as tx:
            answers = await FlagRepository(tx).latest_answers(customer.id)
            visits = await SalesRepository(tx).valid_count(customer.id)
        return self._quadrant(customer, answers, visits, self._clock.now())

    def _quadrant(
        self, customer: Customer, answers: dict[str, int], visits: int, now: datetime
    ) -> Quadrant | None:
        lines = self._program.relationship_map
        verdicts = []
        if "nps" in answers:
            verdicts.append(answers["nps"] >= lines.satisfied_nps_from)
        if "satisfaction" in answers:
            verdicts.append(answers["satisfaction"] >= lines.satisfied_score_from)
        satisfied = all(verdicts) if verdicts else None
        tenure = now - customer.created_at
        strong = visits >= lines.strong_visits_from and tenure >= timedelta(
            days=lines.strong_tenure_days_from
        )
        return quadrant_for(satisfied, strong)

    async def at_risk(self) -> list[AtRisk]:
        """Flagged customers, the most valuable (spend over the last year) first."""
        now = self._clock.now()
        found = []
        async with self._db.reading() as tx:
            flags = FlagRepository(tx)
            for customer_id, value in await flags.at_risk(now - VALUE_WINDOW, AT_RISK_SHOWN):
                customer = await CustomerRepository(tx).by_id(customer_id)
                if customer is None:
                    continue
                answers = await flags.latest_answers(customer_id)
                visits = await SalesRepository(tx).valid_count(customer_id)
                found.append(
                    AtRisk(
                        customer=customer,
                        flags=await flags.open_for(customer_id),
                        value_minor=value,
                        quadrant=self._quadrant(customer, answers, visits, now),
                    )
                )
        return found

    async def send_winback(self, owner: Actor, customer_id: int) -> WinBack | Refused:
        """A win-back coupon for a flagged customer; one per open flag, however many taps."""
        rules = self._program.churn
        now = self._clock.now()
        async with self._db.transaction() as tx:
            customers = CustomerRepository(tx)
            customer = await customers.by_id(customer_id)
            open_flags = await FlagRepository(tx).open_for(customer_id) if customer else []
            if customer is None or not open_flags:
                return Refused("winback_not_flagged")
            key = f"winback:{customer_id}:{min(flag.id for flag in open_flags)}"
            coupon = await CouponRepository(tx).grant(
                customer_id,
                CouponKind.WINBACK,
                percent_off=rules.winback_percent_off,
                free_item=None,
                valid_until=now + timedelta(days=rules.winback_valid_days),
                idempotency_key=key,
                created_by=owner.label,
                at=now,
            )
            if coupon is None:
                return Refused("winback_already_sent")
            await AuditLog(tx).record(
                owner.label, "winback", now, subject=f"coupon:{coupon.id}", customer=customer_id
            )
            return WinBack(customer, await customers.identity_of(customer_id), coupon)
