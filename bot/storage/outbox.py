"""The outbox: pushes decided by a job, waiting to be delivered, and what became of each."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from bot.domain.models import Identity, Language
from bot.storage.database import Transaction, from_sql_time, to_sql_time


class OutboxStatus(StrEnum):
    """What became of a push (the CHECK in migration 0003 lists the same)."""

    PENDING = "pending"
    SENDING = "sending"  # left so by a crash, it becomes UNCERTAIN: never sent twice
    SENT = "sent"
    UNREACHABLE = "unreachable"
    FAILED = "failed"
    UNCERTAIN = "uncertain"


_STATUSES = {f"status_{status.name.lower()}": status.value for status in OutboxStatus}


@dataclass(frozen=True)
class OutboxItem:
    id: int
    customer_id: int
    identity: Identity
    language: Language
    kind: str
    template: str
    payload: dict[str, Any]
    attempts: int


@dataclass(frozen=True)
class NewPush:
    customer_id: int
    kind: str
    dedupe_key: str
    template: str
    payload: dict[str, Any]


class OutboxRepository:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def enqueue(
        self,
        customer_id: int,
        kind: str,
        dedupe_key: str,
        template: str,
        payload: dict[str, Any],
        at: datetime,
    ) -> bool:
        """Queue a push; False when one with this key was queued before (sent or not)."""
        cursor = await self._tx.execute(
            "INSERT INTO outbox (customer_id, kind, dedupe_key, template, payload,"
            " next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (dedupe_key) DO NOTHING",
            (
                customer_id,
                kind,
                dedupe_key,
                template,
                json.dumps(payload, ensure_ascii=False),
                to_sql_time(at),
                to_sql_time(at),
            ),
        )
        return cursor.rowcount == 1

    async def enqueue_many(self, pushes: list[NewPush], at: datetime) -> None:
        """Queue many pushes in one round trip; keys queued before are skipped."""
        moment = to_sql_time(at)
        await self._tx.execute_many(
            "INSERT INTO outbox (customer_id, kind, dedupe_key, template, payload,"
            " next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (dedupe_key) DO NOTHING",
            (
                (
                    push.customer_id,
                    push.kind,
                    push.dedupe_key,
                    push.template,
                    json.dumps(push.payload, ensure_ascii=False),
                    moment,
                    moment,
                )
                for push in pushes
            ),
        )

    async def existing_keys(self, dedupe_keys: list[str]) -> set[str]:
        """Which of these keys were queued before (one query, however many keys)."""
        rows = await self._tx.fetch_all(
            "SELECT dedupe_key FROM outbox WHERE dedupe_key IN (SELECT value FROM json_each(?))",
            (json.dumps(dedupe_keys),),
        )
        return {row["dedupe_key"] for row in rows}

    async def due(self, now: datetime, limit: int) -> list[OutboxItem]:
        """Pending pushes whose time has come, for customers who can still be reached."""
        rows = await self._tx.fetch_all(
            "SELECT o.id, o.customer_id, o.kind, o.template, o.payload, o.attempts,"
            " c.channel, c.channel_user_id, c.language FROM outbox o"
            " JOIN customers c ON c.id = o.customer_id"
            " WHERE o.status = ? AND o.next_attempt_at <= ?"
            " AND c.erased_at IS NULL AND c.unreachable_at IS NULL"
            " ORDER BY o.id LIMIT ?",
            (OutboxStatus.PENDING, to_sql_time(now), limit),
        )
        return [
            OutboxItem(
                id=row["id"],
                customer_id=row["customer_id"],
                identity=Identity(row["channel"], row["channel_user_id"]),
                language=Language(row["language"]),
                kind=row["kind"],
                template=row["template"],
                payload=json.loads(row["payload"]),
                attempts=row["attempts"],
            )
            for row in rows
        ]

    async def drop_unreachable(self, now: datetime) -> int:
        """Pushes for customers who blocked the bot or were erased will never go out."""
        cursor = await self._tx.execute(
            "UPDATE outbox SET status = :status_unreachable, last_error = 'customer unreachable'"
            " WHERE status = :status_pending AND customer_id IN (SELECT id FROM customers"
            " WHERE erased_at IS NOT NULL OR unreachable_at IS NOT NULL)",
            _STATUSES,
        )
        return cursor.rowcount

    async def set_status(
        self,
        item_id: int,
        status: OutboxStatus,
        at: datetime,
        *,
        error: str | None = None,
        next_attempt_at: datetime | None = None,
        attempts: int | None = None,
    ) -> None:
        await self._tx.execute(
            "UPDATE outbox SET status = ?, last_error = COALESCE(?, last_error),"
            " next_attempt_at = COALESCE(?, next_attempt_at), attempts = COALESCE(?, attempts),"
            " sent_at = CASE WHEN ? THEN ? ELSE sent_at END WHERE id = ?",
            (
                status,
                error,
                to_sql_time(next_attempt_at) if next_attempt_at else None,
                attempts,
                status is OutboxStatus.SENT,
                to_sql_time(at),
                item_id,
            ),
        )

    async def mark_interrupted(self) -> int:
        """Pushes caught mid-send by a crash may or may not have arrived: never send them again."""
        cursor = await self._tx.execute(
            "UPDATE outbox SET status = :status_uncertain,"
            " last_error = 'interrupted while sending' WHERE status = :status_sending",
            _STATUSES,
        )
        return cursor.rowcount

    async def counts(self) -> dict[str, int]:
        rows = await self._tx.fetch_all("SELECT status, COUNT(*) AS n FROM outbox GROUP BY status")
        return {row["status"]: int(row["n"]) for row in rows}

    async def next_due_at(self) -> datetime | None:
        row = await self._tx.fetch_one(
            "SELECT MIN(next_attempt_at) AS due FROM outbox WHERE status = ?",
            (OutboxStatus.PENDING,),
        )
        return from_sql_time(row["due"]) if row and row["due"] else None

    async def erase_for(self, customer_id: int) -> None:
        """/forget: the messages rendered for the customer go; unsent ones will never be."""
        await self._tx.execute(
            "UPDATE outbox SET payload = '{}', last_error = NULL, status = CASE"
            " WHEN status IN (:status_pending, :status_sending) THEN :status_failed"
            " ELSE status END WHERE customer_id = :customer",
            {**_STATUSES, "customer": customer_id},
        )

    async def mark_customer_unreachable(self, customer_id: int, at: datetime) -> None:
        await self._tx.execute(
            "UPDATE customers SET unreachable_at = ? WHERE id = ? AND unreachable_at IS NULL",
            (to_sql_time(at), customer_id),
        )
