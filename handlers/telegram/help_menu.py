"""The command menus Telegram shows beside the text box: one per language for everyone, and in
their own chats the team's, kept up to date as people join and leave the team (on any app)."""

from __future__ import annotations

import contextlib

from telegram import Bot, BotCommand, BotCommandScopeChat
from telegram.error import BadRequest

from bot.bootstrap import Services
from bot.conversation.commands import MEMBER_COMMANDS, OWNER_COMMANDS, STAFF_COMMANDS
from bot.domain.models import Identity, Language, Role
from bot.messages import Messages
from handlers.telegram.addresses import CHANNEL, chat_id, on_telegram

MENU_COMMANDS = ("start", *MEMBER_COMMANDS)


def _menu(messages: Messages, language: Language, names: tuple[str, ...]) -> list[BotCommand]:
    descriptions = messages.command_descriptions(language)
    return [BotCommand(name, descriptions[name]) for name in names]


def staff_menu(messages: Messages, language: Language, role: Role) -> list[BotCommand]:
    """The menu of a staff member's or owner's own chat: the customer commands and theirs."""
    extra = STAFF_COMMANDS + (OWNER_COMMANDS if role is Role.OWNER else ())
    return _menu(messages, language, MENU_COMMANDS + extra)


async def publish_command_menu(bot: Bot, messages: Messages, default: Language) -> None:
    """One menu per language, plus the default for people whose language the bot does not speak."""
    for language in Language:
        commands = _menu(messages, language, MENU_COMMANDS)
        await bot.set_my_commands(commands, language_code=language.value)
        if language is default:
            await bot.set_my_commands(commands)


async def publish_team_menus(bot: Bot, services: Services) -> None:
    """Owners and staff on Telegram see their commands in the menu of their own chat."""
    default = Language(services.settings.default_language)
    for owner in on_telegram(services.staff.owners):
        await set_team_menu(bot, services.messages, owner, Role.OWNER, default)
    for member in await services.staff.members():
        if member.identity.channel == CHANNEL:
            await set_team_menu(
                bot, services.messages, member.identity, Role.STAFF, member.language
            )


async def set_team_menu(
    bot: Bot, messages: Messages, person: Identity, role: Role | None, language: Language
) -> None:
    """`role` None: the person left the team, and their menu goes back to everyone's."""
    # An owner who never opened a chat with the bot has no chat to hold a menu yet; a chat
    # that is gone has no menu left to clear.
    with contextlib.suppress(BadRequest):
        scope = BotCommandScopeChat(chat_id(person))
        if role is None:
            await bot.delete_my_commands(scope=scope)
        else:
            await bot.set_my_commands(staff_menu(messages, language, role), scope=scope)
