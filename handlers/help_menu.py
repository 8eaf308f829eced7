"""/help and the command menu Telegram shows beside the text box, in each language."""

from __future__ import annotations

from telegram import BotCommand, Update

from bot.domain.models import Language
from bot.messages import Messages
from handlers.context import (
    BotApplication,
    Context,
    fallback_language,
    identity_of,
    reply,
    services,
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
MENU_COMMANDS = ("start", *MEMBER_COMMANDS)


async def help_command(update: Update, context: Context) -> None:
    user = update.effective_user
    if user is None:
        return
    member = await services(context).membership.member(identity_of(user))
    language = member.language if member else fallback_language(context, user)
    names = MEMBER_COMMANDS if member else GUEST_COMMANDS
    descriptions = services(context).messages.command_descriptions(language)
    await reply(
        update,
        context,
        language,
        "help",
        commands=[(name, descriptions[name]) for name in names],
        is_member=member is not None,
    )


async def publish_command_menu(
    application: BotApplication, messages: Messages, default: Language
) -> None:
    """One menu per language, plus the default for people whose language the bot does not speak."""
    for language in Language:
        descriptions = messages.command_descriptions(language)
        commands = [BotCommand(name, descriptions[name]) for name in MENU_COMMANDS]
        await application.bot.set_my_commands(commands, language_code=language.value)
        if language is default:
            await application.bot.set_my_commands(commands)
