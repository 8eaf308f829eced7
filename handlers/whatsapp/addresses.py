"""WhatsApp's people as the core stores them, and back.

A person is known by the business-scoped user id WhatsApp gives when it gives one (`US.1349…`,
or a parent id `US.ENT.1181…`), else by their number as WhatsApp writes it (`wa_id`: the
international digits, no plus). Only identities of this channel in one of those shapes become
recipients: pywa sends any other string as a *group* id, so a Telegram user id or a stray
value must be refused here (`NotAnAddress`), never sent.
"""

from __future__ import annotations

import re

from bot.channels import NotAnAddress
from bot.domain.models import Identity

CHANNEL = "whatsapp"
# pywa's own shapes (pywa.types.sent_update.RecipientType); E.164 numbers have 15 digits at most.
WA_ID = re.compile(r"[1-9][0-9]{5,14}")
BUSINESS_SCOPED_ID = re.compile(r"[A-Z]{2}\.(?:ENT\.)?[0-9]{1,64}")


def identity_of(person: str) -> Identity:
    """The identity of whoever wrote: `person` is a business-scoped id or a wa_id."""
    return Identity(CHANNEL, person)


def recipient(identity: Identity) -> str:
    """What pywa sends to, for a WhatsApp identity; `NotAnAddress` for any other."""
    if identity.channel != CHANNEL or not is_person(identity.user_id):
        raise NotAnAddress(CHANNEL, identity)
    return identity.user_id


def is_person(text: str) -> bool:
    """A wa_id or a business-scoped id, as WhatsApp sends them."""
    return bool(WA_ID.fullmatch(text) or BUSINESS_SCOPED_ID.fullmatch(text))
