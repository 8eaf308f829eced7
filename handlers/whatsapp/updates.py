"""What a WhatsApp webhook carries, as the handlers need it.

Messages are recorded (bot/storage/inbox.py) as JSON and handled later, after a restart too,
so they are read from that stored JSON rather than through pywa's types, which need the live
client and the whole update around them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.inbox import Received
from handlers.whatsapp.addresses import CHANNEL as CHANNEL
from handlers.whatsapp.addresses import is_person


@dataclass(frozen=True)
class Incoming:
    id: int  # the inbox row: the update id
    person: str  # business-scoped user id when WhatsApp gives one, else the phone (wa_id)
    phone: str | None  # E.164, when known
    profile_name: str | None
    text: str  # typed text, or the title of the button or row tapped
    choice: str | None  # the id of the button or row tapped
    # "stop" or "resume": the person changed their marketing preference in WhatsApp itself.
    preference: str | None = None
    # What was sent: "read" (text or a tap), "reaction" (ignored), or "unread" (a sticker, a
    # location, a voice note...: the bot says what it reads).
    kind: str = "read"
    sent_at: datetime | None = None  # as the person's phone says


def messages_in(body: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(message id, person, what to keep) for each message in a webhook's body."""
    found = []
    for entry in body.get("entry") or []:
        for change in entry.get("changes") or []:
            value = change.get("value") or {}
            contacts = {contact.get("wa_id"): contact for contact in value.get("contacts") or []}
            for message in value.get("messages") or []:
                sender = message.get("from")
                contact: dict[str, Any] = contacts.get(sender) or next(iter(contacts.values()), {})
                person = contact.get("user_id") or message.get("from_user_id") or sender
                if isinstance(message.get("id"), str) and is_person(str(person)):
                    found.append(
                        (message["id"], str(person), {"message": message, "contact": contact})
                    )
    return found


Found = list[tuple[str, str, dict[str, Any]]]


def sent_since(found: Found, earliest: datetime) -> tuple[Found, Found]:
    """(sent at `earliest` or later, sent before): by the time each says it was sent (Meta's
    `timestamp`, Unix seconds); one that says nothing readable counts as new."""
    fresh: Found = []
    stale: Found = []
    for item in found:
        stamp = _timestamp(item[2])
        (stale if stamp is not None and stamp < earliest else fresh).append(item)
    return fresh, stale


def _timestamp(kept: dict[str, Any]) -> datetime | None:
    carrier = kept.get("message") or kept.get("preference") or {}
    text = carrier.get("timestamp") if isinstance(carrier, dict) else None
    if not isinstance(text, str | int) or not str(text).isascii() or not str(text).isdigit():
        return None
    try:
        return datetime.fromtimestamp(int(text), UTC)
    except (OverflowError, ValueError, OSError):
        return None


def preferences_in(body: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """Marketing preference changes (user_preferences), kept like messages: each handled once."""
    found = []
    for value in _values(body):
        for preference in value.get("user_preferences") or []:
            person = preference.get("user_id") or preference.get("wa_id")
            if preference.get("category") != "marketing_messages" or not is_person(str(person)):
                continue
            key = f"preference:{person}:{preference.get('timestamp')}:{preference.get('value')}"
            found.append((key, str(person), {"preference": preference}))
    return found


def failures_in(body: dict[str, Any]) -> list[tuple[str, str]]:
    """(message id, why) for each message WhatsApp reports it could not deliver after all."""
    found = []
    for value in _values(body):
        for status in value.get("statuses") or []:
            if status.get("status") != "failed" or not status.get("id"):
                continue
            error = (status.get("errors") or [{}])[0]
            found.append((status["id"], f"{error.get('code')}: {error.get('title', 'failed')}"))
    return found


def _values(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        change.get("value") or {}
        for entry in body.get("entry") or []
        for change in entry.get("changes") or []
    ]


def incoming(received: Received) -> Incoming:
    """What the handlers read of a recorded message. Webhooks are signed, but what they carry
    is read defensively: a field of an unexpected type reads as absent."""
    preference = _part(received.body, "preference")
    if preference:
        wa_id = _string(preference, "wa_id")
        return Incoming(
            received.id,
            received.person,
            f"+{wa_id}" if wa_id else None,
            None,
            "",
            None,
            preference=_string(preference, "value") or None,
        )
    message = _part(received.body, "message")
    contact = _part(received.body, "contact")
    kind = message.get("type")
    text, choice = "", None
    if kind == "text":
        text = _string(_part(message, "text"), "body")
    elif kind == "interactive":
        interactive = _part(message, "interactive")
        reply = _part(interactive, "button_reply") or _part(interactive, "list_reply")
        text, choice = _string(reply, "title"), _string(reply, "id") or None
    elif kind == "button":  # a template's quick reply
        button = _part(message, "button")
        text, choice = _string(button, "text"), _string(button, "payload") or None
    wa_id = _string(message, "from") or _string(contact, "wa_id")
    read = kind in ("text", "interactive", "button")
    return Incoming(
        id=received.id,
        person=received.person,
        phone=f"+{wa_id}" if wa_id else None,
        profile_name=_string(_part(contact, "profile"), "name") or None,
        text=text,
        choice=choice,
        kind="read" if read else "reaction" if kind == "reaction" else "unread",
        sent_at=_timestamp(received.body),
    )


def _part(body: dict[str, Any], key: str) -> dict[str, Any]:
    value = body.get(key)
    return value if isinstance(value, dict) else {}


def _string(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    return value if isinstance(value, str) else ""
