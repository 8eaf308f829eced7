"""Long polling that writes each update to the inbox before confirming it to Telegram.

An update is confirmed (by asking for the next offset) as soon as it is in the inbox, so the
next poll never waits for the bot to handle the last batch; the inbox worker handles it, each
person's updates in order (bot/inbox.py). A crash before the write leaves the update with
Telegram, which hands it out again; one written twice is kept once. Should the database refuse
the write (a full disk), the batch is answered straight away instead, unrecorded, so people
hear "try again" rather than nothing.

Updates are recorded as Telegram sent them (JSON), not read into PTB's objects: reading one
costs more than recording it, and a flood's updates past the sender's allowance are never
read at all. The inbox worker reads those it handles.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from telegram import Bot, Update
from telegram.error import Conflict, EndPointNotFound, InvalidToken, RetryAfter, TelegramError
from telegram.warnings import PTBDeprecationWarning, PTBUserWarning

from bot.bootstrap import Services
from bot.errors import DATABASE_ERRORS, unreachable
from bot.inbox import InboxWorker
from bot.supervisor import FIRST_BACKOFF, LONGEST_BACKOFF, until_stopped
from handlers.telegram.aiohttp_request import READ_TIMEOUT

log = logging.getLogger(__name__)
CHANNEL = "telegram"
BATCH_MOST = 100  # getUpdates' most updates at once (Telegram's default limit)
BACKLOG_READ_AHEAD = 5  # full batches read in before the inbox worker is woken all the same
# PTB suggests Bot.get_updates for getUpdates; here the JSON is wanted (see above).
warnings.filterwarnings("ignore", "Please use 'Bot.getUpdates'", PTBUserWarning)


class RecordingPoller:
    def __init__(
        self,
        bot: Bot,
        services: Services,
        inbox: InboxWorker,
        answer_unrecorded: Callable[[Update], Awaitable[None]],
    ) -> None:
        """`answer_unrecorded` handles an update the inbox could not take."""
        self._bot = bot
        self._services = services
        self._inbox = inbox
        self._answer_unrecorded = answer_unrecorded
        self._offset: int | None = None
        self._full_batches = 0
        self._host = urlsplit(services.settings.telegram_api_url).hostname or "Telegram"

    async def run(self, stop: asyncio.Event) -> None:
        """Fetch, record, confirm; until `stop` is set."""
        backoff = FIRST_BACKOFF
        while not stop.is_set():
            try:
                updates = await self._fetch_unless_stopped(stop)
            except RetryAfter as error:
                await self._pause(stop, retry_after_seconds(error))
                continue
            except InvalidToken:
                raise
            except TelegramError as error:
                self._backlog_read()
                # Conflict: another copy of the bot is polling with this token.
                level = logging.ERROR if isinstance(error, Conflict) else logging.WARNING
                reason = unreachable(self._host, error)
                log.log(level, "getUpdates failed: %s; trying again in %.0f s", reason, backoff)
                await self._pause(stop, backoff)
                backoff = min(backoff * 2, LONGEST_BACKOFF)
                continue
            backoff = FIRST_BACKOFF
            if updates is not None:
                self._services.health.beat(CHANNEL)
            if updates:
                await self._take(updates)
            else:
                self._backlog_read()  # it ended on a full batch
        self._backlog_read()
        await self._confirm()

    def _backlog_read(self) -> None:
        if self._full_batches:
            self._full_batches = 0
            self._inbox.wake.set()

    async def _take(self, updates: list[dict[str, Any]]) -> None:
        found = [(str(update["update_id"]), person_of(update), update) for update in updates]
        # A full batch says Telegram may hold more: the backlog is read in first (a few ms a
        # batch, without holding the poll), so the others' messages behind a flood are read in
        # before any of it is answered, and the worker is woken once the backlog is in.
        full = len(updates) == BATCH_MOST
        self._full_batches = self._full_batches + 1 if full else 0
        try:
            await self._inbox.take_in(
                found, more_coming=full and self._full_batches % BACKLOG_READ_AHEAD != 0
            )
        except DATABASE_ERRORS as error:
            log.critical(
                "the database cannot be written (%s): check free disk space and the permissions"
                " of DATABASE_PATH; %d updates are answered without being recorded",
                error,
                len(updates),
            )
            await self._answer_now(updates)
        self._offset = updates[-1]["update_id"] + 1

    async def _answer_now(self, updates: list[dict[str, Any]]) -> None:
        """Each person's updates in order, different people's side by side."""
        by_person: dict[str, list[Update]] = {}
        for update in updates:
            by_person.setdefault(person_of(update), []).append(Update.de_json(update, self._bot))

        async def in_order(own: list[Update]) -> None:
            for update in own:
                await self._answer_unrecorded(update)

        await asyncio.gather(*(in_order(own) for own in by_person.values()))

    async def _fetch_unless_stopped(self, stop: asyncio.Event) -> list[dict[str, Any]] | None:
        timeout = 0 if self._full_batches else self._services.settings.polling_timeout
        asked = {"timeout": timeout, "allowed_updates": Update.ALL_TYPES}
        if self._offset is not None:
            asked["offset"] = self._offset
        fetched = await until_stopped(self._get_updates(asked, timeout + READ_TIMEOUT), stop)
        # Nothing fetched counts as confirmed: the offset has not moved.
        return fetched.result() if fetched else None

    async def _get_updates(self, asked: dict[str, Any], read_timeout: float) -> Any:
        """Bot.get_updates' request, its answer as JSON (see the module's docstring)."""
        try:
            return await self._bot.do_api_request(
                "getUpdates", api_kwargs=asked, read_timeout=read_timeout
            )
        except EndPointNotFound as error:  # what PTB makes here of a token Telegram refuses
            raise InvalidToken(str(error)) from error

    async def _confirm(self) -> None:
        """Tell Telegram, before exiting, which updates are in the inbox (as the Updater does)."""
        if self._offset is None:
            return
        try:
            await self._bot.get_updates(offset=self._offset, timeout=0, limit=1)
        except TelegramError as error:
            log.warning("could not confirm the last updates (%s): they will come again", error)

    async def _pause(self, stop: asyncio.Event, seconds: float) -> None:
        await until_stopped(self._services.clock.sleep(seconds), stop)


def person_of(update: dict[str, Any]) -> str:
    """Whose update this is, as Telegram sent it: their updates must be handled in order. The
    sender (PTB's `effective_user`), else the chat (a channel's post)."""
    for kind, said in update.items():
        if kind == "update_id" or not isinstance(said, dict):
            continue
        user = said.get("from") or said.get("user")
        if isinstance(user, dict) and "id" in user:
            return str(user["id"])
        chat = said.get("chat") or _dict(said.get("message")).get("chat")
        if isinstance(chat, dict) and "id" in chat:
            return str(chat["id"])
    return f"update {update.get('update_id')}"  # no person (a poll, say): alone in its line


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def retry_after_seconds(error: RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22 warns that this becomes a timedelta: both fit
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        wait = error.retry_after
    return wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
