"""The counts behind the fraud alerts, each a small indexed read on the sale's own path."""

from __future__ import annotations

from datetime import datetime

from bot.storage.database import Transaction, to_sql_time

MEDIAN_NEEDS_SALES = 30  # fewer sales than this say nothing about a usual ticket


class FraudReadings:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def voids_since(self, actor: str, since: datetime) -> int:
        """Voids by `actor` since then, from the audit log (indexed by time)."""
        row = await self._tx.fetch_one(
            "SELECT COUNT(*) AS n FROM audit_log WHERE at >= ? AND action = 'void' AND actor = ?",
            (to_sql_time(since), actor),
        )
        return int(row["n"]) if row else 0

    async def median_ticket(self, since: datetime, until: datetime) -> int | None:
        """The middle sale amount in [since, until); None with too few sales to tell."""
        row = await self._tx.fetch_one(
            "WITH recent AS (SELECT amount_minor FROM sales WHERE created_at >= ?"
            " AND created_at < ? AND voided_at IS NULL)"
            " SELECT (SELECT COUNT(*) FROM recent) AS n, (SELECT amount_minor FROM recent"
            " ORDER BY amount_minor LIMIT 1 OFFSET (SELECT COUNT(*) FROM recent) / 2) AS median",
            (to_sql_time(since), to_sql_time(until)),
        )
        if row is None or row["n"] < MEDIAN_NEEDS_SALES:
            return None
        return int(row["median"])
