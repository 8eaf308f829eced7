"""Surveys sent, their answers, and who is due one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.storage.database import Row, Transaction, from_sql_time, to_sql_time

_REACHABLE = "c.erased_at IS NULL AND c.unreachable_at IS NULL AND c.surveys_enabled = 1"


@dataclass(frozen=True)
class Survey:
    id: int
    customer_id: int
    kind: str
    sale_id: int | None
    created_at: datetime
    expires_at: datetime
    score: int | None
    answered_at: datetime | None
    reason: str | None
    reason_state: str | None


def _survey(row: Row) -> Survey:
    return Survey(
        id=row["id"],
        customer_id=row["customer_id"],
        kind=row["kind"],
        sale_id=row["sale_id"],
        created_at=from_sql_time(row["created_at"]),
        expires_at=from_sql_time(row["expires_at"]),
        score=row["score"],
        answered_at=from_sql_time(row["answered_at"]) if row["answered_at"] else None,
        reason=row["reason"],
        reason_state=row["reason_state"],
    )


class SurveyRepository:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def due_satisfaction(
        self, bought_before: datetime, bought_after: datetime, quiet_since: datetime
    ) -> list[tuple[int, int]]:
        """(customer id, sale id): the latest purchase in the window of each customer who has
        had no survey since `quiet_since` and was not asked about that sale."""
        rows = await self._tx.fetch_all(
            "SELECT s.customer_id, MAX(s.id) AS sale_id FROM sales s"
            " JOIN customers c ON c.id = s.customer_id"
            " WHERE s.voided_at IS NULL AND s.created_at <= ? AND s.created_at >= ?"
            f" AND {_REACHABLE}"
            " AND NOT EXISTS (SELECT 1 FROM surveys v WHERE v.customer_id = s.customer_id"
            " AND v.created_at >= ?)"
            " GROUP BY s.customer_id ORDER BY s.customer_id",
            (to_sql_time(bought_before), to_sql_time(bought_after), to_sql_time(quiet_since)),
        )
        return [(row["customer_id"], row["sale_id"]) for row in rows]

    async def due_nps(
        self, active_since: datetime, last_nps_before: datetime, quiet_since: datetime
    ) -> list[int]:
        """Customers who bought since `active_since`, were not asked the NPS question since
        `last_nps_before`, and had no survey at all since `quiet_since`."""
        rows = await self._tx.fetch_all(
            "SELECT c.id FROM customers c"
            f" WHERE {_REACHABLE}"
            " AND EXISTS (SELECT 1 FROM sales s WHERE s.customer_id = c.id"
            " AND s.voided_at IS NULL AND s.created_at >= ?)"
            " AND NOT EXISTS (SELECT 1 FROM surveys v WHERE v.customer_id = c.id"
            " AND v.kind = 'nps' AND v.created_at >= ?)"
            " AND NOT EXISTS (SELECT 1 FROM surveys v WHERE v.customer_id = c.id"
            " AND v.created_at >= ?) ORDER BY c.id",
            (to_sql_time(active_since), to_sql_time(last_nps_before), to_sql_time(quiet_since)),
        )
        return [row["id"] for row in rows]

    async def create_many(
        self, wanted: list[tuple[int, str, int | None]], at: datetime, expires_at: datetime
    ) -> list[int]:
        """Surveys for (customer id, kind, sale id) rows in one go; their ids, in order.

        The ids are allocated here: the caller's write transaction holds SQLite's only write
        lock, so nobody else can take the next id between reading the largest and inserting."""
        row = await self._tx.fetch_one("SELECT COALESCE(MAX(id), 0) AS last FROM surveys")
        first = (row["last"] if row else 0) + 1
        ids = list(range(first, first + len(wanted)))
        await self._tx.execute_many(
            "INSERT INTO surveys (id, customer_id, kind, sale_id, created_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                (survey_id, customer_id, kind, sale_id, to_sql_time(at), to_sql_time(expires_at))
                for survey_id, (customer_id, kind, sale_id) in zip(ids, wanted, strict=True)
            ),
        )
        return ids

    async def by_id(self, survey_id: int) -> Survey | None:
        row = await self._tx.fetch_one("SELECT * FROM surveys WHERE id = ?", (survey_id,))
        return _survey(row) if row else None

    async def record_score(self, survey_id: int, score: int, at: datetime) -> bool:
        cursor = await self._tx.execute(
            "UPDATE surveys SET score = ?, answered_at = ?, reason_state = 'awaiting'"
            " WHERE id = ? AND answered_at IS NULL",
            (score, to_sql_time(at), survey_id),
        )
        return cursor.rowcount == 1

    async def awaiting_reason(self, customer_id: int, since: datetime) -> Survey | None:
        row = await self._tx.fetch_one(
            "SELECT * FROM surveys WHERE customer_id = ? AND reason_state = 'awaiting'"
            " AND answered_at >= ? ORDER BY answered_at DESC, id DESC LIMIT 1",
            (customer_id, to_sql_time(since)),
        )
        return _survey(row) if row else None

    async def latest_open(self, customer_id: int, now: datetime) -> Survey | None:
        """The newest survey still waiting for its score."""
        row = await self._tx.fetch_one(
            "SELECT * FROM surveys WHERE customer_id = ? AND answered_at IS NULL"
            " AND expires_at > ? ORDER BY id DESC LIMIT 1",
            (customer_id, to_sql_time(now)),
        )
        return _survey(row) if row else None

    async def close_reason(self, survey_id: int, reason: str | None) -> bool:
        cursor = await self._tx.execute(
            "UPDATE surveys SET reason = ?, reason_state = ? WHERE id = ?"
            " AND reason_state = 'awaiting'",
            (reason, "given" if reason is not None else "skipped", survey_id),
        )
        return cursor.rowcount == 1
