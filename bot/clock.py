"""Time comes from a Clock so that tests control it instead of sleeping through it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current moment, timezone-aware, in UTC."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait; a test clock moves its time forward instead."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class MovableClock(SystemClock):
    """The system's time moved forward on demand: `loyalty-bot try`'s `:later 1d` lets a
    newcomer see tomorrow's birthday greeting and next week's win-back today."""

    def __init__(self) -> None:
        self._ahead = timedelta()

    def now(self) -> datetime:
        return super().now() + self._ahead

    def move(self, delta: timedelta) -> None:
        self._ahead += delta
