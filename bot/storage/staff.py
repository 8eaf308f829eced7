"""Staff members, their one-time invitations, and the audit log of everything staff do."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from bot.domain.models import Identity, Language, StaffMember
from bot.storage.database import Row, Transaction, from_sql_time, to_sql_time


def _member(row: Row) -> StaffMember:
    return StaffMember(
        id=row["id"],
        identity=Identity(row["channel"], row["channel_user_id"]),
        name=row["name"],
        language=Language(row["language"]),
        added_at=from_sql_time(row["added_at"]),
    )


class StaffRepository:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def active(self) -> list[StaffMember]:
        rows = await self._tx.fetch_all(
            "SELECT * FROM staff WHERE removed_at IS NULL ORDER BY added_at, id"
        )
        return [_member(row) for row in rows]

    async def by_identity(self, identity: Identity) -> StaffMember | None:
        row = await self._tx.fetch_one(
            "SELECT * FROM staff WHERE removed_at IS NULL AND channel = ? AND channel_user_id = ?",
            (identity.channel, identity.user_id),
        )
        return _member(row) if row else None

    async def owner_languages(self) -> dict[Identity, Language]:
        rows = await self._tx.fetch_all("SELECT * FROM owner_languages")
        return {
            Identity(row["channel"], row["channel_user_id"]): Language(row["language"])
            for row in rows
        }

    async def set_owner_language(self, identity: Identity, language: Language) -> None:
        await self._tx.execute(
            "INSERT INTO owner_languages (channel, channel_user_id, language) VALUES (?, ?, ?)"
            " ON CONFLICT (channel, channel_user_id) DO UPDATE SET language = excluded.language",
            (identity.channel, identity.user_id, language.value),
        )

    async def by_id(self, staff_id: int) -> StaffMember | None:
        row = await self._tx.fetch_one(
            "SELECT * FROM staff WHERE removed_at IS NULL AND id = ?", (staff_id,)
        )
        return _member(row) if row else None

    async def add(
        self, identity: Identity, name: str, language: Language, added_by: str, at: datetime
    ) -> int:
        staff_id = await self._tx.insert(
            "INSERT INTO staff (channel, channel_user_id, name, language, added_by, added_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (identity.channel, identity.user_id, name, language.value, added_by, to_sql_time(at)),
        )
        assert staff_id is not None
        return staff_id

    async def remove(self, staff_id: int, at: datetime) -> bool:
        cursor = await self._tx.execute(
            "UPDATE staff SET removed_at = ? WHERE id = ? AND removed_at IS NULL",
            (to_sql_time(at), staff_id),
        )
        return cursor.rowcount == 1

    async def create_invite(
        self, token: str, created_by: str, at: datetime, expires_at: datetime
    ) -> None:
        await self._tx.execute(
            "INSERT INTO staff_invites (token, created_by, created_at, expires_at)"
            " VALUES (?, ?, ?, ?)",
            (token, created_by, to_sql_time(at), to_sql_time(expires_at)),
        )

    async def invite(self, token: str) -> Row | None:
        return await self._tx.fetch_one("SELECT * FROM staff_invites WHERE token = ?", (token,))

    async def use_invite(self, token: str, staff_id: int, at: datetime) -> bool:
        """Mark the invitation used; False when someone else used it first."""
        cursor = await self._tx.execute(
            "UPDATE staff_invites SET used_by = ?, used_at = ? WHERE token = ? AND used_by IS NULL",
            (staff_id, to_sql_time(at), token),
        )
        return cursor.rowcount == 1


class AuditLog:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def record(
        self,
        actor: str,
        action: str,
        at: datetime,
        subject: str | None = None,
        **details: Any,
    ) -> None:
        await self._tx.execute(
            "INSERT INTO audit_log (actor, action, subject, details, at) VALUES (?, ?, ?, ?, ?)",
            (
                actor,
                action,
                subject,
                json.dumps(details, ensure_ascii=False, default=str) if details else None,
                to_sql_time(at),
            ),
        )

    async def entries(self, action: str | None = None) -> list[dict[str, Any]]:
        rows = await self._tx.fetch_all(
            "SELECT actor, action, subject, details, at FROM audit_log"
            " WHERE CAST(:action AS TEXT) IS NULL OR action = :action ORDER BY id",
            {"action": action},
        )
        return [
            {
                "actor": row["actor"],
                "action": row["action"],
                "subject": row["subject"],
                "details": json.loads(row["details"]) if row["details"] else {},
                "at": row["at"],
            }
            for row in rows
        ]
