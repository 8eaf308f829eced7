"""Incoming updates already handled, so that a redelivered one is dropped."""

from __future__ import annotations

from datetime import datetime

from bot.storage.database import Transaction, to_sql_time


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

    async def forget_before(self, moment: datetime) -> None:
        """Telegram keeps an unconfirmed update for 24 hours; older ids need no remembering."""
        await self._tx.execute(
            "DELETE FROM processed_updates WHERE received_at < ?", (to_sql_time(moment),)
        )
