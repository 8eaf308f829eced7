"""Sales and the sales waiting at the counter for their confirming tap."""

from __future__ import annotations

from datetime import datetime

from bot.domain.models import Identity, PendingSale, Sale
from bot.storage.database import Row, Transaction, from_sql_time, to_sql_time


def _sale(row: Row) -> Sale:
    return Sale(
        id=row["id"],
        customer_id=row["customer_id"],
        recorded_by=row["recorded_by"],
        amount_minor=row["amount_minor"],
        items=row["items"],
        points=row["points"],
        created_at=from_sql_time(row["created_at"]),
        voided_at=from_sql_time(row["voided_at"]) if row["voided_at"] else None,
    )


def _pending(row: Row) -> PendingSale:
    return PendingSale(
        id=row["id"],
        staff=Identity(row["staff_channel"], row["staff_user_id"]),
        customer_id=row["customer_id"],
        amount_minor=row["amount_minor"],
        items=row["items"],
        created_at=from_sql_time(row["created_at"]),
        sale_id=row["sale_id"],
    )


class SalesRepository:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def by_id(self, sale_id: int) -> Sale | None:
        row = await self._tx.fetch_one("SELECT * FROM sales WHERE id = ?", (sale_id,))
        return _sale(row) if row else None

    async def by_key(self, idempotency_key: str) -> Sale | None:
        row = await self._tx.fetch_one(
            "SELECT * FROM sales WHERE idempotency_key = ?", (idempotency_key,)
        )
        return _sale(row) if row else None

    async def insert(
        self,
        customer_id: int,
        *,
        recorded_by: str,
        amount_minor: int,
        items: int,
        points: int,
        idempotency_key: str,
        at: datetime,
        count_since: datetime,
    ) -> tuple[Sale, int]:
        """The sale, and the customer's valid sales since `count_since` with it (the fraud
        watch's count, read in the same statement: a sale is the counter's busiest write)."""
        row = await self._tx.fetch_one(
            "INSERT INTO sales (customer_id, recorded_by, amount_minor, items, points,"
            " idempotency_key, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING *,"
            # The new sale counted once: SQLite's subquery sees it, PostgreSQL's does not.
            " (SELECT COUNT(*) FROM sales s WHERE s.customer_id = ? AND s.created_at >= ?"
            " AND s.voided_at IS NULL AND s.idempotency_key <> ?) + 1 AS customer_sales_since",
            (
                customer_id,
                recorded_by,
                amount_minor,
                items,
                points,
                idempotency_key,
                to_sql_time(at),
                customer_id,
                to_sql_time(count_since),
                idempotency_key,
            ),
        )
        assert row is not None
        return _sale(row), int(row["customer_sales_since"])

    async def mark_voided(self, sale_id: int, by: str, reason: str, at: datetime) -> bool:
        cursor = await self._tx.execute(
            "UPDATE sales SET voided_at = ?, voided_by = ?, void_reason = ?"
            " WHERE id = ? AND voided_at IS NULL",
            (to_sql_time(at), by, reason, sale_id),
        )
        return cursor.rowcount == 1

    async def valid_count(self, customer_id: int) -> int:
        row = await self._tx.fetch_one(
            "SELECT COUNT(*) AS n FROM sales WHERE customer_id = ? AND voided_at IS NULL",
            (customer_id,),
        )
        return int(row["n"]) if row else 0

    async def last_purchase(self, customer_id: int) -> datetime | None:
        row = await self._tx.fetch_one(
            "SELECT MAX(created_at) AS last FROM sales WHERE customer_id = ? AND voided_at IS NULL",
            (customer_id,),
        )
        return from_sql_time(row["last"]) if row and row["last"] else None


class PendingSaleRepository:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def open(
        self,
        staff: Identity,
        customer_id: int,
        at: datetime,
        amount_minor: int | None = None,
        items: int | None = None,
    ) -> PendingSale:
        """A new pending sale for this staff member (the amount now, or typed next); any
        earlier unconfirmed one is dropped."""
        await self._tx.execute(
            "UPDATE pending_sales SET cancelled_at = ?"
            " WHERE staff_channel = ? AND staff_user_id = ? AND sale_id IS NULL"
            " AND cancelled_at IS NULL",
            (to_sql_time(at), staff.channel, staff.user_id),
        )
        row = await self._tx.fetch_one(
            "INSERT INTO pending_sales (staff_channel, staff_user_id, customer_id, amount_minor,"
            " items, created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING *",
            (staff.channel, staff.user_id, customer_id, amount_minor, items, to_sql_time(at)),
        )
        assert row is not None
        return _pending(row)

    async def by_id(self, pending_id: int) -> PendingSale | None:
        row = await self._tx.fetch_one(
            "SELECT * FROM pending_sales WHERE id = ? AND cancelled_at IS NULL", (pending_id,)
        )
        return _pending(row) if row else None

    async def awaiting_amount(self, staff: Identity, since: datetime) -> PendingSale | None:
        row = await self._tx.fetch_one(
            "SELECT * FROM pending_sales WHERE staff_channel = ? AND staff_user_id = ?"
            " AND amount_minor IS NULL AND sale_id IS NULL AND cancelled_at IS NULL"
            " AND created_at >= ? ORDER BY id DESC LIMIT 1",
            (staff.channel, staff.user_id, to_sql_time(since)),
        )
        return _pending(row) if row else None

    async def set_amount(self, pending_id: int, amount_minor: int, items: int) -> PendingSale:
        row = await self._tx.fetch_one(
            "UPDATE pending_sales SET amount_minor = ?, items = ? WHERE id = ? RETURNING *",
            (amount_minor, items, pending_id),
        )
        assert row is not None
        return _pending(row)

    async def attach_sale(self, pending_id: int, sale_id: int) -> None:
        await self._tx.execute(
            "UPDATE pending_sales SET sale_id = ? WHERE id = ?", (sale_id, pending_id)
        )

    async def cancel(self, pending_id: int, at: datetime) -> bool:
        cursor = await self._tx.execute(
            "UPDATE pending_sales SET cancelled_at = ? WHERE id = ? AND sale_id IS NULL"
            " AND cancelled_at IS NULL",
            (to_sql_time(at), pending_id),
        )
        return cursor.rowcount == 1
