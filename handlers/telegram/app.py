"""The Telegram channel: settings and the core in, a ready python-telegram-bot Application out."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from telegram import Bot, LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.error import BadRequest, InvalidToken, NetworkError, TelegramError
from telegram.ext import AIORateLimiter, ApplicationBuilder, Defaults

from bot.bootstrap import Services, close_services, open_services, start_background
from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.conversation.core import Conversation
from bot.domain.models import Language
from bot.errors import ConfigError, unreachable
from bot.health import Health
from bot.inbox import InboxWorker
from bot.messages import Messages
from bot.program import Program
from bot.supervisor import FIRST_BACKOFF, LONGEST_BACKOFF, supervise, until_stopped
from handlers.telegram import register_handlers
from handlers.telegram.aiohttp_request import AiohttpRequest
from handlers.telegram.channel import TelegramChannel
from handlers.telegram.context import (
    CHANNEL,
    INBOX_KEY,
    SERVICES_KEY,
    BotApplication,
    context_types,
    services_of,
)
from handlers.telegram.conversation import (
    CONVERSATION_KEY,
    SURFACE_KEY,
    TelegramInbox,
    surface,
)
from handlers.telegram.courteous_bot import CourteousBot
from handlers.telegram.help_menu import publish_command_menu, publish_team_menus
from handlers.telegram.polling import RecordingPoller
from handlers.telegram.webhook import set_webhook, webhook_route

log = logging.getLogger(__name__)

SCHEDULER_KEY = "scheduler"
REQUEST_POOL_SIZE = 256  # python-telegram-bot's default for everything but getUpdates
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


def build_application(
    settings: Settings,
    program: Program,
    clock: Clock | None = None,
    messages: Messages | None = None,
    *,
    background: bool = True,
    core: Services | None = None,
) -> BotApplication:
    """The bot, talking to `settings.telegram_api_url`. It opens the core when it starts,
    unless it is given one (`core`, shared with other channels, opened and closed by whoever
    gave it).

    With `background`, start-up also catches up on today's jobs and starts the timetable.
    """
    clock = clock or SystemClock()
    messages = messages or Messages(settings.zone, program.shop.money)

    async def start(application: BotApplication) -> None:
        services = core or await open_services(settings, program, clock, messages)
        services.channels[CHANNEL] = TelegramChannel(application.bot, messages)
        application.bot_data[SERVICES_KEY] = services
        application.bot_data[CONVERSATION_KEY] = Conversation(services)
        application.bot_data[SURFACE_KEY] = surface(application.bot)
        inbox = TelegramInbox(application)
        application.bot_data[INBOX_KEY] = InboxWorker(
            services, services.incoming(CHANNEL), inbox, CHANNEL
        )
        await publish_command_menu(application.bot, messages, Language(settings.default_language))
        await publish_team_menus(application.bot, services)
        if background:
            application.bot_data[SCHEDULER_KEY] = await start_background(services)
        log.info("bot @%s ready for %s", application.bot.username, program.shop.name)

    async def stop(application: BotApplication) -> None:
        services = application.bot_data.get(SERVICES_KEY)
        if isinstance(services, Services) and core is None:
            await close_services(services, application.bot_data.pop(SCHEDULER_KEY, None))

    api = settings.telegram_api_url
    bot = CourteousBot(
        settings.require_token(),
        base_url=f"{api}/bot",
        base_file_url=f"{api}/file/bot",
        request=AiohttpRequest(connection_pool_size=REQUEST_POOL_SIZE),
        get_updates_request=AiohttpRequest(),
        # No retries here: the push dispatcher honours a 429 itself, on the shop's clock.
        rate_limiter=AIORateLimiter(max_retries=0) if settings.limit_outgoing_rate else None,
        defaults=Defaults(parse_mode=ParseMode.HTML, link_preview_options=NO_PREVIEW),
    )
    builder: Any = (
        ApplicationBuilder()
        .bot(bot)
        .context_types(context_types())
        .post_init(start)
        .post_shutdown(stop)
        .updater(None)  # handlers.telegram.polling fetches updates instead: see why there
        .job_queue(None)  # bot.timetable is the one timetable
    )
    application: BotApplication = builder.build()
    register_handlers(application)
    return application


@asynccontextmanager
async def serving(application: BotApplication) -> AsyncIterator[asyncio.Task[None]]:
    """The bot running, as the polling task: start-up, and on leaving the block an orderly
    shutdown that finishes the update in hand (Application.run_polling's steps, this
    package's poller and the inbox worker instead of PTB's Updater)."""
    await connect(application, SystemClock())
    try:
        assert application.post_init is not None and application.post_shutdown is not None
        await application.post_init(application)
        try:
            services = services_of(application)
            worker: InboxWorker = application.bot_data[INBOX_KEY]
            poller = RecordingPoller(application.bot, services, worker, application.process_update)
            await application.start()
            stop = asyncio.Event()
            webhook = services.settings.telegram_webhook
            if webhook is None:
                timeout = services.settings.polling_timeout
                services.health.expect(CHANNEL, beat_within=timedelta(seconds=2 * timeout))
            else:  # Telegram posts: no beat to expect between one update and the next
                await set_webhook(application, *webhook)
                services.health.expect(CHANNEL)
            services.health.beat(CHANNEL)  # Telegram has just answered
            polling = asyncio.create_task(
                supervise(
                    CHANNEL,
                    poller.run if webhook is None else _posted_to,
                    stop,
                    services.clock,
                    services.health,
                    fatal=(InvalidToken,),
                ),
                name="polling",
            )
            handling = asyncio.create_task(
                supervise("telegram inbox", worker.run, stop, services.clock, services.health),
                name="telegram inbox",
            )
            try:
                yield polling
            finally:
                stop.set()
                try:
                    await polling  # re-raises what ended it, such as a revoked token
                finally:
                    await handling  # the update in hand in each line is finished
                    await application.stop()
        finally:
            # Also after a failed start: an open database keeps threads (and the process) alive.
            await application.post_shutdown(application)
    finally:
        await application.shutdown()


@asynccontextmanager
async def opened(
    application: BotApplication, clock: Clock, patience: float
) -> AsyncIterator[Services | None]:
    """The bot connected and the core open, without polling: for one-off commands. None when
    Telegram could not be reached within `patience` seconds of waiting."""
    if not await connect(application, clock, patience=patience):
        yield None
        return
    try:
        assert application.post_init is not None and application.post_shutdown is not None
        await application.post_init(application)
        try:
            yield services_of(application)
        finally:
            await application.post_shutdown(application)
    finally:
        await application.shutdown()


async def connect(
    application: BotApplication,
    clock: Clock,
    stop: asyncio.Event | None = None,
    *,
    patience: float | None = None,
) -> bool:
    """Initialise the bot (it asks Telegram who it is), waiting for Telegram as long as it
    cannot be reached (a shop's router coming up after the computer must not stop the bot),
    or until `stop` is set, or until `patience` seconds of waiting are spent: False then.
    Initialising an initialised bot does nothing."""
    backoff, waited = FIRST_BACKOFF, 0.0
    stop = stop or asyncio.Event()
    while not stop.is_set():
        try:
            await application.initialize()
            return True
        except (NetworkError, InvalidToken) as error:
            await application.bot.shutdown()  # its HTTP sessions, or they leak and warn
            if isinstance(error, InvalidToken | BadRequest):
                raise
            reason = unreachable(_host(application.bot.base_url), error)
            if patience is not None and waited + backoff > patience:
                log.warning("Telegram cannot be reached: %s; gave up after %.0f s", reason, waited)
                return False
            log.warning("Telegram cannot be reached: %s; trying again in %.0f s", reason, backoff)
        await until_stopped(clock.sleep(backoff), stop)
        waited += backoff
        backoff = min(backoff * 2, LONGEST_BACKOFF)
    return False


def telegram_routes(application: BotApplication, settings: Settings) -> list[web.RouteDef]:
    """The webhook's route for the bot's HTTP server, in webhook mode; none when polling."""
    webhook = settings.telegram_webhook
    return [webhook_route(application, *webhook)] if webhook else []


async def _posted_to(stop: asyncio.Event) -> None:
    """Webhook mode: updates arrive at the HTTP server's route until the bot stops."""
    await stop.wait()


async def serve_telegram(application: BotApplication, health: Health, stop: asyncio.Event) -> None:
    """`loyalty-bot run`'s Telegram: connect in the background of the other channels, then
    poll, until `stop` is set; an error that stops polling for good is raised."""
    health.expect(CHANNEL)  # /healthz: down until Telegram answers
    if not await connect(application, SystemClock(), stop):
        return
    async with serving(application) as polling:
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({polling, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()  # leaving the block stops polling; what ended it is raised there


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
        reason = unreachable(_host(settings.telegram_api_url), error)
        raise ConfigError(f"Telegram cannot be reached: {reason}") from error
    finally:
        await bot.shutdown()
    return f"Telegram knows the token: the bot is @{bot.username}"


def _host(url: str) -> str:
    """The host a URL names ("api.telegram.org"), for saying which one cannot be reached."""
    return urlsplit(url).hostname or url
