"""The inbox, for every channel: each message written down before the channel is answered (a
WhatsApp webhook's 200, a Telegram update confirmed by the next poll), so a crash loses nothing,
and one worker that handles what was written: each person's messages in order, different
people's side by side and never waiting for one another; after a crash, what was recorded and
not handled, once. A channel says how to read its own rows (`InboxReader`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from datetime import datetime, timedelta
from typing import Any, Protocol

from bot.bootstrap import Services
from bot.clock import Clock
from bot.domain.models import Identity
from bot.errors import DATABASE_ERRORS, StorageError
from bot.flood import Verdict
from bot.incoming import IncomingUpdates
from bot.storage.database import Database
from bot.storage.inbox import RECORDED_AT_ONCE, InboxRepository
from bot.storage.inbox import Received as Received
from bot.storage.outbox import OutboxRepository

log = logging.getLogger(__name__)

# Channels retry an unacknowledged webhook for days (Meta for 7): ids are remembered that
# long, and a message that says it was sent longer ago than that is a replay, ignored.
REMEMBERED = timedelta(days=8)
PRUNE_EVERY = timedelta(days=1)
BATCH = 100
HELD_MOST = 1_000  # read from the inbox and not yet handled: past this, reading waits
ARRIVALS_KEPT = 10_000  # verdicts on arrival kept for the worker; more are judged again
# Several processes (PostgreSQL): each handles what it recorded, and this often looks again
# from the start of the inbox for messages a process that died left behind.
LOOK_AGAIN_SECONDS = 5.0
# A person another process is serving is usually finishing the message before this one (the
# balancer sent the two to different processes): asking again this often, until the next look
# from the start would find the message anyway, spared it a wait of up to LOOK_AGAIN_SECONDS
# (two processes' sales p99 was 3.4-4.3 s).
ASK_AGAIN_EVERY = 0.05

Found = list[tuple[str, str, dict[str, Any]]]  # (the channel's message id, person, what to keep)


class InboxReader(Protocol):
    """How a channel reads what it wrote to the inbox."""

    def people(self, received: Received) -> list[Identity]:
        """Every id naming the sender (the team is exempt from the flood guard)."""

    def sent_at(self, received: Received) -> datetime | None: ...

    async def handle(self, received: Received) -> None: ...

    async def slow_down(self, received: Received) -> None:
        """The first message past its sender's allowance."""

    async def dropped(self, received: Received) -> None:
        """A message past the allowance, not answered (a tap may still need acknowledging)."""


async def record(
    services: Services,
    channel: str,
    fresh: Found,
    stale: Found | None = None,
    failures: list[tuple[str, str]] | None = None,
) -> int:
    """What a channel received (those `stale`, a replay or a flood, as handled already) and
    the failures it reports of messages sent earlier, in one transaction, before the channel
    is answered. A message id already recorded is left as it is: a second delivery. Returns how
    many of the fresh messages were new."""
    async with services.database.transaction(alone=False) as tx:
        inbox = InboxRepository(tx)
        now = services.clock.now()
        new = await inbox.record(channel, fresh, now)
        if stale:
            await inbox.record(channel, stale, now, ignored=True)
        outbox = OutboxRepository(tx)
        for message_id, reason in failures or []:  # never tried again as free text
            await outbox.failed_later(message_id, reason)
    return len(new)


class RecordedTogether:
    """Fresh messages alone (a webhook's update) are written one INSERT at a time, and what
    arrives while one is under way waits and goes in the next, all together: a group commit.
    A burst of webhooks (5,000 /balance over Telegram's 40 connections) had each take a
    pooled connection and a round trip of its own before its 200, which put PostgreSQL's
    acknowledgement at p50 39 ms, p99 71 ms; together, p50 17-21 ms, p99 47-73 ms."""

    def __init__(self, database: Database, clock: Clock, channel: str) -> None:
        self._database = database
        self._clock = clock
        self._channel = channel
        self._waiting: deque[tuple[Found, asyncio.Future[set[str]]]] = deque()
        self._writing = asyncio.Lock()

    async def record(self, fresh: Found) -> int:
        """As `record` does for `fresh` alone (at most RECORDED_AT_ONCE): how many were new."""
        mine: asyncio.Future[set[str]] = asyncio.get_running_loop().create_future()
        self._waiting.append((fresh, mine))
        try:
            async with self._writing:
                while not mine.done():  # else an earlier INSERT took it along
                    await self._write_waiting()
        finally:
            if mine.done() and not mine.cancelled():
                mine.exception()  # raised here, or by result() below: not left unread
        return len(mine.result())

    async def _write_waiting(self) -> None:
        batch = [self._waiting.popleft()]
        rows = len(batch[0][0])
        while self._waiting and rows + len(self._waiting[0][0]) <= RECORDED_AT_ONCE:
            batch.append(self._waiting.popleft())
            rows += len(batch[-1][0])
        try:  # one statement, committed by itself
            async with self._database.single_write(alone=False) as tx:
                new = await InboxRepository(tx).record(
                    self._channel,
                    [message for fresh, _ in batch for message in fresh],
                    self._clock.now(),
                )
        except BaseException as error:  # every webhook of the batch fails: it comes again
            failed = error if isinstance(error, Exception) else StorageError("interrupted")
            for _, waiting in batch:
                if not waiting.done():
                    waiting.set_exception(failed)
            raise
        for fresh, waiting in batch:  # a message posted twice is new to the first only
            own = {message_id for message_id, _, _ in fresh if message_id in new}
            new -= own
            if not waiting.done():
                waiting.set_result(own)


class InboxWorker:
    """Handles what the channel recorded. Each person has a line (a task) that takes their
    messages one after the other; a flood or a slow reply in one line holds up nobody else's.
    With several processes, a person's line runs in one process at a time (`serving`), so
    their messages stay in order and none is answered twice."""

    def __init__(
        self, services: Services, updates: IncomingUpdates, reader: InboxReader, channel: str
    ) -> None:
        self._services = services
        self._updates = updates
        self._reader = reader
        self._channel = channel
        self.wake = asyncio.Event()  # set when something was recorded (or a line ended)
        self._pruned_at: datetime | None = None
        self._answered_unrecorded: set[int] = set()
        self._lines: dict[str, deque[Received]] = {}
        self._queued: set[int] = set()  # in a line or in hand: read again, not queued twice
        self._looked_again = 0.0
        self._held = 0
        self._in_hand: set[int] = set()
        self._verdicts: dict[int, Verdict] = {}  # judged as read, for the line to act on
        self._arrived: dict[str, Verdict] = {}  # judged as recorded, by the channel's id
        self._acknowledging = 0  # flood messages whose channel courtesy is still under way
        self._courtesies: set[asyncio.Task[None]] = set()
        self._broken: Exception | None = None
        self._together = RecordedTogether(services.database, services.clock, channel)

    async def take_in(
        self,
        fresh: Found,
        stale: Found | None = None,
        failures: list[tuple[str, str]] | None = None,
        *,
        more_coming: bool = False,
    ) -> int:
        """Record what the channel received (see `record`), judging each fresh message against
        its sender's allowance as it arrives: a flood's messages past it are recorded as
        handled unread and never read again, so they cost the others nothing. Wakes the worker
        for what is new, unless the channel says more is waiting (it reads its backlog first).
        Returns how many fresh messages were new."""
        kept: Found = []
        flood: list[Received] = []
        for message_id, person, body in fresh:
            arrival = Received(0, person, body, message_id)
            verdict = await self._judge(arrival)
            if verdict is Verdict.DROP:
                flood.append(arrival)
            else:
                if len(self._arrived) > ARRIVALS_KEPT:  # handled elsewhere: judged again
                    self._arrived.clear()
                self._arrived[message_id] = verdict
                kept.append((message_id, person, body))
        ignored = (stale or []) + [(r.message_id, r.person, r.body) for r in flood]
        if ignored or failures or len(kept) > RECORDED_AT_ONCE:
            new = await record(self._services, self._channel, kept, ignored, failures)
        else:
            new = await self._together.record(kept) if kept else 0
        if flood:
            self._acknowledge_beside(flood)
        if new and not more_coming:
            self.wake.set()
        return new

    async def finished(self, message_id: str) -> bool:
        """Whether the channel's message `message_id`, and every one recorded before it, was
        handled and its replies sent (a message is marked handled with its first change,
        before its replies)."""
        async with self._services.database.reading() as tx:
            item = await InboxRepository(tx).handled_through(self._channel, message_id)
        return (
            item is not None
            and all(other > item for other in self._in_hand)
            and not self._acknowledging
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop` is set; then the message in hand in each line is finished and the rest
        waits in the inbox for the next start. Should a line fail to record a message as
        handled (a full disk), this raises once the lines have stopped, and the supervisor
        starts it again: the message, read again, is then only recorded."""
        after = 0
        running: set[asyncio.Task[None]] = set()
        self._broken = None
        try:
            while not stop.is_set() and self._broken is None:
                self.wake.clear()
                await self._prune_now_and_then()
                if self._services.database.shared and self._time_to_look_again():
                    after = 0  # what another process recorded and left behind
                batch: list[Received] = []
                if self._held < HELD_MOST:
                    async with self._services.database.reading() as tx:
                        batch = await InboxRepository(tx).unhandled(self._channel, after, BATCH)
                if not batch:
                    await self._idle(stop)
                    continue
                flood: list[Received] = []
                for received in batch:
                    if received.id in self._queued:
                        continue
                    verdict = self._arrived.pop(received.message_id, None)
                    verdict = verdict or await self._judge(received)  # recorded elsewhere
                    if verdict is Verdict.DROP:
                        flood.append(received)
                    else:
                        self._verdicts[received.id] = verdict
                        self._queue(received, stop, running)
                after = batch[-1].id
                if flood:
                    await self._drop(flood)
        finally:
            await asyncio.gather(*running, *self._courtesies, return_exceptions=True)
            self._lines.clear()
            self._queued.clear()
            self._verdicts.clear()
            self._held = 0
        if self._broken is not None:
            raise self._broken

    def _queue(
        self, received: Received, stop: asyncio.Event, running: set[asyncio.Task[None]]
    ) -> None:
        """Into its person's line; a person without one gets a line (a task) of their own."""
        self._queued.add(received.id)
        line = self._lines.get(received.person)
        if line is None:
            line = self._lines[received.person] = deque()
            task = asyncio.create_task(self._take(received.person, line, stop))
            running.add(task)
            task.add_done_callback(running.discard)
        line.append(received)
        self._held += 1

    async def _idle(self, stop: asyncio.Event) -> None:
        """Wait for news (several processes: at most LOOK_AGAIN_SECONDS)."""
        if not self._services.database.shared:
            await _first_of(stop, self.wake)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(_first_of(stop, self.wake), LOOK_AGAIN_SECONDS)

    def _time_to_look_again(self) -> bool:
        now = asyncio.get_running_loop().time()
        if now - self._looked_again < LOOK_AGAIN_SECONDS:
            return False
        self._looked_again = now
        return True

    async def _take(self, person: str, line: deque[Received], stop: asyncio.Event) -> None:
        try:
            for attempt in range(round(LOOK_AGAIN_SECONDS / ASK_AGAIN_EVERY)):
                if attempt:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), ASK_AGAIN_EVERY)
                if await self._serve(person, line, stop):
                    break
                if stop.is_set() or self._broken is not None:
                    break
        except DATABASE_ERRORS as error:
            self._broken = error
        finally:
            self._close_line(person, line)
            self.wake.set()

    async def _serve(self, person: str, line: deque[Received], stop: asyncio.Event) -> bool:
        """The person's line, handled while this process holds the person; False (nothing
        handled) if another process holds them."""
        async with self._services.database.serving(f"{self._channel}:{person}") as mine:
            while mine and line and not stop.is_set() and self._broken is None:
                if len(line) > 1:  # a backlog: people with one message go first
                    await asyncio.sleep(0)
                received = line.popleft()
                self._held -= 1
                self._in_hand.add(received.id)
                try:
                    for due in await self._in_order(received):
                        await self._handle(due)
                except DATABASE_ERRORS as error:
                    self._broken = error
                finally:
                    self._in_hand.discard(received.id)
                    self._queued.discard(received.id)
            if mine:
                self._close_line(person, line)  # before the person is let go
            return mine

    def _close_line(self, person: str, line: deque[Received]) -> None:
        """No more messages join this line. What is left in it (another process serves the
        person, or the worker stops) stays in the inbox, read again later."""
        if self._lines.get(person) is line:
            del self._lines[person]
        for received in line:
            self._queued.discard(received.id)
            self._verdicts.pop(received.id, None)
        self._held -= len(line)
        line.clear()

    async def _in_order(self, received: Received) -> list[Received]:
        """What to handle for this message now. Alone, the message itself. With several
        processes, the person's messages recorded up to it and not handled yet, oldest first:
        another process may have recorded an earlier one, or handled this one already."""
        if not self._services.database.shared:
            return [received]
        async with self._services.database.single_read() as tx:
            return await InboxRepository(tx).unhandled_of(
                self._channel, received.person, through=received.id
            )

    async def _handle(self, received: Received) -> None:
        if received.id in self._answered_unrecorded:
            await self._updates.record_answered(received.id)
            self._answered_unrecorded.discard(received.id)
            return
        verdict = (
            self._verdicts.pop(received.id, None)
            or self._arrived.pop(received.message_id, None)  # came by `_in_order`
            or await self._judge(received)
        )
        try:
            async with self._updates.handling(received.id):
                try:
                    if verdict is Verdict.DROP:  # read again by another process
                        await self._reader.dropped(received)
                    elif verdict is Verdict.WARN:
                        await self._reader.slow_down(received)
                    else:
                        await self._reader.handle(received)
                except Exception:
                    log.exception("%s message %s could not be handled", self._channel, received.id)
        except DATABASE_ERRORS:
            self._answered_unrecorded.add(received.id)
            raise

    async def _judge(self, received: Received) -> Verdict:
        """Past the person's allowance (FLOOD_BURST): told to slow down once, the rest of the
        flood recorded as handled unread, so one person cannot hold up the others."""
        team = await self._services.staff.in_team(*self._reader.people(received))
        return self._services.flood.judge(
            f"{self._channel}:{received.person}", self._reader.sent_at(received), exempt=team
        )

    async def _drop(self, flood: list[Received]) -> None:
        """A flood's messages read from the inbox (recorded by another process, or before a
        restart), recorded as handled in one write: they never join a line."""
        async with self._services.database.transaction() as tx:
            await InboxRepository(tx).claim_all(
                [received.id for received in flood], self._services.clock.now()
            )
        self._acknowledge_beside(flood)

    def _acknowledge_beside(self, flood: list[Received]) -> None:
        """What the channel still owes a flood's messages (a tap's acknowledgement), in a task
        of its own: a courtesy, which holds up nothing."""
        self._acknowledging += len(flood)
        task = asyncio.create_task(self._acknowledge(flood))
        self._courtesies.add(task)
        task.add_done_callback(self._courtesies.discard)

    async def _acknowledge(self, flood: list[Received]) -> None:
        for received in flood:
            try:
                await self._reader.dropped(received)
            except Exception:  # the messages are handled whatever becomes of it
                log.warning("%s message %s: could not acknowledge", self._channel, received.id)
            finally:
                self._acknowledging -= 1

    async def _prune_now_and_then(self) -> None:
        now = self._services.clock.now()
        if self._pruned_at is not None and now - self._pruned_at < PRUNE_EVERY:
            return
        try:
            async with self._services.database.transaction() as tx:
                await InboxRepository(tx).forget_before(now - REMEMBERED)
        except DATABASE_ERRORS as error:  # nothing is lost by keeping them: try again tomorrow
            log.warning("could not forget old inbox messages: %s", error)
        self._pruned_at = now


async def _first_of(*events: asyncio.Event) -> None:
    waiting = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for future in waiting:
            future.cancel()
