"""The floor: a bare python-telegram-bot echo bot. No handler can answer faster than one that
only echoes, so the benchmarks report the loyalty bot as a ratio to this, measured in the same
run against the same stand-in.

ECHO_CLIENT=aiohttp gives it the loyalty bot's HTTP client instead of PTB's default (httpx):
the floor that shows what the handlers cost, with the cheaper client taken out of the ratio."""

import os

from telegram import Update
from telegram.ext import (
    ApplicationBuilder,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from handlers.telegram.aiohttp_request import AiohttpRequest
from handlers.telegram.app import REQUEST_POOL_SIZE


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None and update.effective_chat is not None
    await context.bot.send_message(update.effective_chat.id, update.effective_message.text or "")


async def tapped(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    assert query is not None and query.message is not None
    await query.answer()
    await context.bot.send_message(query.message.chat.id, query.data or "")


def main() -> None:
    api = os.environ["TELEGRAM_API_URL"]
    builder = (
        ApplicationBuilder()
        .token(os.environ["BOT_TOKEN"])
        .base_url(f"{api}/bot")
        .base_file_url(f"{api}/file/bot")
    )
    if os.environ.get("ECHO_CLIENT") == "aiohttp":
        builder = builder.request(AiohttpRequest(connection_pool_size=REQUEST_POOL_SIZE))
        builder = builder.get_updates_request(AiohttpRequest())
    application = builder.build()
    application.add_handler(MessageHandler(filters.TEXT, echo))
    application.add_handler(CallbackQueryHandler(tapped))
    application.run_polling(allowed_updates=Update.ALL_TYPES, timeout=1)


if __name__ == "__main__":
    main()
