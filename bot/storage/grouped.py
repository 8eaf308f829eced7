"""Group commit: concurrent callers' small writes made in one statement.

Under load many updates finish at once, each with a receipt to mark `sending` and then `sent`;
a round trip to the database each would queue them all behind the database lock. Callers here
hand their ids to one writer, which takes everything handed in while its previous statement
ran. Each caller still waits until its own ids are written, so nothing is reported done
before it is on disk. (No library does this for aiosqlite; it is a dozen lines.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

Write = Callable[[list[int]], Awaitable[set[int]]]


class GroupedWrite:
    def __init__(self, write: Write) -> None:
        """`write` writes a group of ids and returns those it changed."""
        self._write = write
        self._waiting: list[tuple[list[int], asyncio.Future[set[int]]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def __call__(self, ids: list[int]) -> set[int]:
        """Of `ids`, those written (once the statement that includes them has run)."""
        done: asyncio.Future[set[int]] = asyncio.get_running_loop().create_future()
        self._waiting.append((ids, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
        return await done

    async def _drain(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting, []
            try:
                changed = await self._write([item for ids, _ in group for item in ids])
            except Exception as error:
                for _, done in group:
                    if not done.done():
                        done.set_exception(error)
                continue
            for ids, done in group:
                if not done.done():  # its caller may have been cancelled meanwhile
                    done.set_result(changed.intersection(ids))
