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
from bot.storage.database import Database

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
