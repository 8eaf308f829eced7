"""Incoming updates already handled, so that a redelivered one is dropped."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from bot.storage.database import Transaction, to_sql_time

if TYPE_CHECKING:  # the outbox is built on the database module, as this one is
    from bot.storage.outbox import OutboxItem

log = logging.getLogger(__name__)


class AlreadyHandled(Exception):
    """The update was handled (and recorded) while this delivery of it was under way."""


class ProcessedUpdates:
    """Remembers which incoming updates were handled, so a redelivered one is dropped."""

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def claim(self, channel: str, update_id: int, at: datetime) -> bool:
        cursor = await self._tx.execute(
            "INSERT INTO processed_updates (channel, update_id, received_at) VALUES (?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            (channel, update_id, to_sql_time(at)),
        )
        return cursor.rowcount == 1

    async def handled(self, channel: str, update_id: int) -> bool:
        row = await self._tx.fetch_one(
            "SELECT 1 FROM processed_updates WHERE channel = ? AND update_id = ?",
            (channel, update_id),
        )
        return row is not None

    async def highest(self, channel: str) -> int:
        row = await self._tx.fetch_one(
            "SELECT COALESCE(MAX(update_id), 0) AS highest FROM processed_updates"
            " WHERE channel = ?",
            (channel,),
        )
        return int(row["highest"]) if row else 0

    async def forget_before(self, moment: datetime) -> None:
        """Telegram keeps an unconfirmed update for 24 hours; older ids need no remembering."""
        await self._tx.execute(
            "DELETE FROM processed_updates WHERE received_at < ?", (to_sql_time(moment),)
        )


class UpdateClaim:
    """Marks one update as handled in the same commit as the first change it causes, so a
    crash either keeps both or loses both (and the update, delivered again, is handled again)."""

    def __init__(self, channel: str, update_id: int, at: datetime) -> None:
        self.channel = channel
        self.update_id = update_id
        self._at = at
        self.recorded = False
        self.after_commit: list[OutboxItem] = []  # its commit's messages, sent once handled

    async def join(self, tx: Transaction) -> None:
        if self.recorded:
            _second_commit(self)
            return
        if not await ProcessedUpdates(tx).claim(self.channel, self.update_id, self._at):
            raise AlreadyHandled(f"{self.channel} update {self.update_id}")

    def committed(self, tx: Transaction) -> None:
        self.recorded = True
        self.after_commit.extend(tx.after_commit)


class SecondCommit(Exception):
    """An update's handling committed twice: a crash between the two commits would keep the
    first change and, the update being recorded as handled, lose the second."""


# Tests turn this on (tests/conftest.py), so that handling that commits twice fails there; a
# running bot logs it instead, as failing the update after its first commit would lose more.
STRICT_ONE_COMMIT = False


def _second_commit(claim: UpdateClaim) -> None:
    message = f"{claim.channel} update {claim.update_id} committed a second time"
    if STRICT_ONE_COMMIT:
        raise SecondCommit(message)
    log.error("%s: one unit of work per update", message)
