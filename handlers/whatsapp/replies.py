"""Answering the person who wrote, on WhatsApp: a template rendered in their language, with
the options they may tap."""

from __future__ import annotations

import logging
from typing import Any

from bot.bootstrap import Services
from bot.channels import Delivered
from bot.domain.models import Identity, Language, Refused
from handlers.whatsapp.channel import Option, WhatsAppChannel

log = logging.getLogger(__name__)


class Replies:
    def __init__(self, services: Services, channel: WhatsAppChannel) -> None:
        self.services = services
        self.channel = channel

    def label(self, language: Language, name: str) -> str:
        return self.services.messages.label(language, name)

    async def say(
        self,
        to: Identity,
        language: Language,
        template: str,
        options: list[Option] | None = None,
        **context: Any,
    ) -> None:
        text = self.services.messages.render(language, template, **context)
        list_title = self.label(language, "menu_button")
        outcome = await self.channel.send_options(to, text, options or [], list_title)
        if not isinstance(outcome, Delivered):
            log.warning("reply %s not delivered: %s", template, outcome)

    async def refuse(self, to: Identity, language: Language, refused: Refused) -> None:
        """Say why an action did not happen."""
        await self.say(to, language, f"problems/{refused.problem}")

    async def photo(self, to: Identity, image: bytes, caption: str) -> None:
        outcome = await self.channel.send_photo(to, image, caption)
        if not isinstance(outcome, Delivered):
            log.warning("photo not delivered: %s", outcome)

    async def document(self, to: Identity, content: bytes, filename: str, caption: str) -> None:
        outcome = await self.channel.send_document(to, content, filename, caption)
        if not isinstance(outcome, Delivered):
            log.warning("document not delivered: %s", outcome)
