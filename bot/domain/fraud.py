"""Alerts to the owners about sales that look wrong, in the transaction of the sale or void
that sets them off: one customer with N sales in a day (5 by default, as Square does), a staff
member voiding more than N sales in a day, a sale far above the shop's usual (median) ticket.
Each alert goes once (per customer or staff member and day, per sale) and is written in the
audit log, where the daily digest counts them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.domain.models import Actor, Customer, Identity, Language, Sale
from bot.domain.notices import customer_facts, tell_person
from bot.program import Program
from bot.storage.database import Transaction
from bot.storage.fraud import FraudReadings
from bot.storage.staff import AuditLog

USUAL_TICKET_DAYS = 90
SYSTEM_ACTOR = "system:fraud"

OwnersIn = Callable[[Transaction], Awaitable[dict[Identity, Language]]]


class FraudWatch:
    def __init__(self, program: Program, zone: ZoneInfo, owners_in: OwnersIn) -> None:
        self._rules = program.fraud
        self._zone = zone
        self._owners_in = owners_in
        self._median: tuple[date, int | None] | None = None  # worked out once a day

    def day_start(self, now: datetime) -> datetime:
        """The start of the shop's local day: "a day" for the counts below."""
        return self._start_of(now.astimezone(self._zone).date())

    async def after_sale(
        self,
        tx: Transaction,
        sale: Sale,
        sales_today: int,
        customer: Customer,
        staff: Actor,
        now: datetime,
    ) -> None:
        """`sales_today`: the customer's valid sales this local day, this one included."""
        today = now.astimezone(self._zone).date()
        if sales_today >= self._rules.sales_per_customer_per_day:
            await self._alert(
                tx,
                f"fraud:sales:{customer.id}:{today}",
                now,
                customer,
                rule="sales_per_day",
                count=sales_today,
                staff=staff.name or staff.label,
            )
        median = await self._median_ticket(FraudReadings(tx), today)
        if median is not None and sale.amount_minor > self._rules.ticket_multiple * median:
            await self._alert(
                tx,
                f"fraud:ticket:{sale.id}",
                now,
                customer,
                rule="large_ticket",
                amount_minor=sale.amount_minor,
                median_minor=median,
                staff=staff.name or staff.label,
            )

    async def after_void(self, tx: Transaction, actor: Actor, now: datetime) -> None:
        today = now.astimezone(self._zone).date()
        voids = await FraudReadings(tx).voids_since(actor.label, self._start_of(today))
        if voids > self._rules.voids_per_staff_per_day:
            await self._alert(
                tx,
                f"fraud:voids:{actor.label}:{today}",
                now,
                None,
                rule="voids_per_day",
                count=voids,
                staff=actor.name or actor.label,
            )

    async def _alert(
        self,
        tx: Transaction,
        key: str,
        now: datetime,
        customer: Customer | None,
        **facts: Any,
    ) -> None:
        owners = await self._owners_in(tx)
        told = False
        for owner, language in owners.items():
            told |= await tell_person(
                tx,
                owner,
                language,
                f"{key}:{owner.channel}:{owner.user_id}",
                "alerts/fraud",
                now,
                about=customer,
                customer=customer_facts(customer) if customer else None,
                **facts,
            )
        if told:
            await AuditLog(tx).record(SYSTEM_ACTOR, "fraud_alert", now, subject=key, **facts)

    async def _median_ticket(self, readings: FraudReadings, today: date) -> int | None:
        if self._median is None or self._median[0] != today:
            start = self._start_of(today)
            median = await readings.median_ticket(start - timedelta(days=USUAL_TICKET_DAYS), start)
            self._median = (today, median)
        return self._median[1]

    def _start_of(self, day: date) -> datetime:
        return datetime.combine(day, time(0), tzinfo=self._zone)
