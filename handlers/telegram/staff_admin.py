"""The owner's team: /staff to invite and remove staff, the invitation link, and /coupon."""

from __future__ import annotations

import contextlib

from telegram import BotCommandScopeChat, InlineKeyboardMarkup, Update
from telegram.error import BadRequest

from bot.domain.models import Actor, Identity, Language, Refused, Role
from bot.domain.parsing import whole_number
from bot.domain.rewards import COUPON_USAGE
from bot.taps import StaffInviteButton, StaffRemoveButton
from handlers.telegram.addresses import chat_id, on_telegram
from handlers.telegram.buttons import inline
from handlers.telegram.cards import deep_link
from handlers.telegram.context import (
    CHANNEL,
    BotApplication,
    Context,
    for_owner,
    identity_of,
    refuse,
    reply,
    services_of,
    with_actor,
)
from handlers.telegram.help_menu import staff_menu

STAFF_PREFIX = "staff_"


@for_owner
async def staff(update: Update, context: Context, actor: Actor) -> None:
    language = context.language
    messages = context.services.messages
    members = await context.services.staff.members()
    rows = [[inline(messages.label(language, "invite_staff"), StaffInviteButton())]]
    rows += [
        [
            inline(
                f"{messages.label(language, 'remove')} {member.name}", StaffRemoveButton(member.id)
            )
        ]
        for member in members
    ]
    await reply(
        update, context, language, "staff/list", InlineKeyboardMarkup(rows), members=members
    )


@for_owner
async def on_invite_button(update: Update, context: Context, actor: Actor) -> None:
    query = update.callback_query
    assert query is not None
    await query.answer()
    invite = await context.services.staff.invite(actor)
    if isinstance(invite, Refused):
        await refuse(update, context, invite)
        return
    link = deep_link(context, STAFF_PREFIX + invite.token)
    await reply(
        update,
        context,
        context.language,
        "staff/invite_link",
        link=link,
        expires_at=invite.expires_at,
    )


@with_actor
async def on_remove_button(update: Update, context: Context, actor: Actor) -> None:
    query = update.callback_query
    assert query is not None
    member_id = StaffRemoveButton.parse(query.data).member_id
    await query.answer()
    removed = await context.services.staff.remove(actor, member_id)
    if removed is None or isinstance(removed, Refused):
        await refuse(update, context, removed or Refused("staff_unknown"))
        return
    await reply(update, context, context.language, "staff/removed", member=removed)
    if removed.identity.channel == CHANNEL:  # staff on another app have no menu here
        await _clear_staff_menu(context, removed.identity)


async def join_staff(update: Update, context: Context, token: str) -> None:
    """/start staff_<token>: the invited person becomes staff, once, within 24 hours."""
    user = update.effective_user
    if user is None:
        return
    language = context.language
    outcome = await context.services.staff.accept(
        identity_of(user), token, user.full_name, language
    )
    if isinstance(outcome, Refused):
        await refuse(update, context, outcome, language)
        return
    await reply(update, context, language, "staff/welcome", name=outcome.member.name)
    await context.bot.set_my_commands(
        staff_menu(context.services.messages, language, Role.STAFF),
        scope=BotCommandScopeChat(user.id),
    )


async def _clear_staff_menu(context: Context, member: Identity) -> None:
    with contextlib.suppress(BadRequest):  # the chat is gone: no menu left to clear
        await context.bot.delete_my_commands(scope=BotCommandScopeChat(chat_id(member)))


async def publish_team_menus(application: BotApplication) -> None:
    """Owners and staff on Telegram see their commands in the menu of their own chat with the
    bot; the team on other apps has no such menu."""
    svc = services_of(application)
    default = Language(svc.settings.default_language)
    for owner in on_telegram(svc.staff.owners):
        await _set_menu(application, owner, Role.OWNER, default)
    for member in await svc.staff.members():
        if member.identity.channel == CHANNEL:
            await _set_menu(application, member.identity, Role.STAFF, member.language)


async def _set_menu(
    application: BotApplication, person: Identity, role: Role, language: Language
) -> None:
    messages = services_of(application).messages
    # An owner who never opened a chat with the bot has no chat to hold a menu yet.
    with contextlib.suppress(BadRequest):
        await application.bot.set_my_commands(
            staff_menu(messages, language, role), scope=BotCommandScopeChat(chat_id(person))
        )


@for_owner
async def adjust(update: Update, context: Context, actor: Actor) -> None:
    """/adjust <member code or phone> <+points or -points> <reason>"""
    args = context.args or []
    language = context.language
    delta = whole_number(args[1], signed=True) if len(args) >= 2 else None
    if delta is None:
        await reply(update, context, language, "adjustments/usage")
        return
    outcome = await context.services.adjustments.adjust(
        actor, args[0], delta, " ".join(args[2:]), f"adjust:{CHANNEL}:{update.update_id}"
    )
    if isinstance(outcome, Refused):
        await refuse(update, context, outcome)
        return
    await reply(update, context, language, "adjustments/done", adjusted=outcome)


@with_actor
async def coupon(update: Update, context: Context, actor: Actor) -> None:
    """/coupon <member code or phone> <percent off> [days valid]"""
    key = f"coupon:{CHANNEL}:{update.update_id}"
    granted = await context.services.rewards.grant_typed(actor, context.args or [], key)
    language = context.language
    if granted is None:
        return  # this very message granted it already
    if isinstance(granted, Refused):
        if granted.problem == COUPON_USAGE:
            await reply(update, context, language, "coupons/usage")
        else:
            await refuse(update, context, granted)
        return
    customer, coupon = granted.customer, granted.coupon
    await reply(update, context, language, "coupons/granted", customer=customer, coupon=coupon)
