"""Telegram's people as the core stores them (`Identity("telegram", "<user id>")`), and back.

A private chat's id is its user's id: a positive integer of at most 52 bits. Only identities
of this channel become chat ids; a WhatsApp id (phone digits or a business-scoped id) is
refused with `NotAnAddress`, never sent to Telegram as a number that happens to parse.
"""

from __future__ import annotations

from collections.abc import Iterable

from telegram import User

from bot.channels import NotAnAddress
from bot.domain.models import Identity

CHANNEL = "telegram"
LARGEST_USER_ID = 2**52  # Telegram: "at most 52 significant bits"


def identity_of(user: User) -> Identity:
    return Identity(CHANNEL, str(user.id))


def chat_id(identity: Identity) -> int:
    """The chat to write to, for a Telegram identity; `NotAnAddress` for any other."""
    text = identity.user_id
    if identity.channel != CHANNEL:
        raise NotAnAddress(CHANNEL, identity)
    if not (text.isascii() and text.isdigit() and not text.startswith("0")):
        raise NotAnAddress(CHANNEL, identity)
    number = int(text)
    if number > LARGEST_USER_ID:
        raise NotAnAddress(CHANNEL, identity)
    return number


def on_telegram(identities: Iterable[Identity]) -> list[Identity]:
    """The identities of this channel: the others are other channels' people."""
    return [identity for identity in identities if identity.channel == CHANNEL]
