"""The inbox, for every channel that receives by webhook: each message written down before the
channel is answered (so a crash loses nothing), and one worker that handles what was written:
each person's messages in order, different people's side by side; after a crash, what was
recorded and not handled, once. A channel says how to read its own rows (`InboxReader`)."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any, Protocol

from bot.bootstrap import Services
from bot.domain.models import Identity
from bot.flood import Verdict
from bot.incoming import IncomingUpdates
from bot.storage.inbox import InboxRepository
from bot.storage.inbox import Received as Received
from bot.storage.outbox import OutboxRepository

log = logging.getLogger(__name__)

# Channels retry an unacknowledged webhook for days (Meta for 7): ids are remembered that
# long, and a message that says it was sent longer ago than that is a replay, ignored.
REMEMBERED = timedelta(days=8)
PRUNE_EVERY = timedelta(days=1)
BATCH = 100

Found = list[tuple[str, str, dict[str, Any]]]  # (the channel's message id, person, what to keep)


class InboxReader(Protocol):
    """How a channel reads what it wrote to the inbox."""

    def people(self, received: Received) -> list[Identity]:
        """Every id naming the sender (the team is exempt from the flood guard)."""

    def sent_at(self, received: Received) -> datetime | None: ...

    async def handle(self, received: Received) -> None: ...

    async def slow_down(self, received: Received) -> None:
        """The first message past its sender's allowance."""


async def record(
    services: Services, channel: str, fresh: Found, stale: Found, failures: list[tuple[str, str]]
) -> None:
    """A webhook's messages (the stale ones as handled already: a replay) and the failures it
    reports of messages sent earlier, in one transaction, before the webhook is answered."""
    async with services.database.transaction() as tx:
        inbox = InboxRepository(tx)
        now = services.clock.now()
        await inbox.record(channel, fresh, now)
        await inbox.record(channel, stale, now, ignored=True)
        outbox = OutboxRepository(tx)
        for message_id, reason in failures:  # never tried again as free text
            await outbox.failed_later(message_id, reason)


class InboxWorker:
    """Handles what the webhook recorded: each person's messages in order, different people's
    side by side; after a crash, what was recorded and not handled, once."""

    def __init__(
        self, services: Services, updates: IncomingUpdates, reader: InboxReader, channel: str
    ) -> None:
        self._services = services
        self._updates = updates
        self._reader = reader
        self._channel = channel
        self.recorded = asyncio.Event()
        self._pruned_at: datetime | None = None
        self._answered_unmarked: set[int] = set()

    async def run(self, stop: asyncio.Event) -> None:
        after = 0
        while not stop.is_set():
            self.recorded.clear()
            await self._prune_now_and_then()
            async with self._services.database.reading() as tx:
                batch = await InboxRepository(tx).unhandled(self._channel, after, BATCH)
            if not batch:
                stopping = asyncio.ensure_future(stop.wait())
                arriving = asyncio.ensure_future(self.recorded.wait())
                await asyncio.wait({stopping, arriving}, return_when=asyncio.FIRST_COMPLETED)
                stopping.cancel()
                arriving.cancel()
                continue
            by_person: dict[str, list[Received]] = {}
            for received in batch:
                by_person.setdefault(received.person, []).append(received)
            await asyncio.gather(*(self._in_order(own) for own in by_person.values()))
            after = batch[-1].id

    async def _prune_now_and_then(self) -> None:
        now = self._services.clock.now()
        if self._pruned_at is not None and now - self._pruned_at < PRUNE_EVERY:
            return
        async with self._services.database.transaction() as tx:
            await InboxRepository(tx).forget_before(now - REMEMBERED)
        self._pruned_at = now

    async def _in_order(self, own: list[Received]) -> None:
        for received in own:
            # Past the person's allowance (FLOOD_BURST): told to slow down once, the rest of
            # the flood recorded as handled unread, so one person cannot hold up the others.
            flood = self._services.flood
            team = await self._services.staff.in_team(*self._reader.people(received))
            verdict = flood.judge(
                f"{self._channel}:{received.person}",
                received.id,
                self._reader.sent_at(received),
                exempt=team,
            )
            flood.take_warning(received.id)  # ours, not an id Telegram's poller may see
            answered = received.id in self._answered_unmarked
            if (
                not answered
                and verdict is not Verdict.DROP
                and await self._updates.is_new(received.id)
            ):
                try:
                    async with self._updates.handling(received.id):
                        if verdict is Verdict.WARN:
                            await self._reader.slow_down(received)
                        else:
                            await self._reader.handle(received)
                except Exception:
                    log.exception("%s message %s could not be handled", self._channel, received.id)
            # Should this write fail, the supervisor starts the worker again: the message, then
            # read again, is only marked, not answered a second time.
            self._answered_unmarked.add(received.id)
            async with self._services.database.single_write() as tx:
                await InboxRepository(tx).mark_handled(received.id, self._services.clock.now())
            self._answered_unmarked.discard(received.id)
