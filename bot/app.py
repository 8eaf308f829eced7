"""Wiring: settings and program in, a ready python-telegram-bot Application out."""

from __future__ import annotations

import logging
from datetime import timedelta

from telegram.ext import AIORateLimiter, ApplicationBuilder

from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.domain.adjustments import AdjustmentService
from bot.domain.lookup import CustomerLookup
from bot.domain.membership import MembershipService
from bot.domain.models import Identity, Language
from bot.domain.registration import RegistrationService
from bot.domain.rewards import RewardsService
from bot.domain.sales import SalesService
from bot.domain.staff import StaffService
from bot.messages import Messages
from bot.program import Program
from bot.storage.database import Database
from bot.storage.updates import ProcessedUpdates
from handlers import register_handlers
from handlers.context import CHANNEL, SERVICES_KEY, BotApplication, Services
from handlers.help_menu import publish_command_menu
from handlers.staff_admin import publish_team_menus

log = logging.getLogger(__name__)

# Telegram redelivers an unconfirmed update for up to a day; keep ids somewhat longer than that.
REDELIVERY_WINDOW = timedelta(days=2)


def build_application(
    settings: Settings,
    program: Program,
    clock: Clock | None = None,
    messages: Messages | None = None,
) -> BotApplication:
    """The bot, talking to `settings.telegram_api_url`; the database opens when it starts."""
    clock = clock or SystemClock()
    messages = messages or Messages(settings.zone, program.shop.money)
    owners = frozenset(Identity(CHANNEL, str(user_id)) for user_id in settings.owner_ids)

    async def open_services(application: BotApplication) -> None:
        database = await Database.open(settings.database_path)
        async with database.transaction() as tx:
            await ProcessedUpdates(tx).forget_before(clock.now() - REDELIVERY_WINDOW)
        application.bot_data[SERVICES_KEY] = Services(
            settings=settings,
            program=program,
            clock=clock,
            messages=messages,
            database=database,
            registration=RegistrationService(database, clock, program),
            membership=MembershipService(database, clock, program),
            staff=StaffService(database, clock, owners),
            sales=SalesService(database, clock, program, settings.zone),
            rewards=RewardsService(database, clock, program),
            lookup=CustomerLookup(database, clock, program),
            adjustments=AdjustmentService(database, clock, program),
        )
        await publish_command_menu(application, messages, Language(settings.default_language))
        await publish_team_menus(application)
        log.info("bot @%s ready for %s", application.bot.username, program.shop.name)

    async def close_services(application: BotApplication) -> None:
        services = application.bot_data.get(SERVICES_KEY)
        if isinstance(services, Services):
            await services.database.close()

    api = settings.telegram_api_url
    application: BotApplication = (
        ApplicationBuilder()
        .token(settings.require_token())
        .base_url(f"{api}/bot")
        .base_file_url(f"{api}/file/bot")
        .rate_limiter(AIORateLimiter(max_retries=3))
        .post_init(open_services)
        .post_shutdown(close_services)
        .build()
    )
    register_handlers(application)
    return application
