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
from bot.domain.models import Actor, Coupon, CouponKind, Customer, Refused
from bot.domain.notices import coupon_facts, tell_customer
from bot.domain.permissions import Action, permitted
from bot.program import Program
from bot.scheduled_job import JobParts, ScheduledJob
from bot.storage.customers import CustomerRepository
from bot.storage.database import Database, Transaction, long_work
from bot.storage.flags import Flag, FlagRepository, MapLines
from bot.storage.rewards import CouponRepository
from bot.storage.staff import AuditLog

VALUE_WINDOW = timedelta(days=365)
AT_RISK_SHOWN = 20


class Quadrant(StrEnum):
    """Where a customer stands on the satisfaction x relationship map (rules in storage/flags)."""

    APOSTLE = "apostle"  # satisfied, strong relationship
    MERCENARY = "mercenary"  # satisfied, weak relationship
    HOSTAGE = "hostage"  # dissatisfied, strong relationship
    TERRORIST = "terrorist"  # dissatisfied, weak relationship


@dataclass(frozen=True)
class AtRisk:
    customer: Customer
    flags: list[Flag]
    value_minor: int
    quadrant: Quadrant | None


@dataclass(frozen=True)
class WinBack:
    customer: Customer
    coupon: Coupon
    told: bool  # only a customer who accepted offers is sent the coupon


def map_lines(program: Program) -> MapLines:
    lines = program.relationship_map
    return MapLines(
        satisfied_nps_from=lines.satisfied_nps_from,
        satisfied_score_from=lines.satisfied_score_from,
        strong_visits_from=lines.strong_visits_from,
        strong_tenure_days_from=lines.strong_tenure_days_from,
    )


class ChurnService:
    def __init__(self, database: Database, clock: Clock, program: Program) -> None:
        self._db = database
        self._clock = clock
        self._program = program
        self.map_lines = map_lines(program)

    async def recompute(self, customer_id: int | None = None) -> tuple[int, int]:
        """Raise and clear flags for everyone (the daily run) or one customer: (raised, cleared)."""
        async with self._db.transaction() as tx:
            return await self.recompute_in(tx, customer_id)

    async def recompute_in(
        self, tx: Transaction, customer_id: int | None = None
    ) -> tuple[int, int]:
        """The same, inside a unit of work that is under way (a survey answer's)."""
        rules = self._program.churn
        return await FlagRepository(tx).recompute(
            self._clock.now(),
            lapsing_factor=rules.lapsing_gap_factor,
            lapsing_floor_days=rules.lapsing_floor_days,
            lost_after_days=rules.lost_after_days,
            customer_id=customer_id,
        )

    async def recompute_count(self) -> int:
        """The daily run, as the timetable counts it: how many flags it raised."""
        raised, _ = await self.recompute()
        return raised

    async def flags_of(self, customer: Customer) -> list[Flag]:
        async with self._db.reading() as tx:
            return await FlagRepository(tx).open_for(customer.id)

    async def quadrant_of(self, customer: Customer) -> Quadrant | None:
        async with self._db.reading() as tx:
            placed = await FlagRepository(tx).quadrants(
                self._clock.now(), self.map_lines, customer.id
            )
        return Quadrant(placed[customer.id]) if customer.id in placed else None

    async def at_risk(self) -> list[AtRisk]:
        """Flagged customers, the most valuable (spend over the last year) first."""
        with long_work():  # ranks every flagged customer by a year of sales
            async with self._db.reading() as tx:
                return await self._at_risk_in(tx, self._clock.now())

    async def _at_risk_in(self, tx: Transaction, now: datetime) -> list[AtRisk]:
        flags = FlagRepository(tx)
        found = []
        for customer_id, value in await flags.at_risk(now - VALUE_WINDOW, AT_RISK_SHOWN):
            customer = await CustomerRepository(tx).by_id(customer_id)
            if customer is None:
                continue
            placed = await flags.quadrants(now, self.map_lines, customer_id)
            found.append(
                AtRisk(
                    customer=customer,
                    flags=await flags.open_for(customer_id),
                    value_minor=value,
                    quadrant=Quadrant(placed[customer_id]) if customer_id in placed else None,
                )
            )
        return found

    async def send_winback(self, owner: Actor, customer_id: int) -> WinBack | Refused:
        """A win-back coupon for a flagged customer: one per lapse (none since their last
        purchase, automatic or not), however many taps."""
        if refused := await permitted(self._db, self._clock, owner, Action.WINBACK):
            return refused
        rules = self._program.churn
        now = self._clock.now()
        async with self._db.transaction() as tx:
            customers = CustomerRepository(tx)
            customer = await customers.by_id(customer_id)
            open_flags = await FlagRepository(tx).open_for(customer_id) if customer else []
            if customer is None or not open_flags:
                return Refused("winback_not_flagged")
            coupons = CouponRepository(tx)
            if await coupons.winback_since_last_purchase(customer_id):
                return Refused("winback_already_sent")  # the automatic one, or an earlier tap
            key = f"winback:{customer_id}:{min(flag.id for flag in open_flags)}"
            coupon = await coupons.grant(
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
            if customer.promotions_consent:
                await tell_customer(
                    tx,
                    customer,
                    f"coupon:{coupon.id}",
                    "coupons/winback",
                    now,
                    coupon=coupon_facts(coupon),
                )
            return WinBack(customer, coupon, told=customer.promotions_consent)


def scheduled(parts: JobParts) -> ScheduledJob:
    """Daily at the program's hour; a start after that hour catches up on today."""
    hour = parts.program.churn.recompute_hour
    return ScheduledJob.daily(parts.churn.recompute_count, hour, parts.zone)
