"""The composition root: `loyalty-bot run` and `run-job` start the core with its channels.

The one module of bot/ that knows the channels (see the layer contract in pyproject.toml).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from contextlib import AsyncExitStack
from typing import Any

from bot.bootstrap import close_services, open_services, start_background
from bot.clock import SystemClock
from bot.config import Settings
from bot.messages import Messages
from bot.program import Program
from bot.scheduler import JobResult
from bot.storage.backups import exclusive_use
from handlers.telegram.app import build_application, opened, serving
from handlers.whatsapp.app import sending_whatsapp, serving_whatsapp

log = logging.getLogger(__name__)

GIL_SWITCH_SECONDS = 0.0005


async def serve_until_stopped(
    settings: Settings, program: Program, *, background: bool = True
) -> None:
    """`loyalty-bot run`: serve every configured channel until SIGINT or SIGTERM (or until
    Telegram's polling gives up), one core and one database for all of them."""
    # Each database statement ends on aiosqlite's thread, which then needs the GIL back from
    # a busy event loop; by default the loop yields it only every 5 ms. A sale holds the
    # database for a dozen statements, so under load those waits queued every sale behind it.
    sys.setswitchinterval(GIL_SWITCH_SECONDS)
    with exclusive_use(settings.database_path):
        log_start_up(settings)
        stopped = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signal_number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signal_number, stopped.set)
        clock = SystemClock()
        messages = Messages(settings.zone, program.shop.money)
        services = await open_services(settings, program, clock, messages)
        try:
            async with AsyncExitStack() as channels:
                signalled = asyncio.ensure_future(stopped.wait())
                ending: set[asyncio.Future[Any]] = {signalled}
                if settings.telegram_enabled:
                    telegram = build_application(
                        settings, program, clock, messages, background=False, core=services
                    )
                    ending.add(await channels.enter_async_context(serving(telegram)))
                if settings.whatsapp_enabled:
                    await channels.enter_async_context(serving_whatsapp(services))
                scheduler = await start_background(services) if background else None
                try:
                    await asyncio.wait(ending, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    signalled.cancel()  # polling, if it is still going, is stopped by serving()
                    # The push in hand is finished while its channel is still open.
                    await services.jobs.wind_down()
                    if scheduler is not None:
                        scheduler.shutdown(wait=False)
        finally:
            await close_services(services, None)
    log.info("stopped")


def log_start_up(settings: Settings) -> None:
    """What an operator needs to know the bot is the one they meant to start."""
    log.info("database: %s", settings.database_path)
    log.info("program file: %s", settings.program_file or "the built-in sample")
    if settings.telegram_enabled:
        log.info("channel: telegram (Bot API at %s)", settings.telegram_api_url)
    if settings.whatsapp_enabled:
        log.info(
            "channel: whatsapp (+%s, Graph API at %s, webhook on %s/whatsapp)",
            settings.whatsapp_business_number,
            settings.whatsapp_api_url,
            settings.webhook_listen,
        )
    log.info("daily backups: %s", settings.backups if settings.backup_keep else "off")
    if not settings.owner_ids and not settings.owner_phones:
        log.warning(
            "OWNER_IDS is empty: nobody can use the owner's commands. Send /help to the bot"
            " from your Telegram account; it answers with your user id to put in OWNER_IDS"
        )


async def run_job(settings: Settings, program: Program, name: str) -> JobResult:
    """`loyalty-bot run-job NAME`: one job, once, now, with its pushes delivered through every
    configured channel."""
    messages = Messages(settings.zone, program.shop.money)
    services = await open_services(settings, program, SystemClock(), messages)
    try:
        async with AsyncExitStack() as channels:
            if settings.telegram_enabled:
                telegram = build_application(settings, program, core=services, background=False)
                await channels.enter_async_context(opened(telegram))
            if settings.whatsapp_enabled:
                await channels.enter_async_context(sending_whatsapp(services))
            await services.jobs.catch_up_interrupted()
            return await services.jobs.run(name)
    finally:
        await close_services(services, None)
