"""The bot's own timetable: birthdays, surveys, the churn recompute, the daily backup and the
night's rewrite after erasures, at shop-local times.

APScheduler's cron triggers run in the shop's time zone, so 10:00 stays 10:00 across daylight
saving changes. Every job is idempotent (what it decides is keyed in the outbox and the flag
table), so catching up after downtime is simply running it again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.clock import Clock
from bot.domain import (
    backups,
    birthdays,
    churn,
    digest,
    erasures,
    expiry,
    nudges,
    surveys,
    winback,
)
from bot.domain.pushes import DeliveryReport, PushDispatcher
from bot.errors import DATABASE_ERRORS
from bot.scheduled_job import JobParts, ScheduledJob
from bot.storage.database import Database, long_work
from bot.storage.job_runs import JobRuns

log = logging.getLogger(__name__)

DISPATCH_EVERY_SECONDS = 30
WIND_DOWN_SECONDS = 10  # one push, with its retries on a timeout, fits well within this


# Every job the bot runs on its own. A new job: its module, with a `scheduled(parts)` saying
# what it does and when, plus one line here.
TIMETABLE: dict[str, Callable[[JobParts], ScheduledJob]] = {
    "birthdays": birthdays.scheduled,
    "surveys": surveys.scheduled,
    "churn": churn.scheduled,
    "expiry": expiry.scheduled,
    "winback": winback.scheduled,
    "nudges": nudges.scheduled,
    "digest": digest.scheduled,
    "backup": backups.scheduled,
    erasures.JOB: erasures.scheduled,
}
JOB_NAMES = tuple(TIMETABLE)


def timetable(parts: JobParts) -> dict[str, ScheduledJob]:
    return {name: scheduled(parts) for name, scheduled in TIMETABLE.items()}


class LeftQueued(StrEnum):
    """Why a job run by hand left its messages in the outbox rather than delivering them."""

    BOT_RUNNING = "bot_running"  # the running bot sends them, paced with all it sends
    CHANNEL_UNREACHABLE = "channel_unreachable"  # the bot sends them once it reaches it


@dataclass(frozen=True)
class JobResult:
    job: str
    queued: int
    delivery: DeliveryReport
    left_queued: LeftQueued | None = None


class Jobs:
    """The timetable's jobs and the delivery that follows them; one of each runs at a time."""

    def __init__(
        self,
        clock: Clock,
        zone: ZoneInfo,
        jobs: dict[str, ScheduledJob],
        dispatcher: PushDispatcher,
        database: Database,
    ) -> None:
        self._clock = clock
        self._db = database
        self._zone = zone
        self._dispatcher = dispatcher
        self._deliver_lock = asyncio.Lock()
        self._jobs = jobs
        self._woken = asyncio.Event()

    @property
    def scheduled(self) -> dict[str, ScheduledJob]:
        return dict(self._jobs)

    async def decide(self, name: str) -> int:
        """Run one job's decisions now (what to send, which flags): how many pushes it queued."""
        with long_work():
            queued = await self._jobs[name].decide()
        now = self._clock.now()
        try:
            async with self._db.single_write() as tx:
                await JobRuns(tx).record(name, now.astimezone(self._zone).date(), now)
        except DATABASE_ERRORS as error:  # the job did its work; a restart today runs it again
            log.warning("job %s ran, but its run could not be recorded: %s", name, error)
        log.info("job %s queued %d", name, queued)
        return queued

    async def run(self, name: str) -> JobResult:
        """Run one job now, then deliver what it queued."""
        queued = await self.decide(name)
        return JobResult(name, queued, await self.deliver())

    async def deliver(self) -> DeliveryReport:
        async with self._deliver_lock:
            return await self._dispatcher.deliver_due()

    def wake(self) -> None:
        """Something was queued and committed: deliver now rather than at the next tick."""
        self._woken.set()

    async def deliver_forever(self, stop: asyncio.Event) -> None:
        """The dispatcher: deliver what is due whenever a commit queues messages, and every
        DISPATCH_EVERY_SECONDS for what falls due later (retries, the end of quiet hours)."""
        while not stop.is_set():
            self._woken.clear()
            await self.deliver()
            woken = asyncio.ensure_future(self._woken.wait())
            ticking = asyncio.ensure_future(self._clock.sleep(DISPATCH_EVERY_SECONDS))
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait({woken, ticking, stopping}, return_when=asyncio.FIRST_COMPLETED)
            for waiting in (woken, ticking, stopping):
                waiting.cancel()

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
        try:
            await self.catch_up_interrupted()
        except Exception:  # the dispatcher's next run tries again
            log.exception("could not mark the pushes a crash interrupted; trying at the next run")
        local = self._clock.now().astimezone(self._zone)
        async with self._db.reading() as tx:
            ran_today = await JobRuns(tx).ran_on(local.date())
        for name, job in self._jobs.items():
            if name not in ran_today and job.catch_up(local):
                try:
                    await self.decide(name)
                except Exception:  # the bot starts all the same; the job runs at its hour
                    log.exception("job %s could not catch up at start", name)


class _CancelledAtShutdown(logging.Filter):
    """APScheduler logs a job its shutdown cancels as an error with a traceback; that job's
    work is in the database and resumes at the next start, so it is said in one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], asyncio.CancelledError):
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg = f"{record.getMessage()}: cancelled at shutdown, it resumes at start"
            record.args, record.exc_info = None, None
        return True


_CANCELLED_AT_SHUTDOWN = _CancelledAtShutdown()


def start_scheduler(jobs: Jobs, zone: ZoneInfo) -> AsyncIOScheduler:
    logging.getLogger("apscheduler.executors.default").addFilter(_CANCELLED_AT_SHUTDOWN)
    scheduler = AsyncIOScheduler(timezone=zone)
    for name, job in jobs.scheduled.items():
        scheduler.add_job(
            jobs.run, job.trigger, args=[name], id=name, max_instances=1, coalesce=True
        )
    scheduler.start()
    return scheduler
