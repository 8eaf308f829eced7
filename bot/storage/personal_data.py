"""Everything stored about one customer, to hand to them (/mydata) or to erase (/forget)."""

from __future__ import annotations

from typing import Any

from bot.domain.models import Identity
from bot.storage.database import Transaction
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

    async def erase_traces(self, customer_id: int, identity: Identity) -> None:
        """What the customer row's own erasure leaves: their words, the messages rendered for
        them, and their channel id in the audit log (replaced by a pseudonym)."""
        await self._tx.execute(
            "UPDATE surveys SET reason = NULL WHERE customer_id = ? AND reason IS NOT NULL",
            (customer_id,),
        )
        await OutboxRepository(self._tx).erase_for(customer_id)
        # Their messages as received (WhatsApp); the ids stay, so a late retry stays a retry.
        await self._tx.execute(
            "UPDATE inbox SET body = '{}' WHERE channel = ? AND person = ?",
            (identity.channel, identity.user_id),
        )
        await self._tx.execute(
            "UPDATE audit_log SET actor = 'erased:' || ? WHERE actor = ?",
            (customer_id, f"customer:{identity.channel}:{identity.user_id}"),
        )
