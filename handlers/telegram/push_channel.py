"""Pushes over Telegram: renders the message and turns Bot API answers into outcomes the
dispatcher understands (wait, unreachable, retry, give up)."""

from __future__ import annotations

from telegram import Bot, InlineKeyboardMarkup
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut

from bot.domain.models import Identity, Language
from bot.domain.pushes import (
    Choice,
    Delivered,
    Failed,
    Outcome,
    PushMessage,
    RetryLater,
    Unreachable,
)
from bot.messages import Messages
from handlers.telegram.buttons import SurveyButton, inline
from handlers.telegram.polling import retry_after_seconds

_GONE = ("chat not found", "user is deactivated", "bot was blocked", "peer_id_invalid")


class TelegramPushChannel:
    def __init__(self, bot: Bot, messages: Messages) -> None:
        self._bot = bot
        self._messages = messages

    async def deliver(
        self, identity: Identity, language: Language, message: PushMessage
    ) -> Outcome:
        text = self._messages.render(language, message.template, **message.context)
        markup = _keyboard(message.choice) if message.choice else None
        try:
            await self._bot.send_message(int(identity.user_id), text, reply_markup=markup)
        except RetryAfter as error:
            return RetryLater(retry_after_seconds(error))
        except Forbidden as error:
            return Unreachable(str(error))
        except BadRequest as error:
            if any(sign in str(error).lower() for sign in _GONE):
                return Unreachable(str(error))
            return Failed(str(error), transient=False)
        except (TimedOut, NetworkError) as error:  # timeouts and 5xx: worth another try later
            return Failed(str(error), transient=True)
        return Delivered()


def _keyboard(choice: Choice) -> InlineKeyboardMarkup:
    """A button per answer; survey answers are the only choice the core asks today."""
    assert choice.question == "survey", choice
    return InlineKeyboardMarkup(
        [
            [inline(str(value), SurveyButton(choice.about, str(value))) for value in row]
            for row in choice.rows()
        ]
    )
