"""The Telegram channel: updates are read into the core's terms (conversation.py) and the
core's replies rendered as Telegram shows them (render.py). No rule, no role check and no SQL
lives here; see bot/conversation, bot/domain and bot/storage.
"""

from __future__ import annotations

from telegram.ext import CallbackQueryHandler, MessageHandler, filters

from handlers.telegram import conversation, plumbing
from handlers.telegram.context import BotApplication


def register_handlers(application: BotApplication) -> None:
    said = filters.TEXT | filters.COMMAND | filters.CONTACT | filters.PHOTO
    application.add_handler(MessageHandler(filters.ChatType.PRIVATE & said, conversation.on_update))
    application.add_handler(CallbackQueryHandler(conversation.on_update))
    application.add_error_handler(plumbing.report_error)
