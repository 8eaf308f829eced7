"""Each update a channel delivers takes effect once, however many times it is delivered.

A channel hands an update out again when it was not confirmed: after a crash, or when a
confirmation was lost. Handling one is wrapped in `handling`: the first transaction it opens also
records the update as handled, in the same commit, and an update that changed nothing is recorded
when its handling ends. A delivery of an update already recorded is dropped by `is_new`.

The path of a message to someone else (a customer's receipt after a sale), in one place:
the sale's transaction writes it to the outbox (`tell_customer`, bot/domain/notices.py) and
marks it `tx.on_commit`; the update's claim (bot/storage/updates.py) collects it when that
transaction commits; once the update is handled, `handling` hands it to the dispatcher's fast
path (`deliver_now`). Should the process die before, the dispatcher's next run sends it.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractContextManager, asynccontextmanager
from datetime import timedelta

from bot.clock import Clock
from bot.storage.database import Database, enlisting
from bot.storage.outbox import OutboxItem
from bot.storage.updates import AlreadyHandled as AlreadyHandled
from bot.storage.updates import ProcessedUpdates, UpdateClaim

log = logging.getLogger(__name__)

# Telegram redelivers an unconfirmed update for up to a day; keep ids somewhat longer than that.
REDELIVERY_WINDOW = timedelta(days=2)
PRUNE_EVERY = timedelta(days=1)


def beside_the_update() -> AbstractContextManager[None]:
    """For work that runs beside an update, after it was recorded as handled (a long report
    in its own task): its transactions are its own, not the update's."""
    return enlisting(None)


Deliver = Callable[[list[OutboxItem]], Awaitable[object]]


class IncomingUpdates:
    def __init__(
        self,
        database: Database,
        clock: Clock,
        channel: str,
        *,
        ids_only_grow: bool,
        deliver: Deliver | None = None,
    ) -> None:
        """`ids_only_grow`: the channel numbers updates in increasing order (Telegram does), so
        an id above every recorded one is new without asking the database. `deliver` sends
        the outbox rows an update's commit queued (its messages to others) once it is handled.
        """
        self._db = database
        self._deliver = deliver
        self._clock = clock
        self._channel = channel
        self._ids_only_grow = ids_only_grow
        self._highest = 0
        self._pruned_at = clock.now()

    async def open(self) -> None:
        """Forget ids past the redelivery window; learn the highest id still recorded."""
        await self._prune()
        async with self._db.reading() as tx:
            self._highest = await ProcessedUpdates(tx).highest(self._channel)

    async def is_new(self, update_id: int) -> bool:
        if self._ids_only_grow and update_id > self._highest:
            return True
        async with self._db.reading() as tx:
            return not await ProcessedUpdates(tx).handled(self._channel, update_id)

    @asynccontextmanager
    async def handling(self, update_id: int) -> AsyncIterator[None]:
        claim = UpdateClaim(self._channel, update_id, self._clock.now())
        try:
            with enlisting(claim):
                yield
        finally:
            # Also after an error: the person was told, and a redelivery would only fail again.
            await self._record(claim)
            self._highest = max(self._highest, update_id)
            await self._deliver_queued(claim.after_commit)
        if self._clock.now() - self._pruned_at >= PRUNE_EVERY:
            try:
                await self._prune()
            except sqlite3.Error as error:  # the update itself was handled: try again tomorrow
                log.warning("could not forget old update ids: %s", error)
                self._pruned_at = self._clock.now()

    async def _record(self, claim: UpdateClaim) -> None:
        if claim.recorded:
            return
        try:
            async with self._db.single_write() as tx:
                await claim.join(tx)
                claim.committed(tx)
        except AlreadyHandled:
            return
        except sqlite3.Error as error:
            # The handler has already answered; the worst case is handling it again after a
            # crash. Not confirming it would hand the same failing update back forever.
            log.critical("could not record update %s as handled: %s", claim.update_id, error)
            return

    async def _deliver_queued(self, queued: list[OutboxItem]) -> None:
        """Messages to others (a customer's receipt), sent as soon as the update that caused
        them is handled. They are in the outbox already: if this fails, or the process dies
        first, the dispatcher's next run sends them."""
        if not queued or self._deliver is None:
            return
        try:
            with beside_the_update():
                await self._deliver(queued)
        except Exception:
            log.exception("%d messages wait for the next delivery run", len(queued))

    async def _prune(self) -> None:
        now = self._clock.now()
        async with self._db.transaction() as tx:
            await ProcessedUpdates(tx).forget_before(now - REDELIVERY_WINDOW)
        self._pruned_at = now
