"""The core's replies as WhatsApp shows them: its formatting, options as reply buttons, a list
or numbered text (handlers/whatsapp/channel.py decides which), suggestions as buttons that
type their text, photos and documents with their captions. WhatsApp cannot edit a message,
so a reply to a tap is simply sent."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from bot.channels import Delivered, Outcome
from bot.conversation.replies import Reply
from bot.domain.models import Identity
from bot.messages import Messages
from handlers.whatsapp.channel import Option, WhatsAppChannel

log = logging.getLogger(__name__)

SAY = "say:"  # an option that, tapped, is read as its text typed


async def render(channel: WhatsAppChannel, messages: Messages, to: Identity, reply: Reply) -> None:
    if reply.only_to_clear:
        return  # WhatsApp leaves no suggestions on screen
    text = messages.render(reply.language, reply.template, **reply.context)
    outcome: Outcome
    if reply.photo is not None:
        photo = reply.photo
        outcome = await channel.send_photo(
            to, photo.draw, text, key=photo.reuse_key, filename=photo.filename
        )
    elif reply.document is not None:
        document = reply.document
        content = document.content
        if content is None:
            assert document.path is not None
            content = await asyncio.to_thread(Path(document.path).read_bytes)
        outcome = await channel.send_document(to, content, document.filename, text)
    else:
        options = [Option(option.tap.pack(), option.label) for option in reply.taps]
        options += [Option(f"{SAY}{said}", said) for said in reply.suggestions]
        title = messages.label(reply.language, "menu_button")  # what a list is called
        outcome = await channel.send_options(to, text, options, title)
    if not isinstance(outcome, Delivered):
        log.warning("reply %s not delivered: %s", reply.template, outcome)
