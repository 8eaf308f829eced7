"""A Telegram update read into the core's terms, and the core's replies sent back: a command
or text (a deep link's `/start c_…` included), a shared contact, a photo with its caption, or
a tap on an inline button."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from functools import partial

from telegram import Update
from telegram.ext import ExtBot

from bot.bootstrap import Services
from bot.conversation.core import Conversation
from bot.conversation.said import Said, SharedContact, Surface
from bot.domain.models import Identity
from bot.inbox import Received
from handlers.telegram.addresses import CHANNEL, identity_of
from handlers.telegram.channel import start_link
from handlers.telegram.context import SERVICES_KEY, BotApplication, Context
from handlers.telegram.render import TelegramReplies

CONVERSATION_KEY = "conversation"
SURFACE_KEY = "surface"
PHOTOS_KEY = "photo_ids"
MOST_OPTIONS = 100  # an inline keyboard holds 100 buttons


def surface(bot: ExtBot[None]) -> Surface:
    return Surface(
        CHANNEL,
        command_menu=True,
        most_options=MOST_OPTIONS,
        joins_on_first_message=False,
        link=partial(start_link, bot),
    )


def read(update: Update, on: Surface) -> Said | None:
    """What the person said; None for an update that says nothing to the bot."""
    user, chat = update.effective_user, update.effective_chat
    if user is None or chat is None:
        return None
    said = Said(
        identity_of(user),
        on,
        key=f"{CHANNEL}:{update.update_id}",
        profile_name=user.first_name,
        app_language=user.language_code,
    )
    if update.callback_query is not None:
        return replace(said, tap=update.callback_query.data or "")
    message = update.effective_message
    if message is None:
        return None
    if message.contact is not None:
        own = message.contact.user_id == user.id
        return replace(said, contact=SharedContact(message.contact.phone_number, own))
    if message.photo:
        largest = message.photo[-1]

        async def download() -> bytes:
            return bytes(await (await largest.get_file()).download_as_bytearray())

        return replace(said, text=message.caption or "", photo=download)
    return None if message.text is None else replace(said, text=message.text)


async def on_update(update: Update, context: Context) -> None:
    said = read(update, context.bot_data[SURFACE_KEY])
    chat = update.effective_chat
    if said is None or chat is None:
        return
    conversation: Conversation = context.bot_data[CONVERSATION_KEY]
    replies = replies_to(context.application, update, chat.id)
    try:
        async for reply in conversation.answer(said):
            await replies.send(reply)
    finally:
        await replies.finish()


class TelegramInbox:
    """How the inbox worker (bot/inbox.py) reads a Telegram update the poller wrote down:
    handled through the application, as PTB would have handled it straight from the poll."""

    def __init__(self, application: BotApplication) -> None:
        self._application = application

    def people(self, received: Received) -> list[Identity]:
        return [Identity(CHANNEL, received.person)]

    def sent_at(self, received: Received) -> datetime | None:
        message = received.body.get("message")  # a tap has no date of its own
        date = message.get("date") if isinstance(message, dict) else None
        if type(date) is not int:
            return None
        try:
            return datetime.fromtimestamp(date, UTC)
        except (OverflowError, OSError, ValueError):  # not a time Telegram would send
            return None

    async def handle(self, received: Received) -> None:
        await self._application.process_update(self._update(received))

    async def slow_down(self, received: Received) -> None:
        update = self._update(received)
        chat = update.effective_chat
        if chat is None:
            return
        conversation: Conversation = self._application.bot_data[CONVERSATION_KEY]
        reply = await conversation.slow_down(Identity(CHANNEL, received.person))
        replies = replies_to(self._application, update, chat.id)
        await replies.send(replace(reply, as_notice=True))  # an alert, if it was a tap

    async def dropped(self, received: Received) -> None:
        """Not answered; a tap is still acknowledged, or the person's button would spin."""
        if "callback_query" not in received.body:
            return  # not read at all: a flood of texts costs no parsing
        query = self._update(received).callback_query
        if query is not None:
            await query.answer()

    def _update(self, received: Received) -> Update:
        return Update.de_json(received.body, self._application.bot)


def replies_to(application: BotApplication, update: Update, chat_id: int) -> TelegramReplies:
    services: Services = application.bot_data[SERVICES_KEY]
    photo_ids = application.bot_data.setdefault(PHOTOS_KEY, {})
    return TelegramReplies(
        application.bot, services.messages, chat_id, update.callback_query, photo_ids
    )
