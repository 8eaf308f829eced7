"""Points expiry: after months without a purchase, or by lots months after they were earned
(the oldest spent first), with a warning and a last chance before.

The rules: an expiry is a ledger row keyed by customer and day, so it is written once; it never
takes more than the balance less what open redemption codes promise, so it cannot race a
redemption into a negative balance (both run in one serialised transaction); and it is never
retroactive: points held when expiry is turned on count as earned that day (`rule_starts`).
Warnings are account notices, sent without offers consent but not in the quiet hours.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from bot.clock import Clock
from bot.domain.contact import EXPIRY_KIND
from bot.domain.models import LedgerReason
from bot.domain.rule_starts import EXPIRY, started
from bot.program import Expiry, ExpiryMode, Program
from bot.scheduled_job import JobParts, ScheduledJob, customer_slices
from bot.storage.database import Database, Transaction
from bot.storage.expiry import ExpiryReadings, Holding
from bot.storage.ledger import LedgerRepository, LedgerRow
from bot.storage.outbox import NewPush, OutboxRepository

SYSTEM_ACTOR = "system:expiry"
# A member hears about expiry at most once in this long (a regular's points may expire in
# small lots every week): the last chance first, else the news that points went, else the warning.
TOLD_EVERY = timedelta(days=7)


@dataclass(frozen=True)
class ExpiryDue:
    points: int
    on: date  # the local day they expire, at the job's hour


@lru_cache(maxsize=8192)  # many lots share a day: the expiry job asks this for every one
def add_months(day: date, months: int) -> date:
    """The same day `months` later; the month's last day when it is shorter (31 Jan + 1 month
    is 28 or 29 Feb, 29 Feb + 12 months is 28 Feb)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def earned_by(expiring_by: date, months: int) -> date:
    """The last day whose earnings expire on or before `expiring_by`."""
    day = add_months(expiring_by, -months)
    while add_months(day + timedelta(days=1), months) <= expiring_by:
        day += timedelta(days=1)
    return day


def schedule(
    holding: Holding, rules: Expiry, since: datetime, zone: ZoneInfo, today: date
) -> list[ExpiryDue]:
    """When the customer's points expire and how many each time, soonest first (what is
    overdue counted as due today): their points as they stand, whatever open codes promise."""
    if rules.mode is ExpiryMode.INACTIVITY:
        anchor = max(holding.last_seen or since, since)
        on = add_months(anchor.astimezone(zone).date(), rules.months)
        return [ExpiryDue(holding.balance, on)]
    due: dict[date, int] = {today: holding.overdue} if holding.overdue else {}
    for earned_at, points in holding.lots:  # what is left of each later earning
        on = add_months(max(earned_at, since).astimezone(zone).date(), rules.months)
        due[on] = due.get(on, 0) + points
    return [ExpiryDue(points, on) for on, points in sorted(due.items())]


def expiring_now(holding: Holding, dues: list[ExpiryDue], today: date) -> int:
    """What expires today: never what open codes promise, never below zero."""
    overdue = sum(due.points for due in dues if due.on <= today)
    return max(min(overdue, holding.balance - holding.promised), 0)


def next_after(dues: list[ExpiryDue], today: date) -> ExpiryDue | None:
    return next((due for due in dues if due.on > today), None)


class ExpiryService:
    def __init__(self, database: Database, clock: Clock, program: Program, zone: ZoneInfo) -> None:
        self._db = database
        self._clock = clock
        self._rules = program.expiry
        self._zone = zone

    @property
    def on(self) -> bool:
        return self._rules.mode is not ExpiryMode.OFF

    async def next_expiry(self, customer_id: int) -> ExpiryDue | None:
        """The customer's next expiry, for /balance: today's if the job has not run yet."""
        if not self.on:
            return None
        now = self._clock.now()
        today = now.astimezone(self._zone).date()
        async with self._db.reading() as tx:
            since = await started(tx, EXPIRY, now)
            holdings = await ExpiryReadings(tx).holdings(
                now,
                now + timedelta(days=36_600),
                self._due_before(today, since),
                by_lots=self._by_lots,
                customers=(customer_id, customer_id),
            )
        dues = schedule(holdings[0], self._rules, since, self._zone, today) if holdings else []
        return next((due for due in dues if due.on >= today), None)

    async def run(self) -> int:
        """The daily job: expire what is due and tell of what comes; how many messages it
        queued. Running it again the same day changes nothing."""
        if not self.on:
            return 0
        now = self._clock.now()
        today = now.astimezone(self._zone).date()
        async with self._db.reading() as tx:  # set at start-up only: the same for every slice
            since = await started(tx, EXPIRY, now)
        horizon = self._start_of(
            earned_by(today + timedelta(days=self._notice_days), self._rules.months)
            + timedelta(days=1)
        )
        if self._by_lots and since >= horizon:
            return 0  # nothing earned since expiry was turned on can expire this soon
        queued = 0
        for customers in await customer_slices(self._db):
            async with self._db.transaction() as tx:
                queued += await self._run_for(tx, now, since, horizon, customers)
        return queued

    async def _run_for(
        self,
        tx: Transaction,
        now: datetime,
        since: datetime,
        horizon: datetime,
        customers: tuple[int, int],
    ) -> int:
        """The run for the customers whose ids `customers` spans (first, last): what expires
        by now (counted from `since` at the earliest), and what is told of, up to `horizon`."""
        today = now.astimezone(self._zone).date()
        rules = self._rules
        holdings = await ExpiryReadings(tx).holdings(
            now,
            horizon,
            self._due_before(today, since),
            by_lots=self._by_lots,
            customers=customers,
        )
        outbox, ledger = OutboxRepository(tx), LedgerRepository(tx)
        told_lately = await outbox.customers_told_since(EXPIRY_KIND, customers, now - TOLD_EVERY)
        keys = {held.customer_id: f"expiry:{held.customer_id}:{today}" for held in holdings}
        done_today = await ledger.existing_keys(list(keys.values()))
        expiries, pushes = [], []
        for holding in holdings:
            dues = schedule(holding, rules, since, self._zone, today)
            key = keys[holding.customer_id]
            expired = 0 if key in done_today else expiring_now(holding, dues, today)
            if expired:
                expiries.append(LedgerRow(holding.customer_id, -expired, key))
            if holding.customer_id not in told_lately:
                message = self._message(holding, dues, today, expired, key)
                if message is not None:
                    pushes.append(message)
        await ledger.append_many(expiries, LedgerReason.EXPIRY, actor=SYSTEM_ACTOR, at=now)
        known = await outbox.existing_keys([push.dedupe_key for push in pushes])
        await outbox.enqueue_many(pushes, now)
        return sum(push.dedupe_key not in known for push in pushes)

    def _message(
        self, holding: Holding, dues: list[ExpiryDue], today: date, expired: int, key: str
    ) -> NewPush | None:
        """The one expiry message a member may get today: the last chance before points go,
        else the news that points went, else the warning."""
        rules = self._rules
        due = next_after(dues, today)
        days = (due.on - today).days if due else None
        if due and days is not None and rules.last_chance_days and days <= rules.last_chance_days:
            return self._warning(holding, due, days, "last_chance")
        if expired:
            context = {"points": expired, "balance": holding.balance - expired}
            return _push(holding, key, "points/expired", context)
        if due and days is not None and rules.warning_days and days <= rules.warning_days:
            return self._warning(holding, due, days, "warning")
        return None

    def _warning(self, holding: Holding, due: ExpiryDue, days: int, stage: str) -> NewPush:
        key = f"expiry-{stage}:{holding.customer_id}:{due.on.isoformat()}"
        context = {"points": due.points, "on": due.on.isoformat(), "days": days, "stage": stage}
        return _push(holding, key, "points/expiry_warning", context)

    @property
    def _notice_days(self) -> int:
        return max(self._rules.warning_days, self._rules.last_chance_days)

    @property
    def _by_lots(self) -> bool:
        return self._rules.mode is ExpiryMode.LOTS

    def _due_before(self, today: date, since: datetime) -> datetime | None:
        """Earnings before this moment are due to expire by today (None: none yet, as all
        count as earned no earlier than `since`, when expiry was turned on)."""
        cutoff = self._start_of(earned_by(today, self._rules.months) + timedelta(days=1))
        return cutoff if since < cutoff else None

    def _start_of(self, day: date) -> datetime:
        return datetime.combine(day, time(0), tzinfo=self._zone)


def _push(holding: Holding, key: str, template: str, context: Mapping[str, object]) -> NewPush:
    return NewPush(holding.customer_id, EXPIRY_KIND, key, template, {"context": dict(context)})


def scheduled(parts: JobParts) -> ScheduledJob:
    """Daily at the program's hour; a start after that hour catches up on today."""
    hour = parts.program.expiry.send_hour
    job = ExpiryService(parts.database, parts.clock, parts.program, parts.zone)
    return ScheduledJob.daily(job.run, hour, parts.zone)
