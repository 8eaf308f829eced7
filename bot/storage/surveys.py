"""Surveys sent, their answers, and who is due one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.storage.database import Row, Selected, Transaction, from_sql_time, to_sql_time

_REACHABLE = "c.erased_at IS NULL AND c.unreachable_at IS NULL AND c.surveys_enabled = 1"


@dataclass(frozen=True)
class SurveyKey:
    """An outbox key spelled around one id: `prefix` + the id + `suffix`, built in SQL."""

    prefix: str
    suffix: str = ""

    def sql(self, column: str) -> str:
        return f"CAST(:key_prefix AS TEXT) || {column} || CAST(:key_suffix AS TEXT)"

    def parameters(self) -> dict[str, object]:
        return {"key_prefix": self.prefix, "key_suffix": self.suffix}


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

    async def ask_after_purchases(
        self,
        window: tuple[datetime, datetime],
        quiet_since: datetime,
        at: datetime,
        expires_at: datetime,
        key: SurveyKey,
    ) -> Selected:
        """A satisfaction survey about the latest purchase in `window` (from, until) of each
        reachable customer who has had no survey since `quiet_since`, unless its key (by sale)
        was queued before: created in one statement, and returned as the pushes to queue."""
        after = await self._last_id()
        bought_after, bought_before = window
        await self._tx.execute(
            "INSERT INTO surveys (customer_id, kind, sale_id, created_at, expires_at)"
            " SELECT customer_id, 'satisfaction', sale_id, :at, :expires FROM ("
            "SELECT s.customer_id, MAX(s.id) AS sale_id FROM sales s"
            " JOIN customers c ON c.id = s.customer_id"
            " WHERE s.voided_at IS NULL AND s.created_at <= :before AND s.created_at >= :after"
            f" AND {_REACHABLE}"
            " AND NOT EXISTS (SELECT 1 FROM surveys v WHERE v.customer_id = s.customer_id"
            " AND v.created_at >= :quiet_since) GROUP BY s.customer_id) AS due"
            f" WHERE NOT EXISTS (SELECT 1 FROM outbox o WHERE o.dedupe_key = {key.sql('sale_id')})"
            " ORDER BY customer_id",
            {
                **key.parameters(),
                "before": to_sql_time(bought_before),
                "after": to_sql_time(bought_after),
                "quiet_since": to_sql_time(quiet_since),
                "at": to_sql_time(at),
                "expires": to_sql_time(expires_at),
            },
        )
        return self._created_after(after, "satisfaction", key, "sale_id")

    async def ask_nps(
        self,
        active_since: datetime,
        last_nps_before: datetime,
        quiet_since: datetime,
        at: datetime,
        expires_at: datetime,
        key: SurveyKey,
    ) -> Selected:
        """The NPS question for each reachable customer who bought since `active_since`, was
        not asked it since `last_nps_before` and had no survey at all since `quiet_since`,
        unless its key (by customer) was queued before; returned as the pushes to queue."""
        after = await self._last_id()
        await self._tx.execute(
            "INSERT INTO surveys (customer_id, kind, sale_id, created_at, expires_at)"
            " SELECT c.id, 'nps', NULL, :at, :expires FROM customers c"
            f" WHERE {_REACHABLE} AND c.last_purchase_at >= :active_since"
            " AND NOT EXISTS (SELECT 1 FROM surveys v WHERE v.customer_id = c.id"
            " AND v.kind = 'nps' AND v.created_at >= :last_nps_before)"
            " AND NOT EXISTS (SELECT 1 FROM surveys v WHERE v.customer_id = c.id"
            " AND v.created_at >= :quiet_since)"
            f" AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.dedupe_key = {key.sql('c.id')})"
            " ORDER BY c.id",
            {
                **key.parameters(),
                "active_since": to_sql_time(active_since),
                "last_nps_before": to_sql_time(last_nps_before),
                "quiet_since": to_sql_time(quiet_since),
                "at": to_sql_time(at),
                "expires": to_sql_time(expires_at),
            },
        )
        return self._created_after(after, "nps", key, "customer_id")

    async def _last_id(self) -> int:
        row = await self._tx.fetch_one("SELECT COALESCE(MAX(id), 0) AS last FROM surveys")
        return int(row["last"]) if row else 0

    @staticmethod
    def _created_after(after: int, kind: str, key: SurveyKey, keyed_by: str) -> Selected:
        """The surveys just created, as pushes about each. Ids above the largest before are
        this statement's: the job's transaction holds the shop's write lock alone (the only
        work that shares it, a sale, writes no surveys)."""
        return Selected(
            f"SELECT customer_id, {key.sql(keyed_by)} AS dedupe_key, id AS about"
            " FROM surveys WHERE id > :created_after AND kind = :created_kind",
            {**key.parameters(), "created_after": after, "created_kind": kind},
        )

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
