"""The birthday gift: a greeting and a personal coupon, on the day or the program's days
ahead of it, once a year, with consent and within the contact cap."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.clock import Clock
from bot.domain.models import CouponKind, Customer
from bot.domain.promotions import Promotion, promote
from bot.domain.pushes import PushMessage
from bot.program import BirthdayGiftKind, Program
from bot.scheduled_job import JobParts, ScheduledJob
from bot.storage.customers import CustomerRepository
from bot.storage.database import Database, Transaction
from bot.storage.rewards import CouponRepository

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
        birthday = now.astimezone(self._zone).date() + timedelta(
            days=self._program.birthday.days_ahead
        )
        promotions = []
        async with self._db.transaction() as tx:
            for customer in await CustomerRepository(tx).consenting_born_around(birthday):
                if customer.birthday is not None and customer.birthday.falls_on(birthday):
                    promotion = await self._gift(tx, customer, birthday, now)
                    if promotion is not None:
                        promotions.append(promotion)
            return (await promote(tx, promotions, now, self._program.contact)).queued

    async def _gift(
        self, tx: Transaction, customer: Customer, birthday: date, now: datetime
    ) -> Promotion | None:
        rules = self._program.birthday
        key = f"birthday:{customer.id}:{birthday.year}"
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
            valid_until=_end_of_day(birthday + timedelta(days=rules.valid_days), self._zone),
            idempotency_key=key,
            created_by=SYSTEM_ACTOR,
            at=now,
        )
        if coupon is None:
            return None  # this year's gift exists already
        message = PushMessage(
            "pushes/birthday",
            {
                "name": customer.name,
                "shop": self._program.shop.name,
                "percent_off": percent,
                "free_item": free_item,
                "valid_until": coupon.valid_until.isoformat(),
                "days_ahead": rules.days_ahead,
            },
        )
        return Promotion(customer, "birthday", key, message, reason="birthday")


def _end_of_day(day: date, zone: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, 23, 59, 59, tzinfo=zone)


def scheduled(parts: JobParts) -> ScheduledJob:
    """Daily at the program's hour; a start after that hour catches up on today."""
    hour = parts.program.birthday.send_hour
    job = BirthdayJob(parts.database, parts.clock, parts.program, parts.zone)
    return ScheduledJob.daily(job.run, hour, parts.zone)
