"""The bot's own timetable: birthdays, surveys, the churn recompute and the daily backup, at
shop-local times.

APScheduler's cron triggers run in the shop's time zone, so 10:00 stays 10:00 across daylight
saving changes. Every job is idempotent (what it decides is keyed in the outbox and the flag
table), so catching up after downtime is simply running it again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.clock import Clock
from bot.domain.backups import DailyBackup
from bot.domain.birthdays import BirthdayJob
from bot.domain.churn import ChurnService
from bot.domain.pushes import DeliveryReport, PushDispatcher
from bot.domain.surveys import SurveyService
from bot.program import Program

log = logging.getLogger(__name__)

DISPATCH_EVERY_SECONDS = 30
WIND_DOWN_SECONDS = 10  # one push, with its retries on a timeout, fits well within this
SURVEY_MINUTE = 5  # surveys are considered every hour at hh:05


@dataclass(frozen=True)
class ScheduledJob:
    """One entry of the timetable: what it does (returning how many pushes it queued), when,
    and whether start-up runs it to catch up on a day the bot was down (given the local time)."""

    name: str
    decide: Callable[[], Awaitable[int]]
    trigger: CronTrigger | IntervalTrigger
    catch_up: Callable[[datetime], bool]


def daily_at(hour: int, zone: ZoneInfo) -> CronTrigger:
    return CronTrigger(hour=hour, minute=0, timezone=zone)


def always(_: datetime) -> bool:
    return True


def timetable(
    program: Program,
    zone: ZoneInfo,
    birthdays: BirthdayJob,
    surveys: SurveyService,
    churn: ChurnService,
    backups: DailyBackup,
) -> list[ScheduledJob]:
    """Every job the bot runs on its own. A new job: its module, plus one line here."""
    return [
        ScheduledJob(
            "birthdays",
            birthdays.run,
            daily_at(program.birthday.send_hour, zone),
            lambda local: local.hour >= program.birthday.send_hour,
        ),
        ScheduledJob(
            "surveys", surveys.queue_due, CronTrigger(minute=SURVEY_MINUTE, timezone=zone), always
        ),
        ScheduledJob(
            "churn", churn.recompute_count, daily_at(program.churn.recompute_hour, zone), always
        ),
        ScheduledJob("backup", backups.run, daily_at(backups.hour, zone), backups.missing_today),
    ]


JOB_NAMES = ("birthdays", "surveys", "churn", "backup")


@dataclass(frozen=True)
class JobResult:
    job: str
    queued: int
    delivery: DeliveryReport


class Jobs:
    """The timetable's jobs and the delivery that follows them; one of each runs at a time."""

    def __init__(
        self,
        clock: Clock,
        zone: ZoneInfo,
        jobs: list[ScheduledJob],
        dispatcher: PushDispatcher,
    ) -> None:
        self._clock = clock
        self._zone = zone
        self._dispatcher = dispatcher
        self._deliver_lock = asyncio.Lock()
        self._jobs = {job.name: job for job in jobs}
        assert tuple(self._jobs) == JOB_NAMES, "JOB_NAMES lists the timetable for the command line"

    @property
    def scheduled(self) -> list[ScheduledJob]:
        return list(self._jobs.values())

    async def decide(self, name: str) -> int:
        """Run one job's decisions now (what to send, which flags): how many pushes it queued."""
        queued = await self._jobs[name].decide()
        log.info("job %s queued %d", name, queued)
        return queued

    async def run(self, name: str) -> JobResult:
        """Run one job now, then deliver what it queued."""
        queued = await self.decide(name)
        return JobResult(name, queued, await self.deliver())

    async def deliver(self) -> DeliveryReport:
        async with self._deliver_lock:
            return await self._dispatcher.deliver_due()

    async def wind_down(self) -> None:
        """Let a delivery under way record the push in hand, so that an orderly stop leaves
        none `sending` (which the next start would have to call uncertain)."""
        self._dispatcher.stop_after_current()
        try:
            async with asyncio.timeout(WIND_DOWN_SECONDS), self._deliver_lock:
                pass  # the delivery under way, if any, has returned
        except TimeoutError:
            log.warning("a push was still being sent at shutdown; it will count as uncertain")

    async def catch_up_interrupted(self) -> int:
        """Pushes a crash caught mid-send become `uncertain`: never sent twice."""
        return await self._dispatcher.recover()

    async def catch_up(self) -> None:
        """At start-up: whatever was due earlier today runs now (the jobs never repeat work)."""
        await self.catch_up_interrupted()
        local = self._clock.now().astimezone(self._zone)
        for job in self._jobs.values():
            if job.catch_up(local):
                await self.decide(job.name)


def start_scheduler(jobs: Jobs, zone: ZoneInfo) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone=zone)
    for job in jobs.scheduled:
        scheduler.add_job(
            jobs.run, job.trigger, args=[job.name], id=job.name, max_instances=1, coalesce=True
        )
    scheduler.add_job(
        jobs.deliver,
        IntervalTrigger(seconds=DISPATCH_EVERY_SECONDS),
        id="deliver",
        max_instances=1,
        coalesce=True,
        next_run_time=datetime.now(zone),  # at once: what catch-up queued goes out now
    )
    scheduler.start()
    return scheduler
