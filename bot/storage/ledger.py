"""The append-only points ledger: rows are only ever added; balances are sums over them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from bot.domain.models import LedgerEntry, LedgerReason
from bot.storage.database import Row, Transaction, from_sql_time, to_sql_time


def _entry(row: Row) -> LedgerEntry:
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


@dataclass(frozen=True)
class LedgerRow:
    customer_id: int
    delta: int
    idempotency_key: str


@dataclass(frozen=True)
class LedgerSummary:
    balance: int
    qualifying: int
    latest: list[LedgerEntry]


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

    async def append_many(
        self, rows: list[LedgerRow], reason: LedgerReason, *, actor: str, at: datetime
    ) -> None:
        """Many rows of one reason in one statement; keys written before are skipped."""
        given = self._tx.dialect.rows(
            ":rows", (("customer_id", "INTEGER"), ("delta", "INTEGER"), ("key", "TEXT"))
        )
        await self._tx.execute(
            "INSERT INTO points_ledger (customer_id, delta, reason, actor, idempotency_key,"
            f" created_at) SELECT customer_id, delta, :reason, :actor, key, :at FROM {given}"
            " AS given WHERE TRUE ORDER BY n ON CONFLICT (idempotency_key) DO NOTHING",
            {
                "rows": json.dumps([[r.customer_id, r.delta, r.idempotency_key] for r in rows]),
                "reason": reason.value,
                "actor": actor,
                "at": to_sql_time(at),
            },
        )

    async def existing_keys(self, keys: list[str]) -> set[str]:
        rows = await self._tx.fetch_all(
            "SELECT idempotency_key FROM points_ledger WHERE idempotency_key IN"
            f" {self._tx.dialect.listed('?', 'TEXT')}",
            (json.dumps(keys),),
        )
        return {row["idempotency_key"] for row in rows}

    async def balance(self, customer_id: int) -> int:
        row = await self._tx.fetch_one(
            "SELECT balance FROM customers WHERE id = ?",
            (customer_id,),
        )
        return int(row["balance"]) if row else 0

    async def count_keys_since(self, customer_id: int, key_prefix: str, since: datetime) -> int:
        row = await self._tx.fetch_one(
            "SELECT COUNT(*) AS n FROM points_ledger WHERE customer_id = ?"
            " AND idempotency_key LIKE ? || '%' AND created_at >= ?",
            (customer_id, key_prefix, to_sql_time(since)),
        )
        return int(row["n"]) if row else 0

    async def summary(
        self,
        customer_id: int,
        qualifying: tuple[LedgerReason, ...],
        since: datetime,
        latest: int,
    ) -> LedgerSummary:
        """Balance, the points of `qualifying` reasons since `since`, and the `latest` rows,
        in one query: /balance is the busiest command at the counter."""
        placeholders = ", ".join("?" for _ in qualifying)
        rows = await self._tx.fetch_all(
            "SELECT totals.balance, totals.qualifying, recent.* FROM"
            " (SELECT COALESCE(SUM(delta), 0) AS balance, COALESCE(SUM(CASE WHEN created_at >= ?"
            f" AND reason IN ({placeholders}) THEN delta END), 0) AS qualifying"
            " FROM points_ledger WHERE customer_id = ?) AS totals"
            " LEFT JOIN (SELECT * FROM points_ledger WHERE customer_id = ?"
            " ORDER BY id DESC LIMIT ?) AS recent ON TRUE ORDER BY recent.id DESC",
            (
                to_sql_time(since),
                *(reason.value for reason in qualifying),
                customer_id,
                customer_id,
                latest,
            ),
        )
        return LedgerSummary(
            balance=int(rows[0]["balance"]),
            qualifying=int(rows[0]["qualifying"]),
            latest=[_entry(row) for row in rows if row["id"] is not None],
        )

    async def all_for(self, customer_id: int) -> list[LedgerEntry]:
        rows = await self._tx.fetch_all(
            "SELECT * FROM points_ledger WHERE customer_id = ? ORDER BY id", (customer_id,)
        )
        return [_entry(row) for row in rows]
