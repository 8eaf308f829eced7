"""The Bot API client the handlers use: acknowledging a tap is a courtesy, and so is tidying.

Telegram refuses to acknowledge a tap that is too old ("query is too old", as after a restart,
when the tap was made while the bot was down) and refuses an edit that changes nothing ("message
is not modified", as on a double tap). Neither means the work the tap asked for failed, so
neither may stop it or make the person read "something went wrong". Doing this here, under
every handler, means no handler can forget it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any

from telegram import Message
from telegram.error import BadRequest, TelegramError
from telegram.ext import ExtBot

log = logging.getLogger(__name__)

NOT_MODIFIED = "message is not modified"


class CourteousBot(ExtBot[Any]):
    async def answer_callback_query(self, *args: Any, **kwargs: Any) -> bool:
        try:
            return await super().answer_callback_query(*args, **kwargs)
        except TelegramError as error:
            log.info("could not acknowledge a tap (%s); handling it all the same", error)
            return False

    async def edit_message_text(self, *args: Any, **kwargs: Any) -> Message | bool:
        return await _unless_unchanged(super().edit_message_text(*args, **kwargs))

    async def edit_message_reply_markup(self, *args: Any, **kwargs: Any) -> Message | bool:
        return await _unless_unchanged(super().edit_message_reply_markup(*args, **kwargs))


async def _unless_unchanged(edit: Awaitable[Message | bool]) -> Message | bool:
    """The edit's result; True when the message already said this (a second tap)."""
    try:
        return await edit
    except BadRequest as error:
        if NOT_MODIFIED not in str(error).lower():
            raise
        return True
