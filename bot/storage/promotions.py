"""Promotional messages decided for customers: the contact cap's count and /customer's list."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from bot.storage.database import Transaction, from_sql_time, to_sql_time
from bot.storage.outbox import Selected

# Whom a set-based job chose, written down once: granting a coupon on the way must not change
# whom the next statements find (the win-back's audience excludes those with a fresh coupon).
_CHOSEN = "chosen_for_promotion"


@dataclass(frozen=True)
class PromotionRow:
    customer_id: int
    kind: str
    reason: str
    dedupe_key: str
    outcome: str  # "queued" or "capped"


@dataclass(frozen=True)
class Decided:
    """A chosen set after the rules: the pushes to queue, and how many were held back."""

    queued: Selected
    capped: int
    without_consent: int


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

    async def choose(self, audience: Selected) -> None:
        """Write down whom a job chose: the audience's customer_id, reason and dedupe_key, one
        row a customer."""
        await self._tx.execute(f"DROP TABLE IF EXISTS {_CHOSEN}")
        await self._tx.execute(
            f"CREATE TEMP TABLE {_CHOSEN} (customer_id BIGINT NOT NULL UNIQUE,"
            " reason TEXT NOT NULL, dedupe_key TEXT PRIMARY KEY)"
        )
        await self._tx.execute(
            f"INSERT INTO {_CHOSEN} (customer_id, reason, dedupe_key)"
            f" SELECT customer_id, reason, dedupe_key FROM ({audience.sql}) AS audience",
            audience.parameters,
        )

    def chosen(self) -> Selected:
        return Selected(f"SELECT customer_id, reason, dedupe_key FROM {_CHOSEN}", {})

    async def keep_chosen(self, granted: Selected) -> None:
        """Only those whose key `granted` holds (dedupe_key) stay chosen."""
        await self._tx.execute(
            f"DELETE FROM {_CHOSEN} WHERE dedupe_key NOT IN"
            f" (SELECT dedupe_key FROM ({granted.sql}) AS granted)",
            granted.parameters,
        )

    async def decide_chosen(
        self, kind: str, at: datetime, cap_since: datetime, per_week: int
    ) -> Decided:
        """The rules of bot/domain/promotions.py for everyone chosen, in SQL: keys decided
        before are skipped, customers without consent left out, and a customer queued
        `per_week` promotions since `cap_since` is recorded as capped. The rows decided now
        are those above the largest id before: the caller holds the shop's write lock alone."""
        last = await self._tx.fetch_one("SELECT COALESCE(MAX(id), 0) AS id FROM promotions")
        after = int(last["id"]) if last else 0
        refused = await self._tx.fetch_one(
            f"SELECT COUNT(*) AS n FROM {_CHOSEN} ch JOIN customers c ON c.id = ch.customer_id"
            " WHERE c.promotions_consent <> 1"
        )
        await self._tx.execute(
            "INSERT INTO promotions (customer_id, kind, reason, dedupe_key, outcome, decided_at)"
            " SELECT ch.customer_id, :kind, ch.reason, ch.dedupe_key,"
            " CASE WHEN (SELECT COUNT(*) FROM promotions p WHERE p.customer_id = ch.customer_id"
            " AND p.outcome = 'queued' AND p.decided_at > :since) >= :per_week"
            " THEN 'capped' ELSE 'queued' END, :at"
            f" FROM {_CHOSEN} ch JOIN customers c ON c.id = ch.customer_id"
            " AND c.promotions_consent = 1"
            " WHERE NOT EXISTS (SELECT 1 FROM promotions p WHERE p.dedupe_key = ch.dedupe_key)"
            " ORDER BY ch.customer_id ON CONFLICT (dedupe_key) DO NOTHING",
            {
                "kind": kind,
                "since": to_sql_time(cap_since),
                "per_week": per_week,
                "at": to_sql_time(at),
            },
        )
        capped = await self._tx.fetch_one(
            "SELECT COUNT(*) AS n FROM promotions WHERE id > ? AND outcome = 'capped'", (after,)
        )
        await self._tx.execute(f"DROP TABLE {_CHOSEN}")
        return Decided(
            Selected(
                "SELECT customer_id, dedupe_key FROM promotions"
                " WHERE id > :decided_after AND outcome = 'queued'",
                {"decided_after": after},
            ),
            capped=int(capped["n"]) if capped else 0,
            without_consent=int(refused["n"]) if refused else 0,
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
