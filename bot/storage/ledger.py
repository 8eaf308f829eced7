"""The append-only points ledger: rows are only ever added; balances are sums over them."""

from __future__ import annotations

from datetime import datetime

import aiosqlite

from bot.domain.models import LedgerEntry, LedgerReason
from bot.storage.database import Transaction, from_sql_time, to_sql_time


def _entry(row: aiosqlite.Row) -> LedgerEntry:
    return LedgerEntry(
        id=row["id"],
        customer_id=row["customer_id"],
        delta=row["delta"],
        reason=LedgerReason(row["reason"]),
        actor=row["actor"],
        idempotency_key=row["idempotency_key"],
        note=row["note"],
        created_at=from_sql_time(row["created_at"]),
    )


class LedgerRepository:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def append(
        self,
        customer_id: int,
        delta: int,
        reason: LedgerReason,
        *,
        actor: str,
        idempotency_key: str,
        at: datetime,
        note: str | None = None,
    ) -> bool:
        """Add one row; False (and no change) when a row with this idempotency key exists."""
        cursor = await self._tx.execute(
            "INSERT INTO points_ledger (customer_id, delta, reason, actor, idempotency_key, note,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (idempotency_key) DO NOTHING",
            (customer_id, delta, reason.value, actor, idempotency_key, note, to_sql_time(at)),
        )
        return cursor.rowcount == 1

    async def balance(self, customer_id: int) -> int:
        row = await self._tx.fetch_one(
            "SELECT COALESCE(SUM(delta), 0) AS balance FROM points_ledger WHERE customer_id = ?",
            (customer_id,),
        )
        return int(row["balance"]) if row else 0

    async def sum_since(
        self, customer_id: int, reasons: tuple[LedgerReason, ...], since: datetime
    ) -> int:
        placeholders = ", ".join("?" for _ in reasons)
        row = await self._tx.fetch_one(
            "SELECT COALESCE(SUM(delta), 0) AS total FROM points_ledger"
            f" WHERE customer_id = ? AND created_at >= ? AND reason IN ({placeholders})",
            (customer_id, to_sql_time(since), *(reason.value for reason in reasons)),
        )
        return int(row["total"]) if row else 0

    async def count_keys_since(self, customer_id: int, key_prefix: str, since: datetime) -> int:
        row = await self._tx.fetch_one(
            "SELECT COUNT(*) AS n FROM points_ledger WHERE customer_id = ?"
            " AND idempotency_key LIKE ? || '%' AND created_at >= ?",
            (customer_id, key_prefix, to_sql_time(since)),
        )
        return int(row["n"]) if row else 0

    async def latest(self, customer_id: int, limit: int) -> list[LedgerEntry]:
        rows = await self._tx.fetch_all(
            "SELECT * FROM points_ledger WHERE customer_id = ? ORDER BY id DESC LIMIT ?",
            (customer_id, limit),
        )
        return [_entry(row) for row in rows]

    async def all_for(self, customer_id: int) -> list[LedgerEntry]:
        rows = await self._tx.fetch_all(
            "SELECT * FROM points_ledger WHERE customer_id = ? ORDER BY id", (customer_id,)
        )
        return [_entry(row) for row in rows]
