"""Around the conversation: errors reported after it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from telegram import Update

from bot.errors import cannot_be_written
from bot.incoming import AlreadyHandled
from handlers.telegram.context import Context, reply

log = logging.getLogger(__name__)
Handler = Callable[[Update, Context], Coroutine[Any, Any, None]]


async def report_error(update: object, context: Context) -> None:
    if isinstance(context.error, AlreadyHandled):
        # A second delivery raced the first and lost: the first one has already answered.
        log.info("dropped a second delivery of %s", context.error)
        return
    if cannot_be_written(context.error):
        # Nothing was written (the unit of work rolled back); the operator must act.
        log.critical(
            "the database cannot be written (%s): check free disk space and the permissions"
            " of DATABASE_PATH; the person was told to try again",
            context.error,
        )
    else:
        log.error("error while handling an update", exc_info=context.error)
    if isinstance(update, Update) and update.effective_chat is not None:
        try:
            await reply(update, context, context.language, "problems/error")
        except Exception:  # the apology itself failed; the log above already has the cause
            log.exception("could not tell the user about the error")
