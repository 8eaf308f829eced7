"""Who an automation writes to, found in SQL over the whole customer base at once: each query
is a few set-based passes, so 100,000 customers and a million sales stay within seconds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.storage.database import Transaction, to_sql_time

# Customers an offer may go to: not erased, reachable, and who accepted offers.
_REACHABLE_CONSENTING = (
    "c.erased_at IS NULL AND c.unreachable_at IS NULL AND c.promotions_consent = 1"
)


@dataclass(frozen=True)
class Lapsed:
    customer_id: int
    flag: str  # "lapsing" or "lost"
    last_sale_id: int


@dataclass(frozen=True)
class Idle:
    customer_id: int
    balance: int
    last_sale_id: int


class Audiences:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def lapsed_without_winback(self, flagged_since: datetime) -> list[Lapsed]:
        """Customers flagged lapsing or lost since then, who have had no win-back coupon
        since their last purchase (one per lapse, the owner's included)."""
        rows = await self._tx.fetch_all(
            "WITH flagged AS (SELECT customer_id, MAX(flag) AS flag FROM risk_flags"
            " WHERE cleared_at IS NULL AND flag IN ('lapsing', 'lost') AND raised_at >= ?"
            " GROUP BY customer_id),"
            " last_sale AS (SELECT s.customer_id, MAX(s.id) AS id, MAX(s.created_at) AS at"
            " FROM sales s JOIN flagged f ON f.customer_id = s.customer_id"
            " WHERE s.voided_at IS NULL GROUP BY s.customer_id)"
            " SELECT f.customer_id, f.flag, l.id AS last_sale_id FROM flagged f"
            " JOIN last_sale l ON l.customer_id = f.customer_id"
            f" JOIN customers c ON c.id = f.customer_id AND {_REACHABLE_CONSENTING}"
            " WHERE NOT EXISTS (SELECT 1 FROM coupons k WHERE k.customer_id = f.customer_id"
            " AND k.kind = 'winback' AND k.created_at >= l.at) ORDER BY f.customer_id",
            (to_sql_time(flagged_since),),
        )
        return [Lapsed(row["customer_id"], row["flag"], row["last_sale_id"]) for row in rows]

    async def idle_with_points(self, bought_before: datetime, at_least: int) -> list[Idle]:
        """Consenting customers whose last purchase was before then, with their balance when
        it is at least `at_least`."""
        rows = await self._tx.fetch_all(
            "WITH last_sale AS (SELECT customer_id, MAX(id) AS id, MAX(created_at) AS at"
            " FROM sales WHERE voided_at IS NULL GROUP BY customer_id HAVING at < ?)"
            " SELECT l.customer_id, l.id AS last_sale_id, (SELECT SUM(delta) FROM points_ledger p"
            " WHERE p.customer_id = l.customer_id) AS balance FROM last_sale l"
            f" JOIN customers c ON c.id = l.customer_id AND {_REACHABLE_CONSENTING}"
            " WHERE balance >= ? ORDER BY l.customer_id",
            (to_sql_time(bought_before), at_least),
        )
        return [Idle(row["customer_id"], int(row["balance"]), row["last_sale_id"]) for row in rows]
