"""The daily backup: a consistent copy of the database in the backup folder, the oldest pruned."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.clock import Clock
from bot.scheduled_job import JobParts, ScheduledJob, daily_at
from bot.storage.backups import (
    PRIVATE_FOLDER,
    dated_backup_path,
    make_backup_in_thread,
    prune_backups,
)
from bot.storage.dumps import DUMP, dump

log = logging.getLogger(__name__)
DAILY = "daily"  # pruning keeps the copies made before an upgrade or a restore


class DailyBackup:
    def __init__(
        self,
        clock: Clock,
        zone: ZoneInfo,
        database: Path | str,
        folder: Path,
        keep: int,
        hour: int,
    ) -> None:
        """`database`: the SQLite file, or PostgreSQL's URL (then the copy is pg_dump's)."""
        self._clock = clock
        self._zone = zone
        self._database = database
        self._suffix = DUMP if isinstance(database, str) else ".db"
        self._folder = folder
        self._keep = keep
        self.hour = hour

    async def run(self) -> int:
        """Make today's copy (none when BACKUP_KEEP is 0); it queues no pushes, hence 0."""
        if self._keep == 0:
            return 0
        local = self._clock.now().astimezone(self._zone)
        target = dated_backup_path(self._folder, local, DAILY, self._suffix)
        if isinstance(self._database, str):
            self._folder.mkdir(parents=True, exist_ok=True, mode=PRIVATE_FOLDER)
            backup = await asyncio.to_thread(dump, self._database, target)
        else:
            backup = await make_backup_in_thread(self._database, target)
        removed = prune_backups(self._folder, DAILY, self._keep, self._suffix)
        log.info(
            "backup written to %s (%d bytes); %d old ones removed",
            backup.path,
            backup.size_bytes,
            len(removed),
        )
        return 0

    def missing_today(self, local: datetime) -> bool:
        """For start-up: a machine switched off at night still gets its daily copy."""
        if self._keep == 0:
            return False
        return not any(self._folder.glob(f"loyalty-{local:%Y%m%d}-*-{DAILY}{self._suffix}"))


def scheduled(parts: JobParts) -> ScheduledJob:
    """Daily at BACKUP_HOUR; a start catches up when today's copy is missing."""
    settings = parts.settings
    backup = DailyBackup(
        parts.clock,
        parts.zone,
        settings.postgresql_url or settings.database_path,
        settings.backups,
        settings.backup_keep,
        settings.backup_hour,
    )
    return ScheduledJob(backup.run, daily_at(backup.hour, parts.zone), backup.missing_today)
