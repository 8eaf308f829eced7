"""/help and the command menus Telegram shows beside the text box, per language and per role."""

from __future__ import annotations

from telegram import BotCommand, Update

from bot.domain.models import Language, Role
from bot.messages import Messages
from handlers.telegram.context import (
    BotApplication,
    Context,
    identity_of,
    reply,
)

GUEST_COMMANDS = ("start", "help", "cancel")
MEMBER_COMMANDS = (
    "balance",
    "card",
    "rewards",
    "invite",
    "notifications",
    "language",
    "mydata",
    "forget",
    "help",
)
STAFF_COMMANDS = ("sale", "void", "redeem", "customer", "churn", "stats")
OWNER_COMMANDS = ("staff", "coupon", "adjust", "export", "broadcast", "campaigns")
MENU_COMMANDS = ("start", *MEMBER_COMMANDS)


def commands_for(role: Role, is_member: bool) -> tuple[str, ...]:
    names: tuple[str, ...] = MEMBER_COMMANDS if is_member else GUEST_COMMANDS
    if role in (Role.STAFF, Role.OWNER):
        names += STAFF_COMMANDS
    if role is Role.OWNER:
        names += OWNER_COMMANDS
    return names


def _menu(messages: Messages, language: Language, names: tuple[str, ...]) -> list[BotCommand]:
    descriptions = messages.command_descriptions(language)
    return [BotCommand(name, descriptions[name]) for name in names]


def staff_menu(messages: Messages, language: Language, role: Role) -> list[BotCommand]:
    """The menu of a staff member's or owner's own chat: the customer commands and theirs."""
    extra = STAFF_COMMANDS + (OWNER_COMMANDS if role is Role.OWNER else ())
    return _menu(messages, language, MENU_COMMANDS + extra)


async def help_command(update: Update, context: Context) -> None:
    user = update.effective_user
    if user is None:
        return
    svc = context.services
    identity = identity_of(user)
    member = await svc.membership.member(identity)
    language = member.language if member else context.language
    actor = await svc.staff.actor(identity, context.language)
    names = commands_for(actor.role, member is not None)
    descriptions = svc.messages.command_descriptions(language)
    await reply(
        update,
        context,
        language,
        "help",
        commands=[(name, descriptions[name]) for name in names],
        is_member=member is not None,
        # With no owner configured yet, whoever sets the bot up learns the id to put there.
        user_id=user.id if not svc.staff.owners else None,
    )


async def publish_command_menu(
    application: BotApplication, messages: Messages, default: Language
) -> None:
    """One menu per language, plus the default for people whose language the bot does not speak."""
    for language in Language:
        commands = _menu(messages, language, MENU_COMMANDS)
        await application.bot.set_my_commands(commands, language_code=language.value)
        if language is default:
            await application.bot.set_my_commands(commands)
