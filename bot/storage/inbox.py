"""Incoming messages recorded before they are acknowledged, for channels that push them to us
(WhatsApp's webhooks): a message is handled once, whenever and however often it arrives."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.storage.database import Transaction, from_sql_time, to_sql_time


@dataclass(frozen=True)
class Received:
    id: int  # also its update id for bot.incoming: recorded ids only grow
    person: str
    body: dict[str, Any]


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
    ) -> int:
        """(message id, person, body) each, once per message id; how many were new. Those
        `ignored` are recorded as handled already: kept, never answered."""
        before = await self._tx.fetch_one("SELECT total_changes() AS n")
        handled_at = to_sql_time(at) if ignored else None
        await self._tx.execute_many(
            "INSERT INTO inbox (channel, message_id, person, body, received_at, handled_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (channel, message_id) DO NOTHING",
            (
                (channel, message_id, person, json.dumps(body), to_sql_time(at), handled_at)
                for message_id, person, body in messages
            ),
        )
        after = await self._tx.fetch_one("SELECT total_changes() AS n")
        assert before is not None and after is not None
        return int(after["n"]) - int(before["n"])

    async def unhandled(self, channel: str, after_id: int, limit: int) -> list[Received]:
        rows = await self._tx.fetch_all(
            "SELECT id, person, body FROM inbox WHERE channel = ? AND handled_at IS NULL"
            " AND id > ? ORDER BY id LIMIT ?",
            (channel, after_id, limit),
        )
        return [Received(row["id"], row["person"], json.loads(row["body"])) for row in rows]

    async def last_heard(self, channel: str, person: str) -> datetime | None:
        row = await self._tx.fetch_one(
            "SELECT MAX(received_at) AS at FROM inbox WHERE channel = ? AND person = ?",
            (channel, person),
        )
        return from_sql_time(row["at"]) if row and row["at"] else None

    async def mark_handled(self, item_id: int, at: datetime) -> None:
        await self._tx.execute(
            "UPDATE inbox SET handled_at = ? WHERE id = ?", (to_sql_time(at), item_id)
        )

    async def forget_before(self, moment: datetime) -> None:
        """Handled messages older than any retry of them need no remembering."""
        await self._tx.execute(
            "DELETE FROM inbox WHERE handled_at IS NOT NULL AND received_at < ?",
            (to_sql_time(moment),),
        )
