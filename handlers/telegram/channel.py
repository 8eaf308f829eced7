"""Telegram as the core's `Channel`: what the outbox sends, and Bot API answers turned into
outcomes the dispatcher understands (wait, unreachable, retry, give up)."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable

from telegram import Bot, InlineKeyboardMarkup, InputFile, KeyboardButton, ReplyKeyboardMarkup
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut

from bot.channels import Capabilities, Choice, Delivered, Failed, Outcome, RetryLater, Unreachable
from bot.domain.models import ConsentTopic, Identity, Language, Role
from bot.messages import Messages
from bot.taps import NotificationsButton, SurveyButton
from handlers.telegram.addresses import CHANNEL, chat_id
from handlers.telegram.buttons import inline
from handlers.telegram.help_menu import set_team_menu
from handlers.telegram.polling import retry_after_seconds

_GONE = ("chat not found", "user is deactivated", "bot was blocked", "peer_id_invalid")

TELEGRAM = Capabilities(
    formatting="html", most_buttons=100, longest_button_title=None, longest_text=4096
)


def start_link(bot: Bot, payload: str) -> str:
    """A t.me link that opens the bot with /start <payload>."""
    return f"https://t.me/{bot.username}?start={payload}"


class TelegramChannel:
    def __init__(self, bot: Bot, messages: Messages) -> None:
        self._bot = bot
        self._messages = messages
        self._photo_ids: dict[str, str] = {}  # a photo's sha256 -> Telegram's id for it

    @property
    def capabilities(self) -> Capabilities:
        return TELEGRAM

    def start_link(self, payload: str) -> str:
        return start_link(self._bot, payload)

    async def team_changed(self, person: Identity, role: Role | None, language: Language) -> None:
        if person.channel == CHANNEL:  # the team on other apps has no menu here
            await set_team_menu(self._bot, self._messages, person, role, language)

    async def send_text(
        self,
        to: Identity,
        text: str,
        choice: Choice | None = None,
        opt_out: str | None = None,
    ) -> Outcome:
        markup = _keyboard(choice) if choice else None
        if opt_out is not None:
            markup = _opt_out_markup(opt_out)
        return await _outcome(self._bot.send_message(chat_id(to), text, reply_markup=markup))

    async def send_photo(
        self, to: Identity, photo: bytes, caption: str, opt_out: str | None = None
    ) -> Outcome:
        """After its first upload a photo goes by Telegram's id for it: a campaign to
        thousands uploads it once."""
        key = hashlib.sha256(photo).hexdigest()
        markup = _opt_out_markup(opt_out) if opt_out else None

        async def send() -> None:
            sent = await self._bot.send_photo(
                chat_id(to),
                self._photo_ids.get(key, photo),
                caption=caption,
                reply_markup=markup,
            )
            if sent.photo:
                self._photo_ids[key] = sent.photo[-1].file_id

        return await _outcome(send())

    async def send_document(
        self, to: Identity, document: bytes, filename: str, caption: str
    ) -> Outcome:
        upload = InputFile(document, filename=filename)
        return await _outcome(self._bot.send_document(chat_id(to), upload, caption=caption))

    async def ask_for_contact(self, to: Identity, text: str, button_label: str) -> Outcome:
        share = KeyboardButton(button_label, request_contact=True)
        markup = ReplyKeyboardMarkup([[share]], resize_keyboard=True, one_time_keyboard=True)
        return await _outcome(self._bot.send_message(chat_id(to), text, reply_markup=markup))


def _opt_out_markup(label: str) -> InlineKeyboardMarkup:
    """The same tap as "turn offers off" in /notifications."""
    turn_off = NotificationsButton(ConsentTopic.PROMOTIONS, "off")
    return InlineKeyboardMarkup([[inline(label, turn_off)]])


async def _outcome(call: Awaitable[object]) -> Outcome:
    try:
        await call
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
