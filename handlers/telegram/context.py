"""What the Telegram handlers have in reach: `context.services` (the core) and
`context.language` (the sender's app language, if the bot speaks it)."""

from __future__ import annotations

import logging
from typing import Any, cast

from telegram import Message, Update, User
from telegram.ext import Application, CallbackContext, ContextTypes, ExtBot

from bot.bootstrap import Services
from bot.domain.models import Language
from bot.messages import pick_language
from handlers.telegram.addresses import CHANNEL as CHANNEL

log = logging.getLogger(__name__)

SERVICES_KEY = "services"
INBOX_KEY = "inbox"

BotApplication = Application[Any, Any, Any, Any, Any, Any]


class Context(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], dict[Any, Any]]):
    """PTB's context, with the core and the sender at hand."""

    def __init__(
        self,
        application: BotApplication,
        chat_id: int | None = None,
        user_id: int | None = None,
    ) -> None:
        super().__init__(application, chat_id, user_id)
        self.sender: User | None = None

    @classmethod
    def from_update(cls, update: object, application: BotApplication) -> Context:
        context = super().from_update(update, application)
        if isinstance(update, Update):
            context.sender = update.effective_user
        return context

    @property
    def services(self) -> Services:
        return cast(Services, self.bot_data[SERVICES_KEY])

    @property
    def language(self) -> Language:
        """The sender's Telegram language, if we speak it: for staff, owners and newcomers
        (members have their own, on their record)."""
        default = Language(self.services.settings.default_language)
        return pick_language(self.sender.language_code if self.sender else None, default)


def context_types() -> ContextTypes[Context, dict[Any, Any], dict[Any, Any], dict[Any, Any]]:
    return ContextTypes(context=Context)


def services_of(application: BotApplication) -> Services:
    return cast(Services, application.bot_data[SERVICES_KEY])


async def reply(
    update: Update,
    context: Context,
    language: Language,
    template: str,
    **template_context: Any,
) -> Message:
    """For what is said outside a conversation: a flood warning, an apology for an error."""
    text = context.services.messages.render(language, template, **template_context)
    chat = update.effective_chat
    assert chat is not None
    return await context.bot.send_message(chat.id, text)
