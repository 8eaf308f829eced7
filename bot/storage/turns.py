"""SQLite's one connection on the loop, taken in turns, with what arrives served first.

A channel's update is written to the inbox before the channel is answered (a webhook's 200),
so that write must not queue behind the work already waiting: with one FIFO lock, a busy
shop's acknowledgements waited 43 ms at the median and 89 ms at p99 for the writes and reads
of the updates before them (bench.cluster, 40 clerks and a burst of /balance). Work of the
first kind goes ahead of the others; among each kind, first come first served. asyncio.Lock
has no priorities and no maintained library offers one for asyncio, so it is written here,
with asyncio.Lock's care for a waiter cancelled just as its turn came.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class Turns:
    def __init__(self) -> None:
        self._taken = False
        # Waiting: those that go first, then the others.
        self._waiting: tuple[deque[asyncio.Future[None]], ...] = (deque(), deque())

    @asynccontextmanager
    async def turn(self, *, first: bool = False) -> AsyncIterator[None]:
        await self._take(self._waiting[0 if first else 1])
        try:
            yield
        finally:
            self._pass_on()

    async def _take(self, queue: deque[asyncio.Future[None]]) -> None:
        if not self._taken and not any(self._waiting):
            self._taken = True
            return
        handed = asyncio.get_running_loop().create_future()
        queue.append(handed)
        try:
            await handed
        except asyncio.CancelledError:
            if handed.done() and not handed.cancelled():
                self._pass_on()  # the turn came as this waiter was cancelled: the next one's
            else:
                with contextlib.suppress(ValueError):
                    queue.remove(handed)
            raise

    def _pass_on(self) -> None:
        """To the next waiter, if any (the turn stays taken); else free."""
        for queue in self._waiting:
            while queue:
                handed = queue.popleft()
                if not handed.done():
                    handed.set_result(None)
                    return
        self._taken = False
