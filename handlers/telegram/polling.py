"""Long polling that confirms an update to Telegram only after it has been handled.

python-telegram-bot's Updater confirms a batch (by asking for the next offset) as soon as the
batch is queued in memory, so the updates still queued when the process dies are lost: Telegram
has forgotten them. Here the offset moves past an update only once it has been handled and
recorded (bot/incoming.py), so a crash leaves the unhandled ones with Telegram, which hands them
out again on restart, and the records make a second delivery of a handled one a no-op.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import Awaitable, Callable
from datetime import timedelta

from telegram import Bot, Update
from telegram.error import Conflict, InvalidToken, RetryAfter, TelegramError
from telegram.warnings import PTBDeprecationWarning

from bot.clock import Clock
from bot.domain.models import Identity
from bot.flood import FloodGuard, Verdict
from bot.health import Health
from bot.incoming import IncomingUpdates
from bot.supervisor import FIRST_BACKOFF, LONGEST_BACKOFF, until_stopped

log = logging.getLogger(__name__)
CHANNEL = "telegram"


class ConfirmingPoller:
    def __init__(
        self,
        bot: Bot,
        process: Callable[[Update], Awaitable[None]],
        incoming: IncomingUpdates,
        clock: Clock,
        timeout: int,
        flood: FloodGuard,
        health: Health,
        in_team: Callable[[Identity], Awaitable[bool]],
    ) -> None:
        self._in_team = in_team
        self._bot = bot
        self._health = health
        self._flood = flood
        self._process = process
        self._incoming = incoming
        self._clock = clock
        self._timeout = timeout
        self._offset: int | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Fetch, handle, confirm; until `stop` is set. Updates being handled when `stop` is
        set are finished; the rest of their batch is left for the next start."""
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
                # Conflict: another copy of the bot is polling with this token.
                level = logging.ERROR if isinstance(error, Conflict) else logging.WARNING
                log.log(level, "getUpdates failed (%s); trying again in %.0f s", error, backoff)
                await self._pause(stop, backoff)
                backoff = min(backoff * 2, LONGEST_BACKOFF)
                continue
            backoff = FIRST_BACKOFF
            if updates is not None:
                self._health.beat(CHANNEL)
            if updates:
                await self._handle_batch(updates, stop)
        await self._confirm_handled()

    async def _handle_batch(self, updates: tuple[Update, ...], stop: asyncio.Event) -> None:
        """Each person's updates in the order they were sent; different people's side by side,
        so one person's wait on the database or on Telegram does not hold up the others."""
        by_person: dict[int, list[Update]] = {}
        for update in updates:
            person = _person(update)
            team = await self._in_team(Identity(CHANNEL, str(person)))
            sent_at = update.message.date if update.message else None  # a tap has no date
            verdict = self._flood.judge(str(person), update.update_id, sent_at, exempt=team)
            if verdict is Verdict.DROP:
                await self._drop(update)
                continue
            by_person.setdefault(person, []).append(update)
        unhandled = {update.update_id for own in by_person.values() for update in own}

        async def in_order(own: list[Update]) -> None:
            for update in own:
                if stop.is_set():
                    return
                await self._handle(update)
                unhandled.discard(update.update_id)

        await asyncio.gather(*(in_order(own) for own in by_person.values()))
        # The offset confirms every id below it: never past one still unhandled.
        following = min(unhandled) if unhandled else updates[-1].update_id + 1
        self._offset = max(self._offset or 0, following)

    async def _drop(self, update: Update) -> None:
        """Past its sender's allowance: not handled, and confirmed with the batch. A tap is
        still acknowledged, or the person's button would spin."""
        if update.callback_query is not None:
            await self._bot.answer_callback_query(update.callback_query.id)

    async def _fetch_unless_stopped(self, stop: asyncio.Event) -> tuple[Update, ...] | None:
        fetched = await until_stopped(
            self._bot.get_updates(
                offset=self._offset, timeout=self._timeout, allowed_updates=Update.ALL_TYPES
            ),
            stop,
        )
        # Nothing fetched counts as confirmed: the offset has not moved.
        return fetched.result() if fetched else None

    async def _handle(self, update: Update) -> None:
        if not await self._incoming.is_new(update.update_id):
            log.info("dropping update %s: already handled", update.update_id)
            return
        try:
            async with self._incoming.handling(update.update_id):
                await self._process(update)
        except Exception:  # process_update reports handler errors itself; this is a last resort
            log.exception("update %s could not be handled", update.update_id)

    async def _confirm_handled(self) -> None:
        """Tell Telegram, before exiting, which updates were handled (as the Updater does)."""
        if self._offset is None:
            return
        try:
            await self._bot.get_updates(offset=self._offset, timeout=0, limit=1)
        except TelegramError as error:
            log.warning("could not confirm the last updates (%s): they will come again", error)

    async def _pause(self, stop: asyncio.Event, seconds: float) -> None:
        await until_stopped(self._clock.sleep(seconds), stop)


def _person(update: Update) -> int:
    """Whose update this is: their updates must be handled in order."""
    if update.effective_user is not None:
        return update.effective_user.id
    if update.effective_chat is not None:
        return update.effective_chat.id
    return -update.update_id  # no person (a poll, say): alone in its own line


def retry_after_seconds(error: RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22 warns that this becomes a timedelta: both fit
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        wait = error.retry_after
    return wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
