"""Promotional messages decided for customers: the contact cap's count and /customer's list."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from bot.storage.database import Transaction, from_sql_time, to_sql_time


@dataclass(frozen=True)
class PromotionRow:
    customer_id: int
    kind: str
    reason: str
    dedupe_key: str
    outcome: str  # "queued" or "capped"


@dataclass(frozen=True)
class RecentPromotion:
    kind: str
    reason: str
    outcome: str
    delivery: str | None  # the outbox row's status, for a queued one
    decided_at: datetime


class PromotionRepository:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def queued_since(self, customer_ids: Iterable[int], since: datetime) -> dict[int, int]:
        """How many promotions each of these customers was queued since then (one query)."""
        rows = await self._tx.fetch_all(
            "SELECT customer_id, COUNT(*) AS n FROM promotions WHERE outcome = 'queued'"
            f" AND decided_at > ? AND customer_id IN {self._tx.dialect.listed('?')}"
            " GROUP BY customer_id",
            (to_sql_time(since), json.dumps(list(customer_ids))),
        )
        return {row["customer_id"]: int(row["n"]) for row in rows}

    async def existing_keys(self, keys: Iterable[str]) -> set[str]:
        rows = await self._tx.fetch_all(
            "SELECT dedupe_key FROM promotions WHERE dedupe_key IN"
            f" {self._tx.dialect.listed('?', 'TEXT')}",
            (json.dumps(list(keys)),),
        )
        return {row["dedupe_key"] for row in rows}

    async def record(self, rows: list[PromotionRow], at: datetime) -> None:
        moment = to_sql_time(at)
        await self._tx.execute_many(
            "INSERT INTO promotions (customer_id, kind, reason, dedupe_key, outcome, decided_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (dedupe_key) DO NOTHING",
            (
                (row.customer_id, row.kind, row.reason, row.dedupe_key, row.outcome, moment)
                for row in rows
            ),
        )

    async def recent_for(self, customer_id: int, limit: int) -> list[RecentPromotion]:
        rows = await self._tx.fetch_all(
            "SELECT p.kind, p.reason, p.outcome, o.status, p.decided_at FROM promotions p"
            " LEFT JOIN outbox o ON o.dedupe_key = p.dedupe_key WHERE p.customer_id = ?"
            " ORDER BY p.id DESC LIMIT ?",
            (customer_id, limit),
        )
        return [
            RecentPromotion(
                row["kind"],
                row["reason"],
                row["outcome"],
                row["status"],
                from_sql_time(row["decided_at"]),
            )
            for row in rows
        ]
