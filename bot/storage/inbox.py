"""Incoming messages recorded before they are acknowledged (a WhatsApp webhook answered, a
Telegram update confirmed): a message is handled once, whenever and however often it arrives,
and its row's `handled_at` is the one record that it was. What a message said is kept only
until it is handled: its id and when it came stay (a retry is known as one), its words go."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.storage.database import Row, Transaction, from_sql_time, to_sql_time

# Rows per INSERT: one statement for a whole Telegram batch (100), within SQLite's limit of
# parameters per statement.
RECORDED_AT_ONCE = 100


@dataclass(frozen=True)
class Received:
    id: int  # never reused (migration 0019), so a claim on it cannot hit a newer message
    person: str
    body: dict[str, Any]
    message_id: str = ""  # the channel's own id


class InboxRepository:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def record(
        self,
        channel: str,
        messages: list[tuple[str, str, dict[str, Any]]],
        at: datetime,
        *,
        ignored: bool = False,
    ) -> set[str]:
        """(message id, person, body) each, once per message id; the ids that were new. Those
        `ignored` are recorded as handled already: their ids kept, never answered."""
        handled_at = to_sql_time(at) if ignored else None
        received_at = to_sql_time(at)
        new: set[str] = set()
        for start in range(0, len(messages), RECORDED_AT_ONCE):
            batch = messages[start : start + RECORDED_AT_ONCE]
            values = ", ".join("(?, ?, ?, ?, ?, ?)" for _ in batch)
            parameters = [
                value
                for message_id, person, body in batch
                for value in (
                    channel,
                    message_id,
                    person,
                    "{}" if ignored else json.dumps(body),
                    received_at,
                    handled_at,
                )
            ]
            inserted = await self._tx.fetch_all(
                "INSERT INTO inbox (channel, message_id, person, body, received_at, handled_at)"
                f" VALUES {values} ON CONFLICT (channel, message_id) DO NOTHING"
                " RETURNING message_id",
                parameters,
            )
            new.update(row["message_id"] for row in inserted)
        return new

    async def unhandled(self, channel: str, after_id: int, limit: int) -> list[Received]:
        rows = await self._tx.fetch_all(
            "SELECT id, person, body, message_id FROM inbox WHERE channel = ?"
            " AND handled_at IS NULL AND id > ? ORDER BY id LIMIT ?",
            (channel, after_id, limit),
        )
        return [_received(row) for row in rows]

    async def unhandled_of(self, channel: str, person: str, *, through: int) -> list[Received]:
        """A person's messages not handled yet, up to `through`, oldest first."""
        rows = await self._tx.fetch_all(
            "SELECT id, person, body, message_id FROM inbox WHERE channel = ? AND person = ?"
            " AND handled_at IS NULL AND id <= ? ORDER BY id",
            (channel, person, through),
        )
        return [_received(row) for row in rows]

    async def last_heard(self, channel: str, person: str) -> datetime | None:
        row = await self._tx.fetch_one(
            "SELECT MAX(received_at) AS at FROM inbox WHERE channel = ? AND person = ?",
            (channel, person),
        )
        return from_sql_time(row["at"]) if row and row["at"] else None

    async def claim(self, item_id: int, at: datetime) -> bool:
        """Mark it handled, and forget what it said; False if it already was handled."""
        cursor = await self._tx.execute(
            "UPDATE inbox SET handled_at = ?, body = '{}' WHERE id = ? AND handled_at IS NULL",
            (to_sql_time(at), item_id),
        )
        return cursor.rowcount == 1

    async def claim_all(self, item_ids: list[int], at: datetime) -> None:
        """Mark them handled unread (a flood), and forget what they said."""
        await self._tx.execute(
            "UPDATE inbox SET handled_at = ?, body = '{}'"
            f" WHERE id IN {self._tx.dialect.listed('?')} AND handled_at IS NULL",
            (to_sql_time(at), json.dumps(item_ids)),
        )

    async def handled_through(self, channel: str, message_id: str) -> int | None:
        """Its row's id, once it and every row of the channel recorded before it are marked
        handled."""
        row = await self._tx.fetch_one(
            "SELECT id FROM inbox AS i WHERE channel = ? AND message_id = ?"
            " AND handled_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM inbox AS e"
            " WHERE e.channel = i.channel AND e.handled_at IS NULL AND e.id < i.id)",
            (channel, message_id),
        )
        return None if row is None else int(row["id"])

    async def forget_before(self, moment: datetime) -> None:
        """Handled messages older than any retry of them need no remembering."""
        await self._tx.execute(
            "DELETE FROM inbox WHERE handled_at IS NOT NULL AND received_at < ?",
            (to_sql_time(moment),),
        )


def _received(row: Row) -> Received:
    return Received(row["id"], row["person"], json.loads(row["body"]), row["message_id"])
