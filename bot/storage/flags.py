"""Churn-risk flags, recomputed in SQL from purchases and survey answers.

The whole recompute is set-based: one statement computes which flags should be open, one
raises the missing ones and one clears those whose cause went away, so 100,000 customers cost
three statements, not 100,000 round trips.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Any

from bot.domain.scores import CUT_OFFS
from bot.storage.database import Transaction, from_sql_time, to_sql_time
from bot.storage.dialect import Dialect

# Each query takes :one, a customer id to look at alone, or NULL for everyone; filtering
# inside keeps a one-customer recompute (after every survey answer) from reading every sale.

# The latest answered survey of each kind per customer.
_LATEST_ANSWERS = """
    SELECT customer_id, kind, score, answered_at FROM (
        SELECT customer_id, kind, score, answered_at, ROW_NUMBER() OVER (
            PARTITION BY customer_id, kind ORDER BY answered_at DESC, id DESC) AS newest
        FROM surveys WHERE answered_at IS NOT NULL
            AND (CAST(:one AS BIGINT) IS NULL OR customer_id = :one)
    ) AS ranked WHERE newest = 1
"""


def _purchases(sql: Dialect) -> str:
    """Each buyer's purchases, days since the last and typical gap, from the totals their row
    keeps (migrations 0023 and 0024): no pass over the sales."""
    return f"""
    SELECT id AS customer_id, visits AS purchases,
           {sql.days(":now")} - {sql.days("last_purchase_at")} AS days_since,
           ({sql.days("last_purchase_at")} - {sql.days("first_purchase_at")})
               / {sql.greatest("visits - 1", "1")} AS average_gap
    FROM customers WHERE visits > 0 AND erased_at IS NULL
        AND (CAST(:one AS BIGINT) IS NULL OR id = :one)
"""


# The satisfaction x relationship map: satisfied when every latest answer clears its line,
# a strong relationship with enough visits and tenure. No answer yet, no place on the map.
QUADRANTS_SQL = f"""
    WITH answers AS ({_LATEST_ANSWERS}),
    mood AS (
        SELECT customer_id, MIN(CASE WHEN kind = 'nps' AND score >= :nps_from THEN 1
                                     WHEN kind <> 'nps' AND score >= :score_from THEN 1
                                     ELSE 0 END) AS satisfied
        FROM answers GROUP BY customer_id),
    placed AS (
        SELECT m.customer_id, m.satisfied,
               c.visits >= :visits_from AND c.created_at <= :tenure_start AS strong
        FROM mood m JOIN customers c ON c.id = m.customer_id AND c.erased_at IS NULL)
    SELECT customer_id,
           CASE WHEN satisfied = 1 THEN CASE WHEN strong THEN 'apostle' ELSE 'mercenary' END
                ELSE CASE WHEN strong THEN 'hostage' ELSE 'terrorist' END END AS quadrant
    FROM placed
"""


@cache
def _desired(sql: Dialect) -> str:
    days_since = sql.whole("p.days_since")
    gap = sql.greatest("p.average_gap", "1")
    return f"""
    WITH answers AS ({_LATEST_ANSWERS}), purchases AS ({_purchases(sql)}),
    people AS (SELECT id FROM customers WHERE erased_at IS NULL
               AND (CAST(:one AS BIGINT) IS NULL OR id = :one))
    -- Unhappy in both surveys is one flag, described by the more recent answer.
    SELECT customer_id, 'detractor' AS flag, details FROM (
        SELECT a.customer_id, {sql.json_object("'survey'", "a.kind", "'score'", "a.score")}
                   AS details,
               ROW_NUMBER() OVER (PARTITION BY a.customer_id
                                  ORDER BY a.answered_at DESC, a.kind) AS newest
        FROM answers a JOIN people ON people.id = a.customer_id
        WHERE (a.kind = 'nps' AND a.score <= :nps_detractor_up_to)
            OR (a.kind = 'satisfaction' AND a.score <= :satisfaction_detractor_up_to)
    ) AS unhappy WHERE newest = 1
    UNION ALL
    SELECT p.customer_id, 'lost', {sql.json_object("'days_since'", days_since)}
    FROM purchases p
    WHERE p.days_since > :lost_after
    UNION ALL
    SELECT p.customer_id, 'lapsing', {
        sql.json_object(
            "'days_since'",
            days_since,
            "'purchases'",
            "p.purchases",
            "'typical_gap'",
            f"CASE WHEN p.purchases > 1 THEN CAST(ROUND({gap}) AS INTEGER) END",
        )
    }
    FROM purchases p
    WHERE p.days_since <= :lost_after AND (
        (p.purchases = 1 AND p.days_since > :floor)
        OR (p.purchases > 1 AND p.days_since > :factor * {gap}))
"""


@dataclass(frozen=True)
class MapLines:
    """Where the satisfaction x relationship map draws its lines (from the program file)."""

    satisfied_nps_from: int
    satisfied_score_from: int
    strong_visits_from: int
    strong_tenure_days_from: int

    def parameters(self, now: datetime, customer_id: int | None) -> dict[str, Any]:
        return {
            "now": to_sql_time(now),
            "one": customer_id,
            "nps_from": self.satisfied_nps_from,
            "score_from": self.satisfied_score_from,
            "visits_from": self.strong_visits_from,
            "tenure_start": to_sql_time(now - timedelta(days=self.strong_tenure_days_from)),
        }


@dataclass(frozen=True)
class Flag:
    id: int
    customer_id: int
    flag: str
    details: dict[str, Any]
    raised_at: datetime
    cleared_at: datetime | None


class FlagRepository:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def recompute(
        self,
        now: datetime,
        *,
        lapsing_factor: Decimal,
        lapsing_floor_days: int,
        lost_after_days: int,
        customer_id: int | None = None,
    ) -> tuple[int, int]:
        """Raise the flags whose cause holds and clear those whose cause went away:
        (raised, cleared). With `customer_id`, only that customer's."""
        parameters = {
            "now": to_sql_time(now),
            "one": customer_id,
            "lost_after": lost_after_days,
            "floor": lapsing_floor_days,
            "factor": float(lapsing_factor),
            **CUT_OFFS,
        }
        await self._tx.execute("DROP TABLE IF EXISTS desired_flags")
        await self._tx.execute(
            "CREATE TEMP TABLE desired_flags (customer_id BIGINT, flag TEXT, details TEXT,"
            " already_open INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (customer_id, flag))"
        )
        await self._tx.execute(
            f"INSERT INTO desired_flags (customer_id, flag, details) {_desired(self._tx.dialect)}",
            parameters,
        )
        # Which are open already, found before any is added: checked while inserting, a
        # planner that believes risk_flags empty (its first run in a shop) scans the table
        # once per flag as it grows, which took PostgreSQL 18 s for 55,000 flags.
        await self._tx.execute(
            "UPDATE desired_flags SET already_open = 1 WHERE EXISTS (SELECT 1 FROM risk_flags f"
            " WHERE f.customer_id = desired_flags.customer_id AND f.flag = desired_flags.flag"
            " AND f.cleared_at IS NULL)"
        )
        raised = await self._tx.execute(
            "INSERT INTO risk_flags (customer_id, flag, details, raised_at)"
            " SELECT customer_id, flag, details, :now FROM desired_flags WHERE already_open = 0",
            parameters,
        )
        cleared = await self._tx.execute(
            "UPDATE risk_flags SET cleared_at = :now WHERE cleared_at IS NULL"
            " AND (CAST(:one AS BIGINT) IS NULL OR customer_id = :one)"
            " AND NOT EXISTS (SELECT 1 FROM"
            " desired_flags d WHERE d.customer_id = risk_flags.customer_id"
            " AND d.flag = risk_flags.flag)",
            parameters,
        )
        await self._tx.execute("DROP TABLE desired_flags")
        return raised.rowcount, cleared.rowcount

    async def open_for(self, customer_id: int) -> list[Flag]:
        rows = await self._tx.fetch_all(
            "SELECT * FROM risk_flags WHERE customer_id = ? AND cleared_at IS NULL ORDER BY id",
            (customer_id,),
        )
        return [_flag(row) for row in rows]

    async def history(self, customer_id: int) -> list[Flag]:
        rows = await self._tx.fetch_all(
            "SELECT * FROM risk_flags WHERE customer_id = ? ORDER BY id", (customer_id,)
        )
        return [_flag(row) for row in rows]

    async def at_risk(self, since: datetime, limit: int) -> list[tuple[int, int]]:
        """(customer id, spend since `since` in minor units) of flagged customers, biggest first."""
        rows = await self._tx.fetch_all(
            "SELECT f.customer_id, COALESCE((SELECT SUM(amount_minor) FROM sales s"
            " WHERE s.customer_id = f.customer_id AND s.voided_at IS NULL AND s.created_at >= ?),"
            " 0) AS value FROM (SELECT DISTINCT customer_id FROM risk_flags"
            " WHERE cleared_at IS NULL) f JOIN customers c ON c.id = f.customer_id"
            " WHERE c.erased_at IS NULL ORDER BY value DESC, f.customer_id LIMIT ?",
            (to_sql_time(since), limit),
        )
        return [(row["customer_id"], int(row["value"])) for row in rows]

    async def quadrants(
        self, now: datetime, lines: MapLines, customer_id: int | None = None
    ) -> dict[int, str]:
        """Customer id -> quadrant name, for everyone placed on the map (or the one asked)."""
        rows = await self._tx.fetch_all(QUADRANTS_SQL, lines.parameters(now, customer_id))
        return {row["customer_id"]: row["quadrant"] for row in rows}

    async def quadrant_counts(self, now: datetime, lines: MapLines) -> dict[str, int]:
        rows = await self._tx.fetch_all(
            f"SELECT quadrant, COUNT(*) AS n FROM ({QUADRANTS_SQL}) AS placed GROUP BY quadrant",
            lines.parameters(now, None),
        )
        return {row["quadrant"]: int(row["n"]) for row in rows}

    async def open_counts(self) -> dict[str, int]:
        """Open flags per kind, over customers who have not been erased."""
        rows = await self._tx.fetch_all(
            "SELECT f.flag, COUNT(*) AS n FROM risk_flags f JOIN customers c"
            " ON c.id = f.customer_id AND c.erased_at IS NULL"
            " WHERE f.cleared_at IS NULL GROUP BY f.flag"
        )
        return {row["flag"]: int(row["n"]) for row in rows}


def _flag(row: Any) -> Flag:
    return Flag(
        id=row["id"],
        customer_id=row["customer_id"],
        flag=row["flag"],
        details=json.loads(row["details"]),
        raised_at=from_sql_time(row["raised_at"]),
        cleared_at=from_sql_time(row["cleared_at"]) if row["cleared_at"] else None,
    )
