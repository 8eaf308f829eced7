"""Erasures finished at night: the tables /forget changed are written anew, so that no erased
bytes stay in the free space of their pages.

/forget erases at once, and SQLite overwrites what it deletes there and then. PostgreSQL only
marks the space of old row versions free (the erasure's VACUUM), which keeps their bytes until
new rows happen to overwrite them; VACUUM FULL clears them but holds each table while it
copies it (3.8 s for a ledger of a million rows), which a counter should not wait for in the
day. So this job rewrites them at BACKUP_HOUR, on a night after someone was erased.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from bot.scheduled_job import JobParts, ScheduledJob
from bot.storage.customers import CustomerRepository
from bot.storage.database import Database
from bot.storage.job_runs import JobRuns

log = logging.getLogger(__name__)
JOB = "erasures"
# An erasure that committed while the last rewrite ran may have missed it: erasures this long
# before the last run count again (at worst, one rewrite more).
OVERLAP = timedelta(hours=1)


class ErasureRewrite:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def run(self) -> int:
        """Rewrite the tables if anyone was erased since the last run; it queues no pushes."""
        async with self._db.reading() as tx:
            last = await JobRuns(tx).last(JOB)
            owed = await CustomerRepository(tx).erased_since(last - OVERLAP if last else None)
        if owed:
            await self._db.rewrite_erased()
            log.info("the tables erasures changed were written anew")
        return 0


def scheduled(parts: JobParts) -> ScheduledJob:
    """Daily at BACKUP_HOUR (night); a start after that hour catches up on the day's."""
    return ScheduledJob.daily(
        ErasureRewrite(parts.database).run, parts.settings.backup_hour, parts.zone
    )
