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
    spent: int  # every point that ever left: rewards, voids, corrections, expiry
    promised: int  # points that open redemption codes will take when confirmed
    lots: list[tuple[datetime, int]]  # earnings before the horizon asked: when, how many
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
           (SELECT MAX(s.created_at) FROM sales s WHERE s.customer_id = t.customer_id
            AND s.voided_at IS NULL) AS last_purchase,
           (SELECT COALESCE(SUM(r.cost), 0) FROM redemptions r
            WHERE r.customer_id = t.customer_id AND r.redeemed_at IS NULL
            AND r.expires_at > :now) AS promised
    FROM totals t JOIN customers c ON c.id = t.customer_id AND c.erased_at IS NULL
    WHERE t.balance > 0 AND (:by_lots = 0 OR t.earned_before_horizon > t.spent)
"""


class ExpiryReadings:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def holdings(
        self, now: datetime, horizon: datetime, *, by_lots: bool, customer_id: int | None = None
    ) -> list[Holding]:
        """Customers with points (or the one asked). By lots, only those with points earned
        before `horizon` still unspent (first in, first out), with their earnings."""
        rows = await self._tx.fetch_all(
            _HOLDINGS,
            {
                "now": to_sql_time(now),
                "horizon": to_sql_time(horizon),
                "one": customer_id,
                "by_lots": int(by_lots),
            },
        )
        ids = [row["customer_id"] for row in rows]
        lots = await self._lots(ids, horizon) if by_lots else {}
        return [
            Holding(
                customer_id=row["customer_id"],
                balance=int(row["balance"]),
                spent=int(row["spent"]),
                promised=int(row["promised"]),
                lots=lots.get(row["customer_id"], []),
                last_purchase=from_sql_time(row["last_purchase"]) if row["last_purchase"] else None,
                joined=from_sql_time(row["joined"]),
            )
            for row in rows
        ]

    async def _lots(
        self, customer_ids: list[int], horizon: datetime
    ) -> dict[int, list[tuple[datetime, int]]]:
        """Earnings before `horizon`: later ones cannot expire before it, and spending takes
        the oldest first, so what happens until then depends on these alone."""
        found: dict[int, list[tuple[datetime, int]]] = {}
        rows = await self._tx.fetch_all(
            "SELECT customer_id, created_at, delta FROM points_ledger WHERE delta > 0"
            f" AND customer_id IN {self._tx.dialect.listed('?')} AND created_at < ?"
            " ORDER BY customer_id, id",
            (json.dumps(customer_ids), to_sql_time(horizon)),
        )
        for row in rows:
            found.setdefault(row["customer_id"], []).append(
                (from_sql_time(row["created_at"]), int(row["delta"]))
            )
        return found
