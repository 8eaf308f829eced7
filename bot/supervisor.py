"""Every long-running task of the bot (the Telegram poller, the WhatsApp inbox worker) runs
under `supervise`: an error is logged once with its traceback, the task starts again after a
back-off (1, 2, 4 ... 30 s), and the same error again is one short line; an error the task
declares fatal ends the process with its sentence instead of leaving a half-alive bot.

Written here because asyncio's TaskGroup cancels every task at the first error, and the
process supervisors (systemd, Docker) sit outside the process: they restart it whole, which is
what a fatal error asks of them, not what a disk that was full a moment ago deserves.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from bot.clock import Clock
from bot.errors import short_reason
from bot.health import Health

log = logging.getLogger(__name__)
T = TypeVar("T")

FIRST_BACKOFF = 1.0
LONGEST_BACKOFF = 30.0

Work = Callable[[asyncio.Event], Awaitable[None]]


async def supervise(
    name: str,
    work: Work,
    stop: asyncio.Event,
    clock: Clock,
    health: Health,
    *,
    fatal: tuple[type[BaseException], ...] = (),
) -> None:
    """Run `work(stop)` until `stop` is set, starting it again after any error but `fatal`."""
    backoff = FIRST_BACKOFF
    last_error: str | None = None
    while not stop.is_set():
        health.running(name)
        try:
            await work(stop)
        except fatal:
            health.stopped(name)
            raise
        except Exception as error:
            what = f"{type(error).__name__}: {short_reason(error)}"
            if what != last_error:
                log.exception("%s failed; starting it again in %.0f s", name, backoff)
            else:
                log.warning("%s failed again (%s); next try in %.0f s", name, what, backoff)
            last_error = what
            health.failing(name, what)
            await until_stopped(clock.sleep(backoff), stop)
            backoff = min(backoff * 2, LONGEST_BACKOFF)
            continue
        if not stop.is_set():  # a task that ends by itself has nothing left to do
            break
    health.stopped(name)


async def until_stopped(work: Awaitable[T], stop: asyncio.Event) -> asyncio.Future[T] | None:
    """`work`, finished; or None, and `work` cancelled, if `stop` is set first."""
    running = asyncio.ensure_future(work)
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if running.done():
        return running
    running.cancel()
    return None
