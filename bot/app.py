"""The composition root: `loyalty-bot run` and `run-job` start the core with its channels.

The one module of bot/ that knows the channels (see the layer contract in pyproject.toml).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from bot.config import Settings
from bot.program import Program
from bot.scheduler import JobResult
from bot.storage.backups import exclusive_use
from handlers.telegram.app import build_application, opened, serving

log = logging.getLogger(__name__)

GIL_SWITCH_SECONDS = 0.0005


async def serve_until_stopped(
    settings: Settings, program: Program, *, background: bool = True
) -> None:
    """`loyalty-bot run`: serve until SIGINT or SIGTERM (or until polling gives up)."""
    # Each database statement ends on aiosqlite's thread, which then needs the GIL back from
    # a busy event loop; by default the loop yields it only every 5 ms. A sale holds the
    # database for a dozen statements, so under load those waits queued every sale behind it.
    sys.setswitchinterval(GIL_SWITCH_SECONDS)
    with exclusive_use(settings.database_path):
        log_start_up(settings)
        application = build_application(settings, program, background=background)
        stopped = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signal_number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signal_number, stopped.set)
        async with serving(application) as polling:
            signalled = asyncio.ensure_future(stopped.wait())
            await asyncio.wait({polling, signalled}, return_when=asyncio.FIRST_COMPLETED)
            signalled.cancel()
    log.info("stopped")


def log_start_up(settings: Settings) -> None:
    """What an operator needs to know the bot is the one they meant to start."""
    log.info("database: %s", settings.database_path)
    log.info("program file: %s", settings.program_file or "the built-in sample")
    log.info("channels: telegram (Bot API at %s)", settings.telegram_api_url)
    log.info("daily backups: %s", settings.backups if settings.backup_keep else "off")
    if not settings.owner_ids:
        log.warning(
            "OWNER_IDS is empty: nobody can use the owner's commands. Send /help to the bot"
            " from your Telegram account; it answers with your user id to put in OWNER_IDS"
        )


async def run_job(settings: Settings, program: Program, name: str) -> JobResult:
    """`loyalty-bot run-job NAME`: one job, once, now, with its pushes delivered."""
    async with opened(build_application(settings, program, background=False)) as services:
        await services.jobs.catch_up_interrupted()
        return await services.jobs.run(name)
