"""The program file each start ran with, newest last."""

from __future__ import annotations

from datetime import datetime

from bot.storage.database import Transaction, to_sql_time


class ProgramHistory:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def latest(self) -> str | None:
        row = await self._tx.fetch_one("SELECT rules FROM program_history ORDER BY id DESC LIMIT 1")
        return str(row["rules"]) if row else None

    async def record_if_changed(self, rules: str, at: datetime) -> bool:
        if await self.latest() == rules:
            return False
        await self._tx.execute(
            "INSERT INTO program_history (rules, recorded_at) VALUES (?, ?)",
            (rules, to_sql_time(at)),
        )
        return True
