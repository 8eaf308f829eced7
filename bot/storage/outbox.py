"""The outbox: pushes decided by a job, waiting to be delivered, and what became of each."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from bot.domain.models import Identity, Language
from bot.storage.database import Selected, Transaction, from_sql_time, to_sql_time


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
    customer_id: int | None  # None: a message to staff or an owner
    identity: Identity
    language: Language
    kind: str
    template: str
    payload: dict[str, Any]
    attempts: int


@dataclass(frozen=True)
class NewPush:
    """A message to queue: to a customer (reached wherever they are when it goes out), or to
    someone else by `person` and `language` (staff, an owner)."""

    customer_id: int | None
    kind: str
    dedupe_key: str
    template: str
    payload: dict[str, Any]
    person: Identity | None = None
    language: Language | None = None
    about_customer_id: int | None = None  # for someone else: whose details it carries

    def __post_init__(self) -> None:
        assert (self.customer_id is None) == (self.person is not None and bool(self.language))

    def row(self) -> list[Any]:
        """Its values for `_COLUMNS`, in order."""
        return [
            self.customer_id,
            self.person.channel if self.person else None,
            self.person.user_id if self.person else None,
            self.language.value if self.person and self.language else None,
            self.about_customer_id,
            self.kind,
            self.dedupe_key,
            self.template,
            json.dumps(self.payload, ensure_ascii=False),
        ]


# What a push brings to its outbox row (the rest is the outbox's own).
_COLUMNS = (
    ("customer_id", "INTEGER"),
    ("channel", "TEXT"),
    ("channel_user_id", "TEXT"),
    ("language", "TEXT"),
    ("about_customer_id", "INTEGER"),
    ("kind", "TEXT"),
    ("dedupe_key", "TEXT"),
    ("template", "TEXT"),
    ("payload", "TEXT"),
)


_INSERT = (
    f"INSERT INTO outbox ({', '.join(name for name, _ in _COLUMNS)}, next_attempt_at,"
    " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dedupe_key) DO NOTHING"
)

# The recipient as they are now: a customer's current chat and language, or the row's own.
_DELIVERABLE = (
    "SELECT o.id, o.customer_id, o.kind, o.template, o.payload, o.attempts,"
    " COALESCE(c.channel, o.channel) AS channel,"
    " COALESCE(c.channel_user_id, o.channel_user_id) AS channel_user_id,"
    " COALESCE(c.language, o.language) AS language"
    " FROM outbox o LEFT JOIN customers c ON c.id = o.customer_id"
    f" WHERE o.status = '{OutboxStatus.PENDING.value}'"
    " AND (o.customer_id IS NULL OR (c.erased_at IS NULL AND c.unreachable_at IS NULL))"
)


_BETWEEN_COLONS = "':' || dedupe_key || ':'"


class OutboxRepository:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def enqueue(
        self, push: NewPush, at: datetime, *, now_to: tuple[Identity, Language] | None = None
    ) -> bool:
        """Queue a message; False when one with this key was queued before (sent or not).
        `now_to`: send it right after the commit, there (a customer's current chat); the
        transaction remembers it for that. A person's message always goes right away."""
        moment = to_sql_time(at)
        push_id = await self._tx.insert(_INSERT, (*push.row(), moment, moment))
        if push_id is None:
            return False
        if push.person is not None and push.language is not None:
            now_to = (push.person, push.language)
        if now_to is None:  # the dispatcher's: woken for it after the commit
            self._tx.left_to_dispatcher = True
        else:  # the update's, sent once it is handled (its reply first)
            identity, language = now_to
            self._tx.on_commit(
                OutboxItem(
                    push_id,
                    push.customer_id,
                    identity,
                    language,
                    push.kind,
                    push.template,
                    push.payload,
                    attempts=0,
                )
            )
        return True

    async def enqueue_many(self, pushes: list[NewPush], at: datetime) -> None:
        """Queue many pushes in one statement; keys queued before are skipped. These wait
        for the dispatcher's pace: they are a job's, not an update's."""
        if not pushes:
            return
        given = self._tx.dialect.rows(":rows", _COLUMNS)
        await self._tx.execute(
            f"INSERT INTO outbox ({', '.join(name for name, _ in _COLUMNS)}, next_attempt_at,"
            f" created_at) SELECT {', '.join(name for name, _ in _COLUMNS)}, :at, :at"
            f" FROM {given} AS given WHERE TRUE ORDER BY n ON CONFLICT (dedupe_key) DO NOTHING",
            {"rows": json.dumps([push.row() for push in pushes]), "at": to_sql_time(at)},
        )
        self._tx.left_to_dispatcher = True

    async def enqueue_selected(
        self,
        rows: Selected,
        kind: str,
        template: str,
        payload: dict[str, Any],
        at: datetime,
        *,
        about_at: tuple[str, ...] | None = None,
    ) -> int:
        """A push to each customer a query finds, in one INSERT ... SELECT: a job's tens of
        thousands cost no Python per row. Each payload is `payload`, with the row's `about`
        set at the path `about_at` when one is given; keys queued before are skipped. How many
        were queued."""
        moment = to_sql_time(at)
        payload_sql = (
            self._tx.dialect.json_set(":payload", about_at, "selected.about")
            if about_at
            else ":payload"
        )
        # SQLite needs the WHERE before an upsert's ON CONFLICT to parse it.
        cursor = await self._tx.execute(
            "INSERT INTO outbox (customer_id, kind, dedupe_key, template, payload,"
            f" next_attempt_at, created_at) SELECT customer_id, :kind, dedupe_key, :template,"
            f" {payload_sql}, :at, :at FROM ({rows.sql}) AS selected WHERE TRUE"
            " ORDER BY selected.customer_id ON CONFLICT (dedupe_key) DO NOTHING",
            {
                **rows.parameters,
                "kind": kind,
                "template": template,
                "payload": json.dumps(payload, ensure_ascii=False),
                "at": moment,
            },
        )
        self._tx.left_to_dispatcher = cursor.rowcount > 0 or self._tx.left_to_dispatcher
        return cursor.rowcount

    async def existing_keys(self, dedupe_keys: list[str]) -> set[str]:
        """Which of these keys were queued before (one query, however many keys)."""
        rows = await self._tx.fetch_all(
            "SELECT dedupe_key FROM outbox WHERE dedupe_key IN"
            f" {self._tx.dialect.listed('?', 'TEXT')}",
            (json.dumps(dedupe_keys),),
        )
        return {row["dedupe_key"] for row in rows}

    async def customers_told_since(
        self, kind: str, customers: tuple[int, int], since: datetime
    ) -> set[int]:
        """Which customers among the ids `customers` spans (first, last) were queued a message
        of `kind` since then."""
        rows = await self._tx.fetch_all(
            "SELECT DISTINCT customer_id FROM outbox WHERE customer_id BETWEEN ? AND ?"
            " AND kind = ? AND created_at > ?",
            (*customers, kind, to_sql_time(since)),
        )
        return {row["customer_id"] for row in rows}

    async def due(
        self, now: datetime, limit: int, *, held_kinds: tuple[str, ...] = ()
    ) -> list[OutboxItem]:
        """Pending pushes whose time has come, for people who can still be reached; those of
        `held_kinds` wait (quiet hours)."""
        rows = await self._tx.fetch_all(
            f"{_DELIVERABLE} AND o.next_attempt_at <= ?"
            f" AND o.kind NOT IN {self._tx.dialect.listed('?', 'TEXT')} ORDER BY o.id LIMIT ?",
            (to_sql_time(now), json.dumps(held_kinds), limit),
        )
        return [_item(row) for row in rows]

    async def count_due(self, now: datetime, kinds: tuple[str, ...]) -> int:
        row = await self._tx.fetch_one(
            "SELECT COUNT(*) AS n FROM outbox WHERE status = ? AND next_attempt_at <= ?"
            f" AND kind IN {self._tx.dialect.listed('?', 'TEXT')}",
            (OutboxStatus.PENDING, to_sql_time(now), json.dumps(kinds)),
        )
        return int(row["n"]) if row else 0

    async def claim(self, item_ids: list[int], at: datetime) -> set[int]:
        """Mark pending pushes `sending` (since `at`, kept in next_attempt_at), in one
        statement; those another delivery took first are left out of the ids returned."""
        rows = await self._tx.fetch_all(
            "UPDATE outbox SET status = :status_sending, next_attempt_at = :at"
            " WHERE status = :status_pending"
            f" AND id IN {self._tx.dialect.listed(':ids')} RETURNING id",
            {**_STATUSES, "ids": json.dumps(item_ids), "at": to_sql_time(at)},
        )
        return {row["id"] for row in rows}

    async def mark_sent(self, sent: dict[int, str | None], at: datetime) -> set[int]:
        """Item id -> the channel's id for the message (None when it gives none)."""
        rows = await self._tx.fetch_all(
            "UPDATE outbox SET status = :status_sent, sent_at = :at,"
            f" channel_message_id = sent.value FROM {self._tx.dialect.pairs(':sent')} AS sent"
            " WHERE outbox.id = CAST(sent.key AS INTEGER) RETURNING outbox.id",
            {**_STATUSES, "sent": json.dumps(sent), "at": to_sql_time(at)},
        )
        return {row["id"] for row in rows}

    async def failed_later(self, channel_message_id: str, reason: str) -> bool:
        """The channel reports that a message it accepted was not delivered after all."""
        cursor = await self._tx.execute(
            "UPDATE outbox SET status = :status_failed, last_error = :reason"
            " WHERE channel_message_id = :message AND status = :status_sent",
            {**_STATUSES, "message": channel_message_id, "reason": reason},
        )
        return cursor.rowcount == 1

    async def note_template(self, item_id: int, name: str, at: datetime) -> None:
        await self._tx.execute(
            "UPDATE outbox SET sent_as_template = ?, template_sent_at = ? WHERE id = ?",
            (name, to_sql_time(at), item_id),
        )

    async def people_sent_templates(
        self, channel: str, since: datetime
    ) -> tuple[int, datetime | None]:
        """How many people were sent a template on `channel` since then, and the oldest send."""
        row = await self._tx.fetch_one(
            "SELECT COUNT(DISTINCT COALESCE(CAST(o.customer_id AS TEXT), o.channel_user_id)) AS n,"
            " MIN(o.template_sent_at) AS oldest FROM outbox o"
            " LEFT JOIN customers c ON c.id = o.customer_id"
            " WHERE o.template_sent_at >= ? AND COALESCE(c.channel, o.channel) = ?",
            (to_sql_time(since), channel),
        )
        assert row is not None
        return int(row["n"]), from_sql_time(row["oldest"]) if row["oldest"] else None

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
            " sent_at = CASE WHEN ? = 1 THEN ? ELSE sent_at END WHERE id = ?",
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

    async def mark_interrupted(self, claimed_before: datetime) -> int:
        """Pushes caught mid-send by a crash (claimed before then and still `sending`) may or
        may not have arrived: never send them again."""
        cursor = await self._tx.execute(
            "UPDATE outbox SET status = :status_uncertain,"
            " last_error = 'interrupted while sending' WHERE status = :status_sending"
            " AND next_attempt_at <= :before",
            {**_STATUSES, "before": to_sql_time(claimed_before)},
        )
        return cursor.rowcount

    async def backlog(self) -> tuple[int, datetime | None]:
        """Pending messages, and when the oldest of them was written."""
        row = await self._tx.fetch_one(
            "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM outbox WHERE status = ?",
            (OutboxStatus.PENDING,),
        )
        if row is None or not row["n"]:
            return 0, None
        return int(row["n"]), from_sql_time(row["oldest"])

    async def counts(self) -> dict[str, int]:
        rows = await self._tx.fetch_all("SELECT status, COUNT(*) AS n FROM outbox GROUP BY status")
        return {row["status"]: int(row["n"]) for row in rows}

    async def next_due_at(self) -> datetime | None:
        row = await self._tx.fetch_one(
            "SELECT MIN(next_attempt_at) AS due FROM outbox WHERE status = ?",
            (OutboxStatus.PENDING,),
        )
        return from_sql_time(row["due"]) if row and row["due"] else None

    async def erase_for(self, customer_id: int, known_as: list[Identity]) -> None:
        """/forget: the messages rendered for the customer go, unsent ones will never be, and
        the keys that name one of their ids ("...:whatsapp:34612345678:...") name a pseudonym
        instead (rows to a customer are addressed by the customer, not by an id)."""
        for identity in known_as:
            # A message to one of their ids before they were a customer (a link offer): now
            # addressed by the (erased) customer instead.
            await self._tx.execute(
                "UPDATE outbox SET customer_id = ?, channel = NULL, channel_user_id = NULL"
                " WHERE customer_id IS NULL AND channel = ? AND channel_user_id = ?",
                (customer_id, identity.channel, identity.user_id),
            )
            # Matched between colons, so that the id 42 leaves "survey:142" alone.
            await self._tx.execute(
                "UPDATE outbox SET dedupe_key = substr(replace(':' || dedupe_key || ':', :id,"
                " :pseudonym), 2, length(replace(':' || dedupe_key || ':', :id, :pseudonym)) - 2)"
                f" WHERE {self._tx.dialect.position(':id', _BETWEEN_COLONS)} > 0",
                {
                    "id": f":{identity.channel}:{identity.user_id}:",
                    "pseudonym": f":{identity.channel}:erased{customer_id}:",
                },
            )
        await self._tx.execute(
            "UPDATE outbox SET payload = '{}', last_error = NULL,"
            " status = CASE WHEN status IN (:status_pending, :status_sending)"
            " THEN :status_failed ELSE status END WHERE customer_id = :customer"
            " OR (customer_id IS NULL AND about_customer_id = :customer)",
            {**_STATUSES, "customer": customer_id},
        )

    async def mark_customer_unreachable(self, customer_id: int, at: datetime) -> None:
        await self._tx.execute(
            "UPDATE customers SET unreachable_at = ? WHERE id = ? AND unreachable_at IS NULL",
            (to_sql_time(at), customer_id),
        )


def _item(row: Any) -> OutboxItem:
    return OutboxItem(
        id=row["id"],
        customer_id=row["customer_id"],
        identity=Identity(row["channel"], row["channel_user_id"]),
        language=Language(row["language"]),
        kind=row["kind"],
        template=row["template"],
        payload=json.loads(row["payload"]),
        attempts=row["attempts"],
    )
