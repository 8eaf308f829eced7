"""Everything stored about one customer, to hand to them (/mydata) or to erase (/forget)."""

from __future__ import annotations

import json
from typing import Any

from bot.domain.models import Identity
from bot.storage.database import Transaction
from bot.storage.dialect import Dialect
from bot.storage.outbox import OutboxRepository

# Each table that holds rows about a customer, with the columns shown to them.
_ABOUT_A_CUSTOMER = {
    "sales": "id, amount_minor, items, points, created_at, voided_at, void_reason",
    "surveys": "kind, created_at, score, answered_at, reason",
    "coupons": "kind, percent_off, free_item, valid_until, created_at, redeemed_at",
    "redemptions": "code, reward_key, cost, created_at, expires_at, redeemed_at",
    "risk_flags": "flag, details, raised_at, cleared_at",
    "outbox": "kind, template, status, created_at, sent_at",
    "invite_requests": "day, times",
    "customer_identities": "channel, channel_user_id, added_at",
}


class PersonalData:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def rows_about(self, customer_id: int) -> dict[str, list[dict[str, Any]]]:
        found = {}
        for table, columns in _ABOUT_A_CUSTOMER.items():
            rows = await self._tx.fetch_all(
                f"SELECT {columns} FROM {table} WHERE customer_id = ? ORDER BY 1",
                (customer_id,),
            )
            found[table] = [dict(row) for row in rows]
        return found

    async def messages_and_audit(
        self, customer_id: int, identities: list[Identity]
    ) -> dict[str, list[dict[str, Any]]]:
        """What they wrote to the shop and the bot has not handled yet (it is forgotten once
        handled), and the audit log's entries by them or about them."""
        messages = []
        for identity in identities:
            rows = await self._tx.fetch_all(
                "SELECT channel, received_at, body FROM inbox WHERE channel = ? AND person = ?"
                " AND handled_at IS NULL ORDER BY id",
                (identity.channel, identity.user_id),
            )
            messages += [dict(row) for row in rows]
        audit = await self._tx.fetch_all(
            "SELECT at, actor, action, subject, details FROM audit_log"
            f" WHERE {_audit_about(self._tx.dialect)} ORDER BY id",
            _audit_parameters(customer_id, identities),
        )
        return {"messages_received": messages, "audit_log": [dict(row) for row in audit]}

    async def erase_traces(self, customer_id: int, identities: list[Identity]) -> None:
        """What the customer row's own erasure leaves, for every id they were known by on any
        app: their words, the messages rendered for them or received from them, and their ids
        and what was written about them in the audit log and the ledger (pseudonymised: those
        rows are append-only, and keep the figures)."""
        pseudonym = f"erased:{customer_id}"
        await self._tx.execute(
            "UPDATE surveys SET reason = NULL WHERE customer_id = ? AND reason IS NOT NULL",
            (customer_id,),
        )
        await OutboxRepository(self._tx).erase_for(customer_id, identities)
        await self._tx.execute(
            "UPDATE points_ledger SET note = NULL WHERE customer_id = ? AND note IS NOT NULL",
            (customer_id,),
        )
        await self._tx.execute(
            "UPDATE audit_log SET details = NULL"
            f" WHERE ({_audit_about(self._tx.dialect)}) AND details IS NOT NULL",
            _audit_parameters(customer_id, identities),
        )
        for identity in identities:
            # Their messages not handled yet; the ids stay, so a late retry stays a retry.
            await self._tx.execute(
                "UPDATE inbox SET body = '{}', person = ? WHERE channel = ? AND person = ?",
                (pseudonym, identity.channel, identity.user_id),
            )
            await self._tx.execute(
                "UPDATE audit_log SET actor = ? WHERE actor LIKE '%:' || ?",
                (pseudonym, f"{identity.channel}:{identity.user_id}"),
            )


def _audit_about(sql: Dialect) -> str:
    """The audit log's rows about a customer: done to them (an adjustment, a coupon...) or
    by them."""
    return (
        f"subject = :subject OR {sql.json_text('details', 'customer')} = :customer_id"
        f" OR actor IN {sql.listed(':actors', 'TEXT')}"
    )


def _audit_parameters(customer_id: int, identities: list[Identity]) -> dict[str, Any]:
    actors = [
        f"{role}:{identity.channel}:{identity.user_id}"
        for identity in identities
        for role in ("customer", "staff", "owner")
    ]
    return {
        "subject": f"customer:{customer_id}",
        "customer_id": str(customer_id),
        "actors": json.dumps(actors),
    }
