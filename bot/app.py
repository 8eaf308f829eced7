"""Wiring: settings and program in, a ready python-telegram-bot Application out."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from telegram import Bot
from telegram.error import BadRequest, InvalidToken, NetworkError, TelegramError
from telegram.ext import AIORateLimiter, ApplicationBuilder

from bot.aiohttp_request import AiohttpRequest
from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.courteous_bot import CourteousBot
from bot.domain.adjustments import AdjustmentService
from bot.domain.backups import DailyBackup
from bot.domain.birthdays import BirthdayJob
from bot.domain.churn import ChurnService
from bot.domain.exports import ExportService
from bot.domain.insights import InsightsService
from bot.domain.lookup import CustomerLookup
from bot.domain.membership import MembershipService
from bot.domain.models import Identity, Language
from bot.domain.pushes import PushDispatcher
from bot.domain.registration import RegistrationService
from bot.domain.rewards import RewardsService
from bot.domain.sales import SalesService
from bot.domain.staff import StaffService
from bot.domain.surveys import SurveyService
from bot.errors import ConfigError
from bot.flood import FloodGuard
from bot.incoming import IncomingUpdates
from bot.messages import Messages
from bot.polling import FIRST_BACKOFF, LONGEST_BACKOFF, ConfirmingPoller
from bot.program import Program
from bot.scheduler import JobResult, Jobs, start_scheduler, timetable
from bot.storage.backups import exclusive_use
from bot.storage.database import Database
from bot.storage.program_history import ProgramHistory
from handlers import register_handlers
from handlers.context import CHANNEL, SERVICES_KEY, BotApplication, Services
from handlers.help_menu import publish_command_menu
from handlers.push_channel import TelegramPushChannel
from handlers.staff_admin import publish_team_menus

log = logging.getLogger(__name__)

SCHEDULER_KEY = "scheduler"
GIL_SWITCH_SECONDS = 0.0005
REQUEST_POOL_SIZE = 256  # python-telegram-bot's default for everything but getUpdates


def build_application(
    settings: Settings,
    program: Program,
    clock: Clock | None = None,
    messages: Messages | None = None,
    *,
    background: bool = True,
) -> BotApplication:
    """The bot, talking to `settings.telegram_api_url`; the database opens when it starts.

    With `background`, start-up also catches up on today's jobs and starts the timetable.
    """
    clock = clock or SystemClock()
    messages = messages or Messages(settings.zone, program.shop.money)

    async def start(application: BotApplication) -> None:
        services = await open_services(application, settings, program, clock, messages)
        application.bot_data[SERVICES_KEY] = services
        await publish_command_menu(application, messages, Language(settings.default_language))
        await publish_team_menus(application)
        if background:
            await services.jobs.catch_up()
            application.bot_data[SCHEDULER_KEY] = start_scheduler(services.jobs, settings.zone)
        log.info("bot @%s ready for %s", application.bot.username, program.shop.name)

    async def stop(application: BotApplication) -> None:
        services = application.bot_data.get(SERVICES_KEY)
        if isinstance(services, Services):
            await services.jobs.wind_down()
        scheduler = application.bot_data.pop(SCHEDULER_KEY, None)
        if scheduler is not None:
            scheduler.shutdown(wait=False)  # this cancels the jobs still running
        if isinstance(services, Services):
            await services.reader.close()
            await services.database.close()

    api = settings.telegram_api_url
    bot = CourteousBot(
        settings.require_token(),
        base_url=f"{api}/bot",
        base_file_url=f"{api}/file/bot",
        request=AiohttpRequest(connection_pool_size=REQUEST_POOL_SIZE),
        get_updates_request=AiohttpRequest(),
        # No retries here: the push dispatcher honours a 429 itself, on the shop's clock.
        rate_limiter=AIORateLimiter(max_retries=0) if settings.limit_outgoing_rate else None,
    )
    builder: Any = (
        ApplicationBuilder()
        .bot(bot)
        .post_init(start)
        .post_shutdown(stop)
        .updater(None)  # bot.polling fetches updates instead: see why there
        .job_queue(None)  # bot.scheduler is the one timetable
    )
    application: BotApplication = builder.build()
    register_handlers(application)
    return application


async def open_services(
    application: BotApplication,
    settings: Settings,
    program: Program,
    clock: Clock,
    messages: Messages,
) -> Services:
    database = await Database.open(settings.database_path, backups=settings.backups)
    async with database.transaction() as tx:
        await ProgramHistory(tx).record_if_changed(program.model_dump_json(), clock.now())
    reader = await Database.open_reader(settings.database_path)
    incoming = IncomingUpdates(database, clock, CHANNEL, ids_only_grow=True)
    await incoming.open()
    zone = settings.zone
    churn = ChurnService(database, clock, program)
    surveys = SurveyService(database, clock, program, zone, churn)
    dispatcher = PushDispatcher(
        database,
        clock,
        TelegramPushChannel(application.bot, messages),
        rate_per_second=settings.push_rate_per_second,
    )
    owners = frozenset(Identity(CHANNEL, str(user_id)) for user_id in settings.owner_ids)
    return Services(
        settings=settings,
        program=program,
        clock=clock,
        messages=messages,
        database=database,
        reader=reader,
        incoming=incoming,
        registration=RegistrationService(database, clock, program),
        membership=MembershipService(database, clock, program),
        staff=StaffService(database, clock, owners, Language(settings.default_language)),
        sales=SalesService(database, clock, program, zone),
        rewards=RewardsService(database, clock, program),
        lookup=CustomerLookup(database, clock, program),
        adjustments=AdjustmentService(database, clock, program),
        churn=churn,
        surveys=surveys,
        jobs=Jobs(
            clock,
            zone,
            timetable(
                program,
                zone,
                BirthdayJob(database, clock, program, zone),
                surveys,
                churn,
                DailyBackup(
                    clock,
                    zone,
                    settings.database_path,
                    settings.backups,
                    settings.backup_keep,
                    settings.backup_hour,
                ),
            ),
            dispatcher,
        ),
        insights=InsightsService(reader, clock, program, zone),
        exports=ExportService(database, reader, clock, program, zone),
        flood=FloodGuard(clock, settings.flood_burst, settings.flood_refill_per_second),
    )


@asynccontextmanager
async def serving(application: BotApplication) -> AsyncIterator[asyncio.Task[None]]:
    """The bot running, as the polling task: start-up, and on leaving the block an orderly
    shutdown that finishes the update in hand (Application.run_polling's steps, bot.polling's
    poller instead of PTB's Updater)."""
    await connect(application, SystemClock())
    try:
        assert application.post_init is not None and application.post_shutdown is not None
        await application.post_init(application)
        try:
            services = application.bot_data[SERVICES_KEY]
            assert isinstance(services, Services)
            poller = ConfirmingPoller(
                application.bot,
                application.process_update,
                services.incoming,
                services.clock,
                services.settings.polling_timeout,
                services.flood,
            )
            await application.start()
            stop = asyncio.Event()
            polling = asyncio.create_task(poller.run(stop), name="polling")
            try:
                yield polling
            finally:
                stop.set()
                try:
                    await polling  # re-raises what ended it, such as a revoked token
                finally:
                    await application.stop()
        finally:
            # Also after a failed start: an open database keeps threads (and the process) alive.
            await application.post_shutdown(application)
    finally:
        await application.shutdown()


async def connect(application: BotApplication, clock: Clock) -> None:
    """Initialise the bot (it asks Telegram who it is), waiting for Telegram as long as it
    cannot be reached: a shop's router coming up after the computer must not stop the bot."""
    backoff = FIRST_BACKOFF
    while True:
        try:
            await application.initialize()
            return
        except (NetworkError, InvalidToken) as error:
            await application.bot.shutdown()  # its HTTP sessions, or they leak and warn
            if isinstance(error, InvalidToken | BadRequest):
                raise
            log.warning("Telegram cannot be reached (%s); trying again in %.0f s", error, backoff)
        await clock.sleep(backoff)
        backoff = min(backoff * 2, LONGEST_BACKOFF)


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


async def check_online(settings: Settings) -> str:
    """`check-config --online`: Telegram knows the token, and which bot it belongs to."""
    bot = Bot(
        settings.require_token(),
        base_url=f"{settings.telegram_api_url}/bot",
        request=AiohttpRequest(),
        get_updates_request=AiohttpRequest(),
    )
    try:
        await bot.initialize()
    except InvalidToken:
        raise
    except TelegramError as error:
        raise ConfigError(
            f"Telegram cannot be reached at {settings.telegram_api_url} ({error})"
        ) from error
    finally:
        await bot.shutdown()
    return f"Telegram knows the token: the bot is @{bot.username}"


async def run_job(settings: Settings, program: Program, name: str) -> JobResult:
    """`loyalty-bot run-job NAME`: one job, once, now, with its pushes delivered."""
    application = build_application(settings, program, background=False)
    await connect(application, SystemClock())
    try:
        assert application.post_init is not None
        await application.post_init(application)
        try:
            services = application.bot_data[SERVICES_KEY]
            assert isinstance(services, Services)
            await services.jobs.catch_up_interrupted()
            return await services.jobs.run(name)
        finally:
            assert application.post_shutdown is not None
            await application.post_shutdown(application)
    finally:
        await application.shutdown()
