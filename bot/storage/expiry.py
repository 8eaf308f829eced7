"""What points expiry reads: when a rule was turned on, and the ledger summed per customer."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from bot.storage.database import Transaction, from_sql_time, to_sql_time


class RuleStarts:
    """When a rule that must not apply retroactively was turned on (migration 0014)."""

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def since(self, name: str) -> tuple[datetime, str] | None:
        """When `name` was turned on, and its rules then."""
        row = await self._tx.fetch_one(
            "SELECT since, rules FROM rule_starts WHERE name = ?", (name,)
        )
        return (from_sql_time(row["since"]), str(row["rules"])) if row else None

    async def turned_on(self, name: str, rules: str, at: datetime) -> None:
        await self._tx.execute(
            "INSERT INTO rule_starts (name, rules, since) VALUES (?, ?, ?)"
            " ON CONFLICT (name) DO NOTHING",
            (name, rules, to_sql_time(at)),
        )

    async def turned_off(self, name: str) -> None:
        await self._tx.execute("DELETE FROM rule_starts WHERE name = ?", (name,))


@dataclass(frozen=True)
class Holding:
    """A customer's points as expiry sees them."""

    customer_id: int
    balance: int
    promised: int  # points that open redemption codes will take when confirmed
    # By lots, with spending already taken from the oldest: what is left of the earnings due
    # to expire by now (earned before the moment asked), and of each later one until the
    # horizon (when, how many).
    overdue: int
    lots: list[tuple[datetime, int]]
    last_purchase: datetime | None
    joined: datetime


_HOLDINGS = """
    WITH totals AS (
        SELECT customer_id, SUM(delta) AS balance,
               -SUM(CASE WHEN delta < 0 THEN delta ELSE 0 END) AS spent,
               SUM(CASE WHEN delta > 0 AND created_at < :horizon THEN delta ELSE 0 END)
                   AS earned_before_horizon
        FROM points_ledger WHERE (CAST(:one AS BIGINT) IS NULL OR customer_id = :one)
        GROUP BY customer_id)
    SELECT t.customer_id, t.balance, t.spent, c.created_at AS joined,
           c.last_purchase_at AS last_purchase,
           (SELECT COALESCE(SUM(r.cost), 0) FROM redemptions r
            WHERE r.customer_id = t.customer_id AND r.redeemed_at IS NULL
            AND r.expires_at > :now) AS promised
    FROM totals t JOIN customers c ON c.id = t.customer_id AND c.erased_at IS NULL
    WHERE t.balance > 0 AND (:by_lots = 0 OR t.earned_before_horizon > t.spent)
"""


def _unspent(pairs: str) -> str:
    """What is left of each earning before the horizon once every point spent has been taken
    from the oldest (first in, first out): those due by `:due_before` summed per customer
    (created_at NULL), later ones one by one. `pairs`: customer id -> points spent."""
    return f"""
    WITH spent AS (
        SELECT CAST(key AS BIGINT) AS customer_id, CAST(value AS BIGINT) AS spent
        FROM {pairs}),
    earned AS (
        SELECT l.customer_id, l.created_at, l.delta, s.spent,
               SUM(l.delta) OVER (PARTITION BY l.customer_id ORDER BY l.id) AS through
        FROM spent s JOIN points_ledger l ON l.customer_id = s.customer_id
        WHERE l.delta > 0 AND l.created_at < :horizon),
    unspent AS (
        SELECT customer_id, created_at,
               CASE WHEN through - spent < delta THEN through - spent ELSE delta END AS points
        FROM earned WHERE through > spent)
    SELECT customer_id, NULL AS created_at, SUM(points) AS points FROM unspent
    WHERE created_at < :due_before GROUP BY customer_id
    UNION ALL
    SELECT customer_id, created_at, points FROM unspent WHERE created_at >= :due_before
"""


class ExpiryReadings:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def holdings(
        self,
        now: datetime,
        horizon: datetime,
        due_before: datetime | None,
        *,
        by_lots: bool,
        customer_id: int | None = None,
    ) -> list[Holding]:
        """Customers with points (or the one asked). By lots, only those with points earned
        before `horizon` still unspent, with what is left of those earnings: summed for the
        ones earned before `due_before` (None: none is due yet), one by one after."""
        rows = await self._tx.fetch_all(
            _HOLDINGS,
            {
                "now": to_sql_time(now),
                "horizon": to_sql_time(horizon),
                "one": customer_id,
                "by_lots": int(by_lots),
            },
        )
        spent = {row["customer_id"]: int(row["spent"]) for row in rows}
        overdue: dict[int, int] = {}
        lots: dict[int, list[tuple[datetime, int]]] = {}
        if by_lots and rows:
            for row in await self._tx.fetch_all(
                _unspent(self._tx.dialect.pairs(":spent")),
                {
                    "spent": json.dumps(spent),
                    "horizon": to_sql_time(horizon),
                    # Every stored time sorts after "": nothing is due.
                    "due_before": to_sql_time(due_before) if due_before else "",
                },
            ):
                if row["created_at"] is None:
                    overdue[row["customer_id"]] = int(row["points"])
                else:
                    lots.setdefault(row["customer_id"], []).append(
                        (from_sql_time(row["created_at"]), int(row["points"]))
                    )
        return [
            Holding(
                customer_id=row["customer_id"],
                balance=int(row["balance"]),
                promised=int(row["promised"]),
                overdue=overdue.get(row["customer_id"], 0),
                lots=lots.get(row["customer_id"], []),
                last_purchase=from_sql_time(row["last_purchase"]) if row["last_purchase"] else None,
                joined=from_sql_time(row["joined"]),
            )
            for row in rows
        ]
