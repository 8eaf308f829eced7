"""Coupons and the one-time redemption codes customers show at the counter."""

from __future__ import annotations

import json
from datetime import datetime

from bot.domain.models import Coupon, CouponKind, Redemption
from bot.storage.database import Row, Selected, Transaction, from_sql_time, to_sql_time


def _coupon(row: Row) -> Coupon:
    return Coupon(
        id=row["id"],
        customer_id=row["customer_id"],
        kind=CouponKind(row["kind"]),
        percent_off=row["percent_off"],
        free_item=row["free_item"],
        valid_until=from_sql_time(row["valid_until"]),
        redeemed_at=from_sql_time(row["redeemed_at"]) if row["redeemed_at"] else None,
    )


def _redemption(row: Row) -> Redemption:
    return Redemption(
        code=row["code"],
        customer_id=row["customer_id"],
        reward_key=row["reward_key"],
        reward_snapshot=row["reward_snapshot"],
        cost=row["cost"],
        coupon_id=row["coupon_id"],
        created_at=from_sql_time(row["created_at"]),
        expires_at=from_sql_time(row["expires_at"]),
        redeemed_at=from_sql_time(row["redeemed_at"]) if row["redeemed_at"] else None,
    )


class CouponRepository:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def grant(
        self,
        customer_id: int,
        kind: CouponKind,
        *,
        percent_off: int | None,
        free_item: str | None,
        valid_until: datetime,
        idempotency_key: str,
        created_by: str,
        at: datetime,
    ) -> Coupon | None:
        """A new coupon; None when one with this idempotency key already exists."""
        coupon_id = await self._tx.insert(
            "INSERT INTO coupons (customer_id, kind, percent_off, free_item, valid_until,"
            " idempotency_key, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (idempotency_key) DO NOTHING",
            (
                customer_id,
                kind.value,
                percent_off,
                free_item,
                to_sql_time(valid_until),
                idempotency_key,
                created_by,
                to_sql_time(at),
            ),
        )
        if coupon_id is None:
            return None
        return await self.by_id(coupon_id)

    async def grant_many(
        self,
        keyed: dict[str, int],
        kind: CouponKind,
        *,
        percent_off: int,
        valid_until: datetime,
        created_by: str,
        at: datetime,
    ) -> None:
        """The same coupon for many customers (idempotency key -> customer), as `grant_each`
        grants it; those granted before are skipped."""
        given = self._tx.dialect.rows(":keyed", (("customer_id", "INTEGER"), ("key", "TEXT")))
        listed = Selected(
            f"SELECT customer_id, key AS dedupe_key FROM {given} AS given",
            {"keyed": json.dumps([[customer_id, key] for key, customer_id in keyed.items()])},
        )
        await self.grant_each(
            listed,
            kind,
            percent_off=percent_off,
            valid_until=valid_until,
            created_by=created_by,
            at=at,
        )

    async def grant_each(
        self,
        chosen: Selected,
        kind: CouponKind,
        *,
        percent_off: int,
        valid_until: datetime,
        created_by: str,
        at: datetime,
    ) -> Selected:
        """The same coupon for each customer a query finds (customer_id, dedupe_key: the
        coupon's idempotency key), in one statement; those granted before are skipped. The
        keys granted now, as a query (dedupe_key): ids above the largest before, as the
        caller holds the shop's write lock alone (a sale, which shares it, grants none)."""
        last = await self._tx.fetch_one("SELECT COALESCE(MAX(id), 0) AS id FROM coupons")
        after = int(last["id"]) if last else 0
        await self._tx.execute(
            "INSERT INTO coupons (customer_id, kind, percent_off, valid_until, idempotency_key,"
            " created_by, created_at) SELECT customer_id, :kind, :percent_off, :valid_until,"
            f" dedupe_key, :created_by, :at FROM ({chosen.sql}) AS chosen WHERE TRUE"
            " ORDER BY customer_id ON CONFLICT (idempotency_key) DO NOTHING",
            {
                **chosen.parameters,
                "kind": kind.value,
                "percent_off": percent_off,
                "valid_until": to_sql_time(valid_until),
                "created_by": created_by,
                "at": to_sql_time(at),
            },
        )
        return Selected(
            "SELECT idempotency_key AS dedupe_key FROM coupons WHERE id > :granted_after",
            {"granted_after": after},
        )

    async def by_id(self, coupon_id: int) -> Coupon | None:
        row = await self._tx.fetch_one("SELECT * FROM coupons WHERE id = ?", (coupon_id,))
        return _coupon(row) if row else None

    async def open_for(self, customer_id: int, now: datetime) -> list[Coupon]:
        rows = await self._tx.fetch_all(
            "SELECT * FROM coupons WHERE customer_id = ? AND redeemed_at IS NULL"
            " AND valid_until > ? ORDER BY valid_until, id",
            (customer_id, to_sql_time(now)),
        )
        return [_coupon(row) for row in rows]

    async def winback_since_last_purchase(self, customer_id: int) -> bool:
        row = await self._tx.fetch_one(
            "SELECT 1 FROM coupons WHERE customer_id = ? AND kind = 'winback' AND created_at >="
            " COALESCE((SELECT MAX(created_at) FROM sales WHERE customer_id = ?"
            " AND voided_at IS NULL), '') LIMIT 1",
            (customer_id, customer_id),
        )
        return row is not None

    async def mark_redeemed(self, coupon_id: int, at: datetime) -> bool:
        cursor = await self._tx.execute(
            "UPDATE coupons SET redeemed_at = ? WHERE id = ? AND redeemed_at IS NULL",
            (to_sql_time(at), coupon_id),
        )
        return cursor.rowcount == 1


class RedemptionRepository:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def create(
        self,
        code: str,
        customer_id: int,
        *,
        reward_key: str | None,
        reward_snapshot: str | None,
        cost: int,
        coupon_id: int | None,
        at: datetime,
        expires_at: datetime,
    ) -> Redemption:
        await self._tx.execute(
            "INSERT INTO redemptions (code, customer_id, reward_key, reward_snapshot, cost,"
            " coupon_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                code,
                customer_id,
                reward_key,
                reward_snapshot,
                cost,
                coupon_id,
                to_sql_time(at),
                to_sql_time(expires_at),
            ),
        )
        created = await self.by_code(code)
        assert created is not None
        return created

    async def by_code(self, code: str) -> Redemption | None:
        row = await self._tx.fetch_one("SELECT * FROM redemptions WHERE code = ?", (code,))
        return _redemption(row) if row else None

    async def code_taken(self, code: str) -> bool:
        return await self.by_code(code) is not None

    async def still_open(
        self, customer_id: int, reward_key: str | None, coupon_id: int | None, now: datetime
    ) -> Redemption | None:
        """The customer's unused, unexpired code for this reward or coupon, if there is one."""
        row = await self._tx.fetch_one(
            "SELECT * FROM redemptions WHERE customer_id = ? AND reward_key IS NOT DISTINCT FROM ?"
            " AND coupon_id IS NOT DISTINCT FROM ? AND redeemed_at IS NULL AND expires_at > ?"
            " ORDER BY expires_at DESC LIMIT 1",
            (customer_id, reward_key, coupon_id, to_sql_time(now)),
        )
        return _redemption(row) if row else None

    async def open_reward_keys(self, now: datetime) -> dict[str, int]:
        """Rewards that codes still open were issued for, with how many codes each."""
        rows = await self._tx.fetch_all(
            "SELECT reward_key, COUNT(*) AS codes FROM redemptions WHERE redeemed_at IS NULL"
            " AND expires_at > ? AND reward_key IS NOT NULL GROUP BY reward_key",
            (to_sql_time(now),),
        )
        return {row["reward_key"]: row["codes"] for row in rows}

    async def mark_redeemed(self, code: str, by: str, at: datetime) -> bool:
        """False when the code was redeemed already: the second of two racing taps loses."""
        cursor = await self._tx.execute(
            "UPDATE redemptions SET redeemed_at = ?, redeemed_by = ? WHERE code = ?"
            " AND redeemed_at IS NULL",
            (to_sql_time(at), by, code),
        )
        return cursor.rowcount == 1
