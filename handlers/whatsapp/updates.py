"""What a WhatsApp webhook carries, as the handlers need it.

Messages are recorded (bot/storage/inbox.py) as JSON and handled later, after a restart too,
so they are read from that stored JSON rather than through pywa's types, which need the live
client and the whole update around them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.storage.inbox import Received
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
    preference = received.body.get("preference")
    if preference is not None:
        wa_id = preference.get("wa_id")
        return Incoming(
            received.id,
            received.person,
            f"+{wa_id}" if wa_id else None,
            None,
            "",
            None,
            preference=preference.get("value"),
        )
    message = received.body["message"]
    contact = received.body.get("contact") or {}
    kind = message.get("type")
    text, choice = "", None
    if kind == "text":
        text = (message.get("text") or {}).get("body", "")
    elif kind == "interactive":
        interactive = message.get("interactive") or {}
        reply = interactive.get("button_reply") or interactive.get("list_reply") or {}
        text, choice = reply.get("title", ""), reply.get("id")
    elif kind == "button":  # a template's quick reply
        button = message.get("button") or {}
        text, choice = button.get("text", ""), button.get("payload")
    wa_id = message.get("from") or contact.get("wa_id")
    return Incoming(
        id=received.id,
        person=received.person,
        phone=f"+{wa_id}" if wa_id else None,
        profile_name=(contact.get("profile") or {}).get("name"),
        text=text,
        choice=choice,
    )
