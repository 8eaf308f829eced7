"""Telegram by webhook, for several processes behind one address: each update is written to
the inbox and committed before Telegram gets its 200, so a crash loses nothing (PTB's
`run_webhook` answers once the update is only in memory). An update posted twice is kept once
(its update_id, exactly). The route is served by the bot's one HTTP server, at the path of
TELEGRAM_WEBHOOK_URL; TLS ends at the proxy or balancer in front.
"""

from __future__ import annotations

import hmac
import logging
from urllib.parse import urlsplit

from aiohttp import web
from telegram import Update
from telegram.error import TelegramError

from bot.errors import DATABASE_ERRORS
from handlers.telegram.context import INBOX_KEY, BotApplication
from handlers.telegram.polling import person_of

log = logging.getLogger(__name__)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# Updates to one process at a time per connection; Telegram's default is 40.
MAX_CONNECTIONS = 40


def webhook_route(application: BotApplication, url: str, secret: str) -> web.RouteDef:
    """POST <path of url>: record, commit, then 200. Until the bot has started, 503: Telegram
    tries again."""

    async def receive(request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            return web.Response(status=401)
        worker = application.bot_data.get(INBOX_KEY)
        if worker is None or not application.running:
            return web.Response(status=503)
        try:
            body = await request.json()
        except ValueError:
            return web.Response(status=400)
        # Recorded as posted, read by the worker (see handlers/telegram/polling.py).
        if not isinstance(body, dict) or type(body.get("update_id")) is not int:
            return web.Response(status=400)
        try:  # a repeated post is kept once, and not handled again
            await worker.take_in([(str(body["update_id"]), person_of(body), body)])
        except DATABASE_ERRORS as error:  # Telegram keeps it and posts it again
            log.error("a Telegram update could not be written to the inbox: %s", error)
            return web.Response(status=500)
        return web.Response(status=200)

    return web.post(urlsplit(url).path, receive)


async def set_webhook(application: BotApplication, url: str, secret: str) -> None:
    """Every process says the same at start; none drops pending updates (another process
    may not have received them yet)."""
    try:
        await application.bot.set_webhook(
            url,
            secret_token=secret,
            allowed_updates=Update.ALL_TYPES,
            max_connections=MAX_CONNECTIONS,
            drop_pending_updates=False,
        )
    except TelegramError as error:
        log.error("setWebhook failed: %s", error)
        raise
    log.info("Telegram posts updates to %s", url)
