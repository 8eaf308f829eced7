"""What the channels' loopback stand-ins share: the requests the bot made, in order, and
waiting for one (tests and benchmarks read them as a person reads their chat)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

Call = TypeVar("Call")


class Recording(Generic[Call]):
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._changed = asyncio.Condition()
        # Benchmarks time replies as they arrive, without scanning `calls`.
        self.on_record: Callable[[Call], None] | None = None

    async def wait_for(
        self, predicate: Callable[[Call], bool], start: int = 0, timeout: float = 10.0
    ) -> tuple[int, Call]:
        """The first call at or after index `start` that matches, waiting for it if need be."""

        def find() -> tuple[int, Call] | None:
            for index in range(start, len(self.calls)):
                if predicate(self.calls[index]):
                    return index, self.calls[index]
            return None

        async with self._changed:
            found = await asyncio.wait_for(self._changed.wait_for(find), timeout)
        assert found is not None
        return found

    async def wait_until(self, condition: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until `condition` holds; it is checked again each time the bot calls."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(condition), timeout)

    async def _record(self, call: Call) -> None:
        if self.on_record is not None:
            self.on_record(call)
        async with self._changed:
            self.calls.append(call)
            self._changed.notify_all()
