"""Each message a channel delivers takes effect once, however many times it is delivered.

A channel writes what it receives to the inbox (bot/inbox.py), which keeps one row per message
id, so a second delivery finds the first. Handling a row is wrapped in `handling`: the first
transaction it opens also marks the row handled, in the same commit, and a message that changed
nothing is marked when its handling ends.

The path of a message to someone else (a customer's receipt after a sale), in one place:
the sale's transaction writes it to the outbox (`tell_customer`, bot/domain/notices.py) and
marks it `tx.on_commit`; the message's claim (bot/storage/updates.py) collects it when that
transaction commits; once the message is handled, `handling` hands it to the dispatcher's fast
path (`deliver_now`). Should the process die before, the dispatcher's next run sends it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractContextManager, asynccontextmanager

from bot.clock import Clock
from bot.storage.database import Database, enlisting
from bot.storage.outbox import OutboxItem
from bot.storage.updates import AlreadyHandled as AlreadyHandled
from bot.storage.updates import UpdateClaim

log = logging.getLogger(__name__)


def beside_the_update() -> AbstractContextManager[None]:
    """For work that runs beside a message, after it was recorded as handled (a long report
    in its own task): its transactions are its own, not the message's."""
    return enlisting(None)


Deliver = Callable[[list[OutboxItem]], Awaitable[object]]


class IncomingUpdates:
    def __init__(
        self, database: Database, clock: Clock, channel: str, deliver: Deliver | None = None
    ) -> None:
        """`deliver` sends the outbox rows a message's commit queued (its messages to others)
        once it is handled."""
        self._db = database
        self._deliver = deliver
        self._clock = clock
        self._channel = channel

    @asynccontextmanager
    async def handling(self, item_id: int) -> AsyncIterator[None]:
        """Handle the inbox row `item_id`; on leaving, it is recorded as handled, also after
        an error (the person was told, and handling it again would only fail again).
        Raises one of DATABASE_ERRORS if that record cannot be written: the caller keeps the row,
        answered, to record it later."""
        claim = UpdateClaim(self._channel, item_id, self._clock.now())
        try:
            with enlisting(claim):
                yield
        finally:
            await self._record(claim)
            await self._deliver_queued(claim.after_commit)

    async def record_answered(self, item_id: int) -> None:
        """A row answered earlier whose record could not be written then."""
        await self._record(UpdateClaim(self._channel, item_id, self._clock.now()))

    async def _record(self, claim: UpdateClaim) -> None:
        if claim.recorded:
            return
        try:
            async with self._db.single_write() as tx:
                await claim.join(tx)
                claim.committed(tx)
        except AlreadyHandled:
            return

    async def _deliver_queued(self, queued: list[OutboxItem]) -> None:
        """Messages to others (a customer's receipt), sent as soon as the message that caused
        them is handled. They are in the outbox already: if this fails, or the process dies
        first, the dispatcher's next run sends them."""
        if not queued or self._deliver is None:
            return
        try:
            with beside_the_update():
                await self._deliver(queued)
        except Exception:
            log.exception("%d messages wait for the next delivery run", len(queued))
