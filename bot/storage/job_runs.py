"""The days each scheduled job has run (bot/timetable.py's catch-up reads them)."""

from __future__ import annotations

from datetime import date, datetime

from bot.storage.database import Transaction, from_sql_time, to_sql_time


class JobRuns:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def record(self, job: str, day: date, at: datetime) -> None:
        await self._tx.execute(
            "INSERT INTO job_runs (job, day, ran_at) VALUES (?, ?, ?)"
            " ON CONFLICT (job, day) DO UPDATE SET ran_at = excluded.ran_at",
            (job, day.isoformat(), to_sql_time(at)),
        )

    async def ran_on(self, day: date) -> set[str]:
        rows = await self._tx.fetch_all(
            "SELECT job FROM job_runs WHERE day = ?", (day.isoformat(),)
        )
        return {row["job"] for row in rows}

    async def last(self, job: str) -> datetime | None:
        """When the job last ran, if ever."""
        row = await self._tx.fetch_one(
            "SELECT MAX(ran_at) AS at FROM job_runs WHERE job = ?", (job,)
        )
        return from_sql_time(row["at"]) if row and row["at"] else None
