"""What a scheduled job is: what it does, when (in shop-local time), and whether start-up runs
it to catch up on a day the bot was down. Each job's module says so in a `scheduled(parts)`;
bot/timetable.py lists them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.clock import Clock
from bot.config import Settings
from bot.program import Program
from bot.storage.customers import CustomerRepository
from bot.storage.database import Database

# The customers (by id) one transaction of a job over all of them covers: such a job holds the
# shop's write lock, and expiry's first run at 100,000 customers done at once held every sale
# back for 3 s; in slices, a sale waits for one slice at most.
CUSTOMERS_AT_ONCE = 5_000

if TYPE_CHECKING:  # services that are also jobs; they import this module
    from bot.domain.churn import ChurnService
    from bot.domain.staff import StaffService
    from bot.domain.surveys import SurveyService


@dataclass(frozen=True)
class ScheduledJob:
    """`decide` returns how many pushes it queued; `catch_up` is given the local time, and a
    start runs the job when it says so and the job has not run yet that local day."""

    decide: Callable[[], Awaitable[int]]
    trigger: CronTrigger | IntervalTrigger
    catch_up: Callable[[datetime], bool]

    @classmethod
    def daily(cls, decide: Callable[[], Awaitable[int]], hour: int, zone: ZoneInfo) -> ScheduledJob:
        """Daily at `hour`; a start after that hour catches up on the day's run."""
        return cls(decide, daily_at(hour, zone), lambda local: local.hour >= hour)


@dataclass(frozen=True)
class JobParts:
    """What a job may be built from."""

    settings: Settings
    program: Program
    clock: Clock
    zone: ZoneInfo
    database: Database
    churn: ChurnService
    surveys: SurveyService
    staff: StaffService


def daily_at(hour: int, zone: ZoneInfo) -> CronTrigger:
    return CronTrigger(hour=hour, minute=0, timezone=zone)


def always(_: datetime) -> bool:
    return True


async def customer_slices(database: Database) -> list[tuple[int, int]]:
    """The customers' ids in spans (first, last) of CUSTOMERS_AT_ONCE, as they stand now (one
    who joins meanwhile has nothing a job could owe them yet)."""
    async with database.reading() as tx:
        last = await CustomerRepository(tx).last_id()
    return [
        (first, first + CUSTOMERS_AT_ONCE - 1) for first in range(1, last + 1, CUSTOMERS_AT_ONCE)
    ]
