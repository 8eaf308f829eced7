"""A Telegram update read into the core's terms, and the core's replies sent back: a command
or text (a deep link's `/start c_…` included), a shared contact, a photo with its caption, or
a tap on an inline button."""

from __future__ import annotations

from dataclasses import replace
from functools import partial

from telegram import Update
from telegram.ext import ExtBot

from bot.conversation.core import Conversation
from bot.conversation.said import Said, SharedContact, Surface
from handlers.telegram.addresses import CHANNEL, identity_of
from handlers.telegram.channel import start_link
from handlers.telegram.context import Context
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
    replies = TelegramReplies(
        context.bot,
        context.services.messages,
        chat.id,
        update.callback_query,
        context.bot_data.setdefault(PHOTOS_KEY, {}),
    )
    try:
        async for reply in conversation.answer(said):
            await replies.send(reply)
    finally:
        await replies.finish()
