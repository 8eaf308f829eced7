"""The composition root: `loyalty-bot run` and `run-job` start the core with its channels.

The one module of bot/ that knows the channels (see the layer contract in pyproject.toml).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, ExitStack, asynccontextmanager, nullcontext
from pathlib import Path
from typing import Any

from bot.bootstrap import Services, close_services, open_services
from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.domain.pushes import DeliveryReport
from bot.leadership import LEADER_LOCK, lead_when_possible
from bot.messages import Messages
from bot.program import Program
from bot.setup_check import no_upgrade_under_a_running_bot, start_up_warnings
from bot.storage.backups import DatabaseInUse, exclusive_use
from bot.storage.database import open_database
from bot.storage.moving import move
from bot.timetable import JobResult, LeftQueued
from handlers.http_server import serving_http
from handlers.telegram.app import build_application, opened, serve_telegram, telegram_routes
from handlers.whatsapp.app import sending_whatsapp, whatsapp_parts

log = logging.getLogger(__name__)

GIL_SWITCH_SECONDS = 0.0005
# How long `run-job` waits for Telegram (1 + 2 + 4 s between tries) before it leaves the
# job's messages queued: a one-off command must end, and `run` sends them when it reaches it.
RUN_JOB_PATIENCE_SECONDS = 10.0


def _settle_memory() -> None:
    """What start-up built (modules, templates, locale data, the services) is kept for the
    process's life: frozen, the garbage collector no longer walks it. Each full collection
    walked it all and stopped the bot for ~95 ms, the slowest reply of a busy minute."""
    gc.collect()
    gc.freeze()


async def serve_until_stopped(
    settings: Settings, program: Program, *, background: bool = True
) -> None:
    """`loyalty-bot run`: serve every configured channel until SIGINT or SIGTERM, one core
    and one database for all of them. Each channel starts on its own: WhatsApp serves at once
    while Telegram may still be waiting to be reached. A channel that cannot go on (Telegram
    refusing the token) ends the process with its error."""
    # Each database statement ends on aiosqlite's thread, which then needs the GIL back from
    # a busy event loop; by default the loop yields it only every 5 ms. A sale holds the
    # database for a dozen statements, so under load those waits queued every sale behind it.
    sys.setswitchinterval(GIL_SWITCH_SECONDS)
    # One process per SQLite file; PostgreSQL serves several (each job still runs once).
    alone = nullcontext() if settings.postgresql_url else exclusive_use(settings.database_path)
    with alone:
        log_start_up(settings, program)
        stopped, closing = asyncio.Event(), asyncio.Event()  # a signal; then the channels
        loop = asyncio.get_running_loop()
        for signal_number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signal_number, stopped.set)
        clock = SystemClock()
        messages = Messages(settings.zone, program.shop.money)
        services = await open_services(settings, program, clock, messages)
        try:
            async with AsyncExitStack() as stack:
                channels: list[asyncio.Task[None]] = []
                whatsapp = None
                routes = []
                if settings.whatsapp_enabled:
                    whatsapp = await stack.enter_async_context(whatsapp_parts(services))
                    routes += whatsapp.routes
                telegram = None
                if settings.telegram_enabled:
                    telegram = build_application(
                        settings, program, clock, messages, background=False, core=services
                    )
                    routes += telegram_routes(telegram, settings)
                await stack.enter_async_context(serving_http(services, routes))
                if whatsapp is not None:
                    channels.append(whatsapp.start(services, closing))
                if telegram is not None:
                    channels.append(
                        asyncio.create_task(
                            serve_telegram(telegram, services.health, closing), name="telegram"
                        )
                    )
                _settle_memory()
                # The timetable and the outbox: in this process while it leads (with
                # several processes on PostgreSQL, one leads at a time).
                leaving = asyncio.Event()
                leading = asyncio.create_task(
                    lead_when_possible(services, leaving) if background else leaving.wait(),
                    name="leadership",
                )
                try:
                    await _until_stopped_or_failed(stopped, channels)
                finally:
                    # The push in hand is finished while its channel is still open.
                    leaving.set()
                    await leading
                    await services.jobs.wind_down()
                    closing.set()
                    for ended in await asyncio.gather(*channels, return_exceptions=True):
                        if isinstance(ended, BaseException):
                            raise ended
        finally:
            await close_services(services, None)
    log.info("stopped")


async def _until_stopped_or_failed(
    stopped: asyncio.Event, channels: list[asyncio.Task[None]]
) -> None:
    """Until a signal, or until a channel's task ends with an error it cannot go on after."""
    signalled = asyncio.ensure_future(stopped.wait())
    pending: set[asyncio.Future[Any]] = {signalled, *channels}
    while not stopped.is_set():
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        if any(task is not signalled and task.exception() is not None for task in done):
            break
    signalled.cancel()


def log_start_up(settings: Settings, program: Program) -> None:
    """What an operator needs to know the bot is the one they meant to start."""
    log.info("database: %s", settings.database_shown)
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
    for warning in start_up_warnings(settings, program):
        log.warning("%s", warning)


async def run_job(
    settings: Settings, program: Program, name: str, clock: Clock | None = None
) -> JobResult:
    """`loyalty-bot run-job NAME`: one job, once, now. What is due in the outbox then goes out
    from here through every configured channel, unless a bot is running (it delivers, and
    paces its senders alone) or Telegram cannot be reached soon: the messages wait queued."""
    if settings.telegram_enabled:
        settings.require_token()  # before the database is touched, as `run` refuses it
    no_upgrade_under_a_running_bot(settings)
    clock = clock or SystemClock()
    messages = Messages(settings.zone, program.shop.money)
    services = await open_services(settings, program, clock, messages)
    try:
        async with _delivering_here(settings, services) as here, AsyncExitStack() as channels:
            if not here:
                queued = await services.jobs.decide(name)
                return JobResult(name, queued, DeliveryReport(), LeftQueued.BOT_RUNNING)
            reached = True
            if settings.telegram_enabled:
                telegram = build_application(
                    settings, program, clock, messages, core=services, background=False
                )
                opening = opened(telegram, clock, RUN_JOB_PATIENCE_SECONDS)
                reached = await channels.enter_async_context(opening) is not None
            if settings.whatsapp_enabled:
                await channels.enter_async_context(sending_whatsapp(services))
            await services.jobs.catch_up_interrupted()
            if reached:
                return await services.jobs.run(name)
            queued = await services.jobs.decide(name)
            return JobResult(name, queued, DeliveryReport(), LeftQueued.CHANNEL_UNREACHABLE)
    finally:
        await close_services(services, None)


@asynccontextmanager
async def _delivering_here(settings: Settings, services: Services) -> AsyncIterator[bool]:
    """Whether no bot is running on this shop's database (held so while true): a second
    process delivering beside it would break its pacing, and on SQLite mark its message in
    flight uncertain."""
    if settings.postgresql_url:
        async with services.database.exclusively(LEADER_LOCK) as held:
            yield held is not None
        return
    with ExitStack() as stack:
        try:
            stack.enter_context(exclusive_use(settings.database_path))
            alone = True
        except DatabaseInUse:
            alone = False
        yield alone


async def migrate_database(settings: Settings, target: str) -> list[str]:
    """`loyalty-bot migrate-db --to TARGET`: this shop's database copied into an empty one
    (PostgreSQL from SQLite, or back to an absolute SQLite path), checked, and the line to
    put in .env to use it."""
    to_postgresql = target.startswith(("postgresql://", "postgres://"))
    alone = nullcontext() if settings.postgresql_url else exclusive_use(settings.database_path)
    with alone:  # a running bot would write beside the copy
        source = await open_database(
            path=settings.database_path, url=settings.postgresql_url, backups=settings.backups
        )
        try:
            copy = await open_database(
                path=Path(target),
                url=target if to_postgresql else None,
            )
            try:
                moved = await move(source, copy)
                await copy.settle()
            finally:
                await copy.close()
        finally:
            await source.close()
    setting = f"DATABASE_URL={target}" if to_postgresql else f"DATABASE_PATH={target}"
    return [
        f"copied {sum(moved.rows.values())} rows of {len(moved.rows)} tables from"
        f" {settings.database_shown}",
        f"checked: every table's row count and the balances of {moved.customers_checked}"
        " customers match",
        f"to use the copy, set {setting} in .env"
        + ("" if to_postgresql else " and remove DATABASE_URL"),
    ]
