"""What every handler shares: the services, who is talking, and replying from a template."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, cast

from telegram import Message, ReplyKeyboardMarkup, ReplyKeyboardRemove, Update, User
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden
from telegram.ext import Application, ContextTypes

from bot.clock import Clock
from bot.config import Settings
from bot.domain.adjustments import AdjustmentService
from bot.domain.churn import ChurnService
from bot.domain.exports import ExportService
from bot.domain.insights import InsightsService
from bot.domain.lookup import CustomerLookup
from bot.domain.membership import MembershipService
from bot.domain.models import Actor, Customer, Identity, Language, Refused, Role
from bot.domain.registration import RegistrationService
from bot.domain.rewards import RewardsService
from bot.domain.sales import SalesService
from bot.domain.staff import StaffService
from bot.domain.surveys import SurveyService
from bot.flood import FloodGuard
from bot.incoming import IncomingUpdates
from bot.messages import Messages, pick_language
from bot.program import Program
from bot.scheduler import Jobs
from bot.storage.database import Database

log = logging.getLogger(__name__)

CHANNEL = "telegram"
SERVICES_KEY = "services"

Context = ContextTypes.DEFAULT_TYPE
BotApplication = Application[Any, Any, Any, Any, Any, Any]
Markup = Any


@dataclass(frozen=True)
class Services:
    settings: Settings
    program: Program
    clock: Clock
    messages: Messages
    database: Database
    reader: Database  # read-only, for long reports
    incoming: IncomingUpdates
    registration: RegistrationService
    membership: MembershipService
    staff: StaffService
    sales: SalesService
    rewards: RewardsService
    lookup: CustomerLookup
    adjustments: AdjustmentService
    churn: ChurnService
    surveys: SurveyService
    jobs: Jobs
    insights: InsightsService
    exports: ExportService
    flood: FloodGuard


def services(context: Context) -> Services:
    return cast(Services, context.bot_data[SERVICES_KEY])


def services_of(application: BotApplication) -> Services:
    return cast(Services, application.bot_data[SERVICES_KEY])


def identity_of(user: User) -> Identity:
    return Identity(CHANNEL, str(user.id))


def fallback_language(context: Context, user: User | None) -> Language:
    """The language for someone who is not (yet) a member: their Telegram one, if we speak it."""
    default = Language(services(context).settings.default_language)
    return pick_language(user.language_code if user else None, default)


def sender_language(update: Update, context: Context) -> Language:
    """Staff and owners read the bot in their Telegram language."""
    return fallback_language(context, update.effective_user)


async def refuse(
    update: Update, context: Context, refused: Refused, language: Language | None = None
) -> None:
    """Say why an action did not happen."""
    language = language or sender_language(update, context)
    await reply(update, context, language, f"problems/{refused.problem}")


async def reply(
    update: Update,
    context: Context,
    language: Language,
    template: str,
    markup: Markup = None,
    **template_context: Any,
) -> Message:
    text = services(context).messages.render(language, template, **template_context)
    chat = update.effective_chat
    assert chat is not None
    return await context.bot.send_message(
        chat.id,
        text,
        parse_mode=ParseMode.HTML,
        reply_markup=markup,
        disable_web_page_preview=True,
    )


async def replace_prompt(
    update: Update,
    context: Context,
    language: Language,
    template: str,
    **template_context: Any,
) -> None:
    """Turn the message whose button was tapped into the outcome, its buttons gone; a new
    message instead when Telegram will not edit that one."""
    query = update.callback_query
    assert query is not None
    text = services(context).messages.render(language, template, **template_context)
    try:
        await query.edit_message_text(
            text, parse_mode=ParseMode.HTML, reply_markup=None, disable_web_page_preview=True
        )
    except BadRequest as error:
        log.info("could not edit the prompt (%s); sending the outcome instead", error)
        await reply(update, context, language, template, **template_context)


def no_keyboard() -> ReplyKeyboardRemove:
    return ReplyKeyboardRemove()


def one_time_keyboard(rows: list[list[Any]]) -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup(rows, resize_keyboard=True, one_time_keyboard=True)


MemberHandler = Callable[[Update, Context, Customer], Coroutine[Any, Any, None]]


def for_members(handler: MemberHandler) -> Callable[[Update, Context], Coroutine[Any, Any, None]]:
    """Run `handler` with the sender's member record, or tell a stranger how to join."""

    async def guarded(update: Update, context: Context) -> None:
        user = update.effective_user
        if user is None:
            return
        member = await services(context).membership.member(identity_of(user))
        if member is None:
            if update.callback_query:
                await update.callback_query.answer()
            await reply(update, context, fallback_language(context, user), "not_a_member")
            return
        await handler(update, context, member)

    guarded.__name__ = handler.__name__
    guarded.__doc__ = handler.__doc__
    return guarded


async def notify(
    context: Context,
    identity: Identity | None,
    language: Language,
    template: str,
    markup: Markup = None,
    **template_context: Any,
) -> bool:
    """Tell someone other than the sender. A blocked bot or a vanished chat must not undo the
    action that caused the message, so those failures are logged, not raised."""
    if identity is None or identity.channel != CHANNEL:
        return False
    text = services(context).messages.render(language, template, **template_context)
    try:
        await context.bot.send_message(
            int(identity.user_id),
            text,
            parse_mode=ParseMode.HTML,
            reply_markup=markup,
            disable_web_page_preview=True,
        )
    except (Forbidden, BadRequest) as error:
        log.warning("could not notify %s: %s", identity.user_id, error)
        return False
    return True


ActorHandler = Callable[[Update, Context, Actor], Coroutine[Any, Any, None]]


def _for_role(
    allowed: Callable[[Actor], bool], action: str
) -> Callable[[ActorHandler], Callable[[Update, Context], Coroutine[Any, Any, None]]]:
    def decorate(handler: ActorHandler) -> Callable[[Update, Context], Coroutine[Any, Any, None]]:
        async def guarded(update: Update, context: Context) -> None:
            user = update.effective_user
            if user is None:
                return
            staff = services(context).staff
            actor = await staff.actor(identity_of(user), fallback_language(context, user))
            if not allowed(actor):
                await staff.refuse(actor, f"{action}:{handler.__name__}")
                if update.callback_query:
                    await update.callback_query.answer()
                await reply(update, context, fallback_language(context, user), "not_allowed")
                return
            await handler(update, context, actor)

        guarded.__name__ = handler.__name__
        guarded.__doc__ = handler.__doc__
        return guarded

    return decorate


for_staff = _for_role(lambda actor: actor.is_staff, "staff")
for_owner = _for_role(lambda actor: actor.role is Role.OWNER, "owner")
