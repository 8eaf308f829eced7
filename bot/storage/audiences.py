"""Who an automation writes to, found in SQL over the whole customer base at once: each query
is a few set-based passes, so 100,000 customers and a million sales stay within seconds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.storage.database import Selected, Transaction, to_sql_time

# Customers an offer may go to: not erased, reachable, and who accepted offers.
_REACHABLE_CONSENTING = (
    "c.erased_at IS NULL AND c.unreachable_at IS NULL AND c.promotions_consent = 1"
)


@dataclass(frozen=True)
class Idle:
    customer_id: int
    balance: int
    last_sale_id: int


class Audiences:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    def lapsed_without_winback(self, flagged_since: datetime, key_prefix: str) -> Selected:
        """Customers flagged lapsing or lost since then, who have had no win-back coupon
        since their last purchase (one per lapse, the owner's included): customer_id,
        reason (the flag) and dedupe_key (`key_prefix` + customer + ":" + last sale)."""
        return Selected(
            "WITH flagged AS (SELECT customer_id, MAX(flag) AS flag FROM risk_flags"
            " WHERE cleared_at IS NULL AND flag IN ('lapsing', 'lost') AND raised_at >= :since"
            " GROUP BY customer_id)"
            " SELECT f.customer_id, f.flag AS reason, CAST(:key_prefix AS TEXT) || f.customer_id"
            " || ':' || c.last_sale_id AS dedupe_key FROM flagged f"
            f" JOIN customers c ON c.id = f.customer_id AND {_REACHABLE_CONSENTING}"
            " WHERE c.last_sale_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM coupons k"
            " WHERE k.customer_id = f.customer_id AND k.kind = 'winback'"
            " AND k.created_at >= c.last_purchase_at)",
            {"since": to_sql_time(flagged_since), "key_prefix": key_prefix},
        )

    async def idle_with_points(self, bought_before: datetime, at_least: int) -> list[Idle]:
        """Consenting customers whose last purchase was before then, with their balance when
        it is at least `at_least`."""
        rows = await self._tx.fetch_all(
            "SELECT c.id AS customer_id, c.last_sale_id, c.balance FROM customers c"
            f" WHERE {_REACHABLE_CONSENTING} AND c.last_purchase_at < ? AND c.balance >= ?"
            " ORDER BY c.id",
            (to_sql_time(bought_before), at_least),
        )
        return [Idle(row["customer_id"], int(row["balance"]), row["last_sale_id"]) for row in rows]


# A campaign's audience, each a filter on the consenting, reachable customers.
# "+customer_id" keeps SQLite from walking the whole ledger in customer order: the
# last year's slice of points_ledger_created (which holds the customer and the points) is read
# instead. PostgreSQL reads the unary plus as the same number.
_TIER = (
    "c.id IN (SELECT +customer_id FROM points_ledger WHERE created_at >= :year_ago"
    " AND reason IN ('purchase', 'reversal') GROUP BY +customer_id"
    " HAVING SUM(delta) >= :low AND SUM(delta) < :high)"
)
_LOWEST_TIER = (
    "c.id NOT IN (SELECT +customer_id FROM points_ledger WHERE created_at >= :year_ago"
    " AND reason IN ('purchase', 'reversal') GROUP BY +customer_id HAVING SUM(delta) >= :high)"
)
_FLAG = "c.id IN (SELECT customer_id FROM risk_flags WHERE cleared_at IS NULL AND flag = :value)"
_IDLE = (
    "c.created_at < :idle_since"
    " AND (c.last_purchase_at IS NULL OR c.last_purchase_at < :idle_since)"
)
_BIRTHDAY_MONTH = "c.birthday_month = :month"


@dataclass(frozen=True)
class AudienceFilter:
    """Which of the consenting customers: `where` with its parameters (named)."""

    where: str
    parameters: dict[str, object]


def everyone() -> AudienceFilter:
    return AudienceFilter("TRUE", {})


def in_tier(year_ago: datetime, low: int, high: int | None, lowest: bool) -> AudienceFilter:
    """Qualifying points over the last year in [low, high); the lowest tier also holds those
    who earned none."""
    ceiling = high if high is not None else 2**62
    where = _LOWEST_TIER if lowest else _TIER
    return AudienceFilter(where, {"year_ago": to_sql_time(year_ago), "low": low, "high": ceiling})


def flagged(flag: str) -> AudienceFilter:
    return AudienceFilter(_FLAG, {"value": flag})


def idle_since(moment: datetime) -> AudienceFilter:
    return AudienceFilter(_IDLE, {"idle_since": to_sql_time(moment)})


def born_in(month: int) -> AudienceFilter:
    return AudienceFilter(_BIRTHDAY_MONTH, {"month": month})


def placed(quadrant_sql: str, parameters: dict[str, object], quadrant: str) -> AudienceFilter:
    return AudienceFilter(
        f"c.id IN (SELECT customer_id FROM ({quadrant_sql}) AS placed WHERE quadrant = :value)",
        {**parameters, "value": quadrant},
    )


class CampaignAudiences:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def count(self, audience: AudienceFilter) -> int:
        row = await self._tx.fetch_one(
            f"SELECT COUNT(*) AS n FROM customers c WHERE {_REACHABLE_CONSENTING}"
            f" AND {audience.where}",
            audience.parameters,
        )
        return int(row["n"]) if row else 0

    async def members(self, audience: AudienceFilter) -> list[int]:
        rows = await self._tx.fetch_all(
            f"SELECT c.id FROM customers c WHERE {_REACHABLE_CONSENTING}"
            f" AND {audience.where} ORDER BY c.id",
            audience.parameters,
        )
        return [row["id"] for row in rows]
