"""The owner's morning digest: yesterday's sales and revenue against the usual day of the four
weeks before, new members, survey answers, new churn flags and fraud alerts; at a set hour,
once a day, to each owner in their language."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.clock import Clock
from bot.domain.notices import tell_person
from bot.domain.staff import StaffService
from bot.program import Program
from bot.scheduled_job import JobParts, ScheduledJob
from bot.storage.database import Database
from bot.storage.insights import InsightsRepository

USUAL_DAYS = 28


class DigestJob:
    def __init__(
        self,
        database: Database,
        clock: Clock,
        program: Program,
        zone: ZoneInfo,
        staff: StaffService,
    ) -> None:
        self._db = database
        self._clock = clock
        self._program = program
        self._zone = zone
        self._staff = staff

    async def run(self) -> int:
        """Yesterday's digest to each owner; how many it queued (none the second time)."""
        if not self._program.digest.enabled:
            return 0
        now = self._clock.now()
        today = now.astimezone(self._zone).date()
        yesterday = today - timedelta(days=1)
        queued = 0
        async with self._db.transaction() as tx:
            day = await InsightsRepository(tx).day(
                self._start_of(yesterday), self._start_of(today), USUAL_DAYS
            )
            for owner, language in (await self._staff.owners_in(tx)).items():
                queued += await tell_person(
                    tx,
                    owner,
                    language,
                    f"digest:{yesterday.isoformat()}:{owner.channel}:{owner.user_id}",
                    "alerts/digest",
                    now,
                    day=yesterday.isoformat(),
                    shop=self._program.shop.name,
                    sales=day.sales,
                    revenue_minor=day.revenue_minor,
                    usual_sales=day.usual_sales,
                    usual_revenue_minor=day.usual_revenue_minor,
                    new_members=day.new_members,
                    answers=day.answers,
                    promoters=day.promoters,
                    detractors=day.detractors,
                    flags_raised=day.flags_raised,
                    alerts=day.alerts,
                )
        return queued

    def _start_of(self, day: date) -> datetime:
        return datetime.combine(day, time(0), tzinfo=self._zone)


def scheduled(parts: JobParts) -> ScheduledJob:
    """Daily at the program's hour; a start after that hour catches up on today's."""
    hour = parts.program.digest.send_hour
    job = DigestJob(parts.database, parts.clock, parts.program, parts.zone, parts.staff)
    return ScheduledJob.daily(job.run, hour, parts.zone)
