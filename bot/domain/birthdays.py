"""The birthday gift: a greeting and a personal coupon, on the day, once a year, with consent."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.clock import Clock
from bot.domain.models import CouponKind, Customer
from bot.domain.pushes import PushMessage
from bot.program import BirthdayGiftKind, Program
from bot.storage.customers import CustomerRepository
from bot.storage.database import Database, Transaction
from bot.storage.outbox import NewPush, OutboxRepository
from bot.storage.rewards import CouponRepository
from bot.timetable import JobParts, ScheduledJob, daily_at

SYSTEM_ACTOR = "system:birthdays"


class BirthdayJob:
    def __init__(self, database: Database, clock: Clock, program: Program, zone: ZoneInfo) -> None:
        self._db = database
        self._clock = clock
        self._program = program
        self._zone = zone

    async def run(self) -> int:
        """Queue today's greetings; how many were new. Running again the same day adds none."""
        now = self._clock.now()
        today = now.astimezone(self._zone).date()
        queued = 0
        async with self._db.transaction() as tx:
            for customer in await CustomerRepository(tx).consenting_born_around(today):
                if customer.birthday is not None and customer.birthday.falls_on(today):
                    queued += await self._gift(tx, customer, today, now)
        return queued

    async def _gift(self, tx: Transaction, customer: Customer, today: date, now: datetime) -> int:
        rules = self._program.birthday
        key = f"birthday:{customer.id}:{today.year}"
        percent = rules.percent_off if rules.gift is BirthdayGiftKind.PERCENT else None
        free_item = (
            rules.free_item.get(customer.language)
            if rules.gift is BirthdayGiftKind.FREE_ITEM
            else None
        )
        coupon = await CouponRepository(tx).grant(
            customer.id,
            CouponKind.BIRTHDAY,
            percent_off=percent,
            free_item=free_item,
            valid_until=_end_of_day(today + timedelta(days=rules.valid_days), self._zone),
            idempotency_key=key,
            created_by=SYSTEM_ACTOR,
            at=now,
        )
        if coupon is None:
            return 0  # this year's gift exists already
        message = PushMessage(
            "pushes/birthday",
            {
                "name": customer.name,
                "shop": self._program.shop.name,
                "percent_off": percent,
                "free_item": free_item,
                "valid_until": coupon.valid_until.isoformat(),
            },
        )
        await OutboxRepository(tx).enqueue(
            NewPush(customer.id, "birthday", key, message.template, message.payload()), now
        )
        return 1


def _end_of_day(day: date, zone: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, 23, 59, 59, tzinfo=zone)


def scheduled(parts: JobParts) -> ScheduledJob:
    """Daily at the program's hour; a start after that hour catches up on today."""
    hour = parts.program.birthday.send_hour
    job = BirthdayJob(parts.database, parts.clock, parts.program, parts.zone)
    return ScheduledJob(job.run, daily_at(hour, parts.zone), lambda local: local.hour >= hour)
