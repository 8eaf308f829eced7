"""The owner's follow-ups of unhappy customers, opened by a detractor's answer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.storage.database import Row, Transaction, from_sql_time, to_sql_time


@dataclass(frozen=True)
class FollowUp:
    id: int
    customer_id: int
    survey_id: int
    quadrant: str | None
    opened_at: datetime
    outcome: str | None
    closed_at: datetime | None


class FollowUps:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def open(
        self, customer_id: int, survey_id: int, quadrant: str | None, at: datetime
    ) -> None:
        await self._tx.execute(
            "INSERT INTO follow_ups (customer_id, survey_id, quadrant, opened_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (survey_id) DO NOTHING",
            (customer_id, survey_id, quadrant, to_sql_time(at)),
        )

    async def by_id(self, follow_up_id: int) -> FollowUp | None:
        row = await self._tx.fetch_one("SELECT * FROM follow_ups WHERE id = ?", (follow_up_id,))
        return _follow_up(row) if row else None

    async def close(self, follow_up_id: int, outcome: str, by: str, at: datetime) -> bool:
        """False when it was closed already: the second of two taps changes nothing."""
        cursor = await self._tx.execute(
            "UPDATE follow_ups SET outcome = ?, closed_by = ?, closed_at = ?"
            " WHERE id = ? AND closed_at IS NULL",
            (outcome, by, to_sql_time(at), follow_up_id),
        )
        return cursor.rowcount == 1

    async def open_ones(self, limit: int) -> list[FollowUp]:
        """Open follow-ups of customers not erased, oldest first."""
        rows = await self._tx.fetch_all(
            "SELECT f.* FROM follow_ups f JOIN customers c ON c.id = f.customer_id"
            " AND c.erased_at IS NULL WHERE f.closed_at IS NULL ORDER BY f.id LIMIT ?",
            (limit,),
        )
        return [_follow_up(row) for row in rows]

    async def recently_closed(self, since: datetime, limit: int) -> list[FollowUp]:
        rows = await self._tx.fetch_all(
            "SELECT f.* FROM follow_ups f JOIN customers c ON c.id = f.customer_id"
            " AND c.erased_at IS NULL WHERE f.closed_at >= ? ORDER BY f.closed_at DESC LIMIT ?",
            (to_sql_time(since), limit),
        )
        return [_follow_up(row) for row in rows]

    async def actions_since(self, since: datetime, until: datetime) -> list[tuple[int, str]]:
        """(customer, quadrant then) of every map action taken in [since, until): follow-ups
        closed, and offers sent after an answer."""
        rows = await self._tx.fetch_all(
            "SELECT customer_id, quadrant FROM follow_ups WHERE closed_at >= :since"
            " AND closed_at < :until AND quadrant IS NOT NULL"
            " UNION ALL SELECT customer_id, reason FROM promotions WHERE kind = 'map'"
            " AND outcome = 'queued' AND decided_at >= :since AND decided_at < :until",
            {"since": to_sql_time(since), "until": to_sql_time(until)},
        )
        return [(row["customer_id"], row["quadrant"]) for row in rows]


def _follow_up(row: Row) -> FollowUp:
    return FollowUp(
        id=row["id"],
        customer_id=row["customer_id"],
        survey_id=row["survey_id"],
        quadrant=row["quadrant"],
        opened_at=from_sql_time(row["opened_at"]),
        outcome=row["outcome"],
        closed_at=from_sql_time(row["closed_at"]) if row["closed_at"] else None,
    )
