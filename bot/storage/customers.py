"""Customers, their consent history and registration drafts."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from bot.domain.models import (
    Birthday,
    ConsentTopic,
    Customer,
    Identity,
    Language,
    RegistrationDraft,
    RegistrationStep,
)
from bot.storage.database import Row, Transaction, from_sql_time, to_sql_time

_CUSTOMER_COLUMNS = (
    "id, channel, channel_user_id, member_code, referral_code, name, phone, birthday_day,"
    " birthday_month, birthday_year, language, promotions_consent, surveys_enabled,"
    " referred_by, created_at"
)
_ACTIVE = "erased_at IS NULL"


def birthday_of(row: Row) -> Birthday | None:
    if row["birthday_day"] is None:
        return None
    return Birthday(row["birthday_day"], row["birthday_month"], row["birthday_year"])


def _customer(row: Row) -> Customer:
    return Customer(
        id=row["id"],
        identity=Identity(row["channel"], row["channel_user_id"]),
        member_code=row["member_code"],
        referral_code=row["referral_code"],
        name=row["name"],
        phone=row["phone"],
        birthday=birthday_of(row),
        language=Language(row["language"]),
        promotions_consent=bool(row["promotions_consent"]),
        surveys_enabled=bool(row["surveys_enabled"]),
        referred_by=row["referred_by"],
        created_at=from_sql_time(row["created_at"]),
    )


class CustomerRepository:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def _one(self, where: str, parameters: tuple[Any, ...]) -> Customer | None:
        row = await self._tx.fetch_one(
            f"SELECT {_CUSTOMER_COLUMNS} FROM customers WHERE {_ACTIVE} AND {where}", parameters
        )
        return _customer(row) if row else None

    async def by_id(self, customer_id: int) -> Customer | None:
        return await self._one("id = ?", (customer_id,))

    async def by_ids(self, customer_ids: list[int]) -> list[Customer]:
        """These customers (those not erased), in one query, in id order."""
        rows = await self._tx.fetch_all(
            f"SELECT {_CUSTOMER_COLUMNS} FROM customers WHERE {_ACTIVE}"
            f" AND id IN {self._tx.dialect.listed('?')} ORDER BY id",
            (json.dumps(customer_ids),),
        )
        return [_customer(row) for row in rows]

    async def by_identity(self, identity: Identity) -> Customer | None:
        """The customer writing from this identity, on whichever app they wrote last."""
        return await self._one(
            "id = (SELECT customer_id FROM customer_identities"
            " WHERE channel = ? AND channel_user_id = ?)",
            (identity.channel, identity.user_id),
        )

    async def add_identity(self, customer_id: int, identity: Identity, at: datetime) -> bool:
        cursor = await self._tx.execute(
            "INSERT INTO customer_identities (channel, channel_user_id, customer_id, added_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (identity.channel, identity.user_id, customer_id, to_sql_time(at)),
        )
        return cursor.rowcount == 1

    async def identities(self, customer_id: int) -> list[Identity]:
        rows = await self._tx.fetch_all(
            "SELECT channel, channel_user_id FROM customer_identities WHERE customer_id = ?",
            (customer_id,),
        )
        return [Identity(row["channel"], row["channel_user_id"]) for row in rows]

    async def known_as(self, customer: Customer) -> list[Identity]:
        """Every id the customer is known by, on every app."""
        return sorted({customer.identity, *await self.identities(customer.id)}, key=str)

    async def use_identity(self, customer_id: int, identity: Identity) -> None:
        """Pushes go where the customer wrote last."""
        await self._tx.execute(
            "UPDATE customers SET channel = ?, channel_user_id = ? WHERE id = ?",
            (identity.channel, identity.user_id, customer_id),
        )

    async def by_referral_code(self, code: str) -> Customer | None:
        return await self._one("referral_code = ?", (code,))

    async def by_member_code(self, code: str) -> Customer | None:
        return await self._one("member_code = ?", (code,))

    async def owning_phone(self, phone: str) -> list[Customer]:
        """Members whose number this is, known to be theirs (not merely typed)."""
        rows = await self._tx.fetch_all(
            f"SELECT {_CUSTOMER_COLUMNS} FROM customers WHERE {_ACTIVE} AND phone = ?"
            " AND phone_verified = 1 ORDER BY id",
            (phone,),
        )
        return [_customer(row) for row in rows]

    async def by_phone(self, phone: str) -> list[Customer]:
        rows = await self._tx.fetch_all(
            f"SELECT {_CUSTOMER_COLUMNS} FROM customers WHERE {_ACTIVE} AND phone = ? ORDER BY id",
            (phone,),
        )
        return [_customer(row) for row in rows]

    async def search_name(self, text: str, limit: int) -> list[Customer]:
        """Customers whose name contains `text`, case-insensitively (ASCII), newest first."""
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = await self._tx.fetch_all(
            f"SELECT {_CUSTOMER_COLUMNS} FROM customers WHERE {_ACTIVE}"
            " AND name LIKE ? ESCAPE '\\' ORDER BY id DESC LIMIT ?",
            (pattern, limit),
        )
        return [_customer(row) for row in rows]

    async def consenting_born_around(self, today: date) -> list[Customer]:
        """Reachable customers who accept promotions and whose birthday is today, or 29
        February when today is 28 February (the caller applies the leap-year rule)."""
        rows = await self._tx.fetch_all(
            f"SELECT {_CUSTOMER_COLUMNS} FROM customers WHERE {_ACTIVE}"
            " AND unreachable_at IS NULL AND promotions_consent = 1"
            " AND ((birthday_month = ? AND birthday_day = ?)"
            " OR (? = 1 AND birthday_month = 2 AND birthday_day = 29)) ORDER BY id",
            (today.month, today.day, int((today.month, today.day) == (2, 28))),
        )
        return [_customer(row) for row in rows]

    async def code_taken(self, code: str) -> bool:
        row = await self._tx.fetch_one(
            "SELECT 1 FROM customers WHERE member_code = :code OR referral_code = :code",
            {"code": code},
        )
        return row is not None

    async def insert(
        self,
        identity: Identity,
        *,
        member_code: str,
        referral_code: str,
        draft: RegistrationDraft,
        promotions_consent: bool,
        at: datetime,
    ) -> int:
        birthday = draft.birthday
        customer_id = await self._tx.insert(
            "INSERT INTO customers (channel, channel_user_id, member_code, referral_code, name,"
            " phone, birthday_day, birthday_month, birthday_year, language, promotions_consent,"
            " referred_by, created_at, phone_verified)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                identity.channel,
                identity.user_id,
                member_code,
                referral_code,
                draft.name,
                draft.phone,
                birthday.day if birthday else None,
                birthday.month if birthday else None,
                birthday.year if birthday else None,
                draft.language.value,
                int(promotions_consent),
                draft.referrer_id,
                to_sql_time(at),
                int(draft.phone_verified),
            ),
        )
        assert customer_id is not None
        await self.add_identity(customer_id, identity, at)
        return customer_id

    async def set_language(self, customer_id: int, language: Language) -> None:
        await self._tx.execute(
            "UPDATE customers SET language = ? WHERE id = ?", (language.value, customer_id)
        )

    async def set_consent(
        self, customer_id: int, topic: ConsentTopic, granted: bool, at: datetime
    ) -> None:
        column = {
            ConsentTopic.PROMOTIONS: "promotions_consent",
            ConsentTopic.SURVEYS: "surveys_enabled",
        }[topic]
        await self._tx.execute(
            f"UPDATE customers SET {column} = ? WHERE id = ?", (int(granted), customer_id)
        )
        await self._tx.execute(
            "INSERT INTO consent_log (customer_id, topic, granted, recorded_at)"
            " VALUES (?, ?, ?, ?)",
            (customer_id, topic.value, int(granted), to_sql_time(at)),
        )

    async def consent_history(self, customer_id: int) -> list[dict[str, Any]]:
        rows = await self._tx.fetch_all(
            "SELECT topic, granted, recorded_at FROM consent_log WHERE customer_id = ? ORDER BY id",
            (customer_id,),
        )
        return [
            {"topic": row["topic"], "granted": bool(row["granted"]), "at": row["recorded_at"]}
            for row in rows
        ]

    async def referred_count(self, customer_id: int) -> int:
        row = await self._tx.fetch_one(
            "SELECT COUNT(*) AS joined FROM customers WHERE referred_by = ?", (customer_id,)
        )
        return int(row["joined"]) if row else 0

    async def note_invite_request(self, customer_id: int, at: datetime) -> None:
        """The customer asked for their referral link: the owner's "links shared" counts these."""
        moment = to_sql_time(at)
        await self._tx.execute(
            "INSERT INTO invite_requests (customer_id, day, requested_at, times)"
            " VALUES (?, ?, ?, 1)"
            " ON CONFLICT (customer_id, day) DO UPDATE SET times = invite_requests.times + 1",
            (customer_id, moment[:10], moment),
        )

    async def last_id(self) -> int:
        """The highest customer id so far (0 before the first)."""
        row = await self._tx.fetch_one("SELECT COALESCE(MAX(id), 0) AS id FROM customers")
        return int(row["id"]) if row else 0

    async def erased_since(self, moment: datetime | None) -> bool:
        """Whether anyone was erased at or after `moment` (None: ever)."""
        row = await self._tx.fetch_one(
            "SELECT 1 AS found FROM customers WHERE erased_at >= ? LIMIT 1",
            (to_sql_time(moment) if moment else "",),  # every stored time sorts after ""
        )
        return row is not None

    async def erase(self, customer_id: int, at: datetime) -> None:
        """Drop everything that identifies the person; the row stays so the ledger still adds up."""
        for table in ("customer_identities", "link_offers"):
            await self._tx.execute(f"DELETE FROM {table} WHERE customer_id = ?", (customer_id,))
        await self._tx.execute(
            "UPDATE customers SET channel_user_id = NULL, name = NULL, phone = NULL,"
            " birthday_day = NULL, birthday_month = NULL, birthday_year = NULL,"
            " promotions_consent = 0, surveys_enabled = 0, erased_at = ? WHERE id = ?",
            (to_sql_time(at), customer_id),
        )


def _draft(row: Row, identity: Identity) -> RegistrationDraft:
    return RegistrationDraft(
        identity=identity,
        step=RegistrationStep(row["step"]),
        language=Language(row["language"]),
        suggested_name=row["suggested_name"],
        name=row["name"],
        phone=row["phone"],
        birthday=birthday_of(row),
        referrer_id=row["referrer_id"],
        phone_verified=bool(row["phone_verified"]),
    )


class DraftRepository:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def get(self, identity: Identity) -> RegistrationDraft | None:
        row = await self._tx.fetch_one(
            "SELECT * FROM registration_drafts WHERE channel = ? AND channel_user_id = ?",
            (identity.channel, identity.user_id),
        )
        return _draft(row, identity) if row else None

    async def save(self, draft: RegistrationDraft, at: datetime) -> None:
        birthday = draft.birthday
        await self._tx.execute(
            "INSERT INTO registration_drafts (channel, channel_user_id, step, language,"
            " suggested_name, name, phone, birthday_day, birthday_month, birthday_year,"
            " referrer_id, updated_at, phone_verified)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (channel, channel_user_id) DO UPDATE SET step = excluded.step,"
            " language = excluded.language, suggested_name = excluded.suggested_name,"
            " name = excluded.name, phone = excluded.phone,"
            " birthday_day = excluded.birthday_day, birthday_month = excluded.birthday_month,"
            " birthday_year = excluded.birthday_year, referrer_id = excluded.referrer_id,"
            " updated_at = excluded.updated_at, phone_verified = excluded.phone_verified",
            (
                draft.identity.channel,
                draft.identity.user_id,
                draft.step.value,
                draft.language.value,
                draft.suggested_name,
                draft.name,
                draft.phone,
                birthday.day if birthday else None,
                birthday.month if birthday else None,
                birthday.year if birthday else None,
                draft.referrer_id,
                to_sql_time(at),
                int(draft.phone_verified),
            ),
        )

    async def delete(self, identity: Identity) -> None:
        await self._tx.execute(
            "DELETE FROM registration_drafts WHERE channel = ? AND channel_user_id = ?",
            (identity.channel, identity.user_id),
        )


class LinkOffers:
    """A new app's identity offered to a member whose number it has, until they confirm."""

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def offer(self, customer_id: int, identity: Identity, at: datetime) -> int:
        offer_id = await self._tx.insert(
            "INSERT INTO link_offers (customer_id, channel, channel_user_id, created_at)"
            " VALUES (?, ?, ?, ?)",
            (customer_id, identity.channel, identity.user_id, to_sql_time(at)),
        )
        assert offer_id is not None
        return offer_id

    async def open_for(self, customer_id: int, since: datetime) -> tuple[int, Identity] | None:
        row = await self._tx.fetch_one(
            "SELECT id, channel, channel_user_id FROM link_offers WHERE customer_id = ?"
            " AND accepted_at IS NULL AND created_at >= ? ORDER BY id DESC LIMIT 1",
            (customer_id, to_sql_time(since)),
        )
        return (row["id"], Identity(row["channel"], row["channel_user_id"])) if row else None

    async def accept(self, offer_id: int, at: datetime) -> None:
        await self._tx.execute(
            "UPDATE link_offers SET accepted_at = ? WHERE id = ?", (to_sql_time(at), offer_id)
        )
