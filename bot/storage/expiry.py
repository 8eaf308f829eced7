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
    # After months without a purchase: the later of joining and the last purchase (None by
    # lots, which never asks: tens of thousands of times not read are not parsed either).
    last_seen: datetime | None


# The customers holding points (those ids between :first and :last, or only the ones listed
# among them), with what open redemption codes promise to take from them.
_HOLDERS = """
    WITH promised AS (
        SELECT customer_id, SUM(cost) AS points FROM redemptions
        WHERE redeemed_at IS NULL AND expires_at > :now GROUP BY customer_id)
    SELECT c.id AS customer_id, c.balance, COALESCE(p.points, 0) AS promised,
           {last_seen} AS last_seen
    FROM customers c LEFT JOIN promised p ON p.customer_id = c.id
    WHERE c.balance > 0 AND c.erased_at IS NULL
    AND c.id BETWEEN :first AND :last AND {listed}
"""

# What is left of each earning before the horizon once every point spent (kept in the
# customer's row, migration 0025) has been taken from the oldest (first in, first out): those
# due by `:due_before` summed per customer (created_at NULL), later ones one by one.
# CROSS JOIN makes SQLite read the customers first and each one's earnings from the ledger's
# (customer, delta, created_at) index alone; a plain JOIN let it walk the whole ledger by
# customer and look up every row, five times slower (PostgreSQL plans both alike). The
# ledger's own range of customers lets PostgreSQL read a slice's rows from that index rather
# than scan the whole ledger for each slice.
_UNSPENT = """
    WITH earned AS (
        SELECT l.customer_id, l.created_at, l.delta, c.points_spent AS spent,
               SUM(l.delta) OVER (PARTITION BY l.customer_id ORDER BY l.id) AS through
        FROM customers c CROSS JOIN points_ledger l
        WHERE l.customer_id = c.id AND c.balance > 0 AND c.erased_at IS NULL
        AND c.id BETWEEN :first AND :last AND l.customer_id BETWEEN :first AND :last
        AND l.delta > 0 AND l.created_at < :horizon),
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
        customers: tuple[int, int],
    ) -> list[Holding]:
        """Customers with points among the ids `customers` spans (first, last). By lots, only
        those with points earned before `horizon` still unspent, with what is left of those
        earnings: summed for the ones earned before `due_before` (None: none is due yet), one
        by one after."""
        overdue: dict[int, int] = {}
        lots: dict[int, list[tuple[datetime, int]]] = {}
        listed = "TRUE"  # everyone, unless by lots
        first, last = customers
        parameters: dict[str, object] = {"now": to_sql_time(now), "first": first, "last": last}
        if by_lots:
            for row in await self._tx.fetch_all(
                _UNSPENT,
                {
                    "first": first,
                    "last": last,
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
            # Only those with unspent points earned before the horizon: nobody else's can
            # expire or be warned of yet.
            listed = f"c.id IN {self._tx.dialect.listed(':ids')}"
            parameters["ids"] = json.dumps(sorted(overdue.keys() | lots.keys()))
        last_seen = (
            "NULL"
            if by_lots
            else self._tx.dialect.greatest(
                "c.created_at", "COALESCE(c.last_purchase_at, c.created_at)"
            )
        )
        rows = await self._tx.fetch_all(
            _HOLDERS.format(listed=listed, last_seen=last_seen), parameters
        )
        return [
            Holding(
                customer_id=row["customer_id"],
                balance=int(row["balance"]),
                promised=int(row["promised"]),
                overdue=overdue.get(row["customer_id"], 0),
                lots=lots.get(row["customer_id"], []),
                last_seen=from_sql_time(row["last_seen"]) if row["last_seen"] else None,
            )
            for row in rows
        ]
