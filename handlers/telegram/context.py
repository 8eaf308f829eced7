"""What every Telegram handler has in reach: `context.services` (the core), `context.language`
(the sender's, for people who are not members yet), `await context.actor()`, replying from a
template, and the guards that let only members, staff or owners in."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any, cast

from telegram import Message, ReplyKeyboardMarkup, ReplyKeyboardRemove, Update, User
from telegram.error import BadRequest
from telegram.ext import Application, CallbackContext, ContextTypes, ExtBot

from bot.bootstrap import Services
from bot.domain.models import Actor, Customer, Identity, Language, Refused, Role
from bot.messages import pick_language
from handlers.telegram.addresses import CHANNEL as CHANNEL
from handlers.telegram.addresses import identity_of as identity_of

log = logging.getLogger(__name__)

SERVICES_KEY = "services"
INCOMING_KEY = "incoming"

BotApplication = Application[Any, Any, Any, Any, Any, Any]
Markup = Any


class Context(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], dict[Any, Any]]):
    """PTB's context, with the core and the sender at hand."""

    def __init__(
        self,
        application: BotApplication,
        chat_id: int | None = None,
        user_id: int | None = None,
    ) -> None:
        super().__init__(application, chat_id, user_id)
        self.sender: User | None = None

    @classmethod
    def from_update(cls, update: object, application: BotApplication) -> Context:
        context = super().from_update(update, application)
        if isinstance(update, Update):
            context.sender = update.effective_user
        return context

    @property
    def services(self) -> Services:
        return cast(Services, self.bot_data[SERVICES_KEY])

    @property
    def language(self) -> Language:
        """The sender's Telegram language, if we speak it: for staff, owners and newcomers
        (members have their own, on their record)."""
        default = Language(self.services.settings.default_language)
        return pick_language(self.sender.language_code if self.sender else None, default)

    @property
    def identity(self) -> Identity:
        assert self.sender is not None
        return identity_of(self.sender)

    async def actor(self) -> Actor:
        """Who the sender is to the shop: owner, staff or customer."""
        return await self.services.staff.actor(self.identity, self.language)


def context_types() -> ContextTypes[Context, dict[Any, Any], dict[Any, Any], dict[Any, Any]]:
    return ContextTypes(context=Context)


def services_of(application: BotApplication) -> Services:
    return cast(Services, application.bot_data[SERVICES_KEY])


async def refuse(
    update: Update, context: Context, refused: Refused, language: Language | None = None
) -> None:
    """Say why an action did not happen."""
    await reply(update, context, language or context.language, f"problems/{refused.problem}")


async def reply(
    update: Update,
    context: Context,
    language: Language,
    template: str,
    markup: Markup = None,
    **template_context: Any,
) -> Message:
    text = context.services.messages.render(language, template, **template_context)
    chat = update.effective_chat
    assert chat is not None
    return await context.bot.send_message(chat.id, text, reply_markup=markup)


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
    text = context.services.messages.render(language, template, **template_context)
    try:
        await query.edit_message_text(text, reply_markup=None)
    except BadRequest as error:
        log.info("could not edit the prompt (%s); sending the outcome instead", error)
        await reply(update, context, language, template, **template_context)


def no_keyboard() -> ReplyKeyboardRemove:
    return ReplyKeyboardRemove()


def one_time_keyboard(rows: list[list[Any]]) -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup(rows, resize_keyboard=True, one_time_keyboard=True)


Handler = Callable[[Update, Context], Coroutine[Any, Any, None]]
MemberHandler = Callable[[Update, Context, Customer], Coroutine[Any, Any, None]]
ActorHandler = Callable[[Update, Context, Actor], Coroutine[Any, Any, None]]


def for_members(handler: MemberHandler) -> Handler:
    """Run `handler` with the sender's member record, or tell a stranger how to join."""

    async def guarded(update: Update, context: Context) -> None:
        if context.sender is None:
            return
        member = await context.services.membership.member(context.identity)
        if member is None:
            if update.callback_query:
                await update.callback_query.answer()
            await reply(update, context, context.language, "not_a_member")
            return
        await handler(update, context, member)

    guarded.__name__ = handler.__name__
    guarded.__doc__ = handler.__doc__
    return guarded


def _for_role(allowed: Callable[[Actor], bool], action: str) -> Callable[[ActorHandler], Handler]:
    def decorate(handler: ActorHandler) -> Handler:
        async def guarded(update: Update, context: Context) -> None:
            if context.sender is None:
                return
            actor = await context.actor()
            if not allowed(actor):
                await context.services.staff.refuse(actor, f"{action}:{handler.__name__}")
                if update.callback_query:
                    await update.callback_query.answer()
                await reply(update, context, context.language, "not_allowed")
                return
            await handler(update, context, actor)

        guarded.__name__ = handler.__name__
        guarded.__doc__ = handler.__doc__
        return guarded

    return decorate


for_staff = _for_role(lambda actor: actor.is_staff, "staff")
# The core's permission table (bot/domain/permissions.py) decides: the handler only needs who.
with_actor = _for_role(lambda actor: True, "anyone")
for_owner = _for_role(lambda actor: actor.role is Role.OWNER, "owner")
