"""The webhook server's defence against slow and idle connections.

aiohttp has no cap on connections and no deadline for a request's headers or body: a few
hundred clients that connect and trickle bytes hold a file each until the process runs out
(accept() then fails in a loop) and hold memory for bodies they never finish. Reverse proxies
do this job, but the bot must hold up on its own too. So, around aiohttp's own protocol:

- a cap on open connections, below the process's file limit; at the cap, the oldest connection
  that is not being worked on (idle, or still sending its request) makes way for the new one,
  so a real webhook is served whatever an attacker holds open;
- a deadline of READ_SECONDS for a request's headers and body, from its first byte;
- bodies larger than SMALL_BODY are read a few at a time (memory stays flat);
- the "out of system resource" line asyncio logs on every failed accept(), once a minute.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)

READ_SECONDS = 10.0
SMALL_BODY = 16 * 1024
LARGE_BODIES_AT_ONCE = 8
FILES_KEPT_FOR_THE_REST = 256  # the database, the HTTP clients' pools, logs
MOST_CONNECTIONS = 4096
ACCEPT_ERROR_EVERY_SECONDS = 60.0


def connection_cap() -> int:
    """Connections the server keeps open at most, within RLIMIT_NOFILE."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MOST_CONNECTIONS
    return max(16, min(MOST_CONNECTIONS, soft - FILES_KEPT_FOR_THE_REST))


class _Connection(asyncio.Protocol):
    """aiohttp's protocol for one connection, with its deadline and its place in the queue."""

    def __init__(self, inner: Any, guard: ConnectionGuard) -> None:
        self.inner = inner
        self._guard = guard
        self.transport: asyncio.Transport | None = None
        self.busy = False  # its request is being worked on: never evicted
        self._in_request = False
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._guard.opened(self)
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if not self._in_request:  # the first byte of a request: it has READ_SECONDS
            self._in_request = True
            self._deadline = asyncio.get_running_loop().call_later(READ_SECONDS, self.close)
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        result: bool | None = self.inner.eof_received()
        return result

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        self._guard.closed(self)
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def read(self) -> None:
        """The request was read whole: its work begins."""
        self._cancel_deadline()
        self.busy = True

    def answered(self) -> None:
        self.busy = False
        self._in_request = False
        self._guard.touch(self)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None


class _Refused(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


class ConnectionGuard:
    """The protocol factory handed to the event loop in place of aiohttp's server."""

    def __init__(self, server: Callable[[], Any], most: Callable[[], int]) -> None:
        """`most`: the cap, asked at each connection (the file limit may change, prlimit)."""
        self._server = server
        self._most = most
        self._open: OrderedDict[int, _Connection] = OrderedDict()  # oldest first
        self._by_transport: dict[int, _Connection] = {}
        self._large_bodies = asyncio.Semaphore(LARGE_BODIES_AT_ONCE)

    def __call__(self) -> asyncio.BaseProtocol:
        most = self._most()
        while len(self._open) >= most:
            waiting = next((c for c in self._open.values() if not c.busy), None)
            if waiting is None:
                return _Refused()
            self._forget(waiting)
            waiting.close()
        return _Connection(self._server(), self)

    def opened(self, connection: _Connection) -> None:
        self._open[id(connection)] = connection
        self._by_transport[id(connection.transport)] = connection

    def closed(self, connection: _Connection) -> None:
        self._forget(connection)

    def touch(self, connection: _Connection) -> None:
        """Answered: the youngest in the queue again."""
        if id(connection) in self._open:
            self._open.move_to_end(id(connection))

    def _forget(self, connection: _Connection) -> None:
        self._open.pop(id(connection), None)
        self._by_transport.pop(id(connection.transport), None)

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Reads the body within the deadline (the large ones a few at a time), then marks the
        connection as being worked on until the answer is written."""
        connection = self._by_transport.get(id(request.transport))
        try:
            if (request.content_length or 0) > SMALL_BODY:
                async with self._large_bodies:
                    await request.read()
            else:
                await request.read()  # aiohttp keeps it for the handler
        except ConnectionResetError:  # cut at its deadline, or made way for another
            return web.Response(status=408)
        if connection is not None:
            connection.read()
        try:
            return await handler(request)
        finally:
            if connection is not None:
                connection.answered()


class OncePerMinute(logging.Filter):
    """asyncio logs a failed accept() every time the loop retries it; once a minute is news
    enough (with how many were left out)."""

    def __init__(self) -> None:
        super().__init__()
        self._last = 0.0
        self._left_out = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if "out of system resource" not in record.getMessage():
            return True
        now = time.monotonic()
        if now - self._last < ACCEPT_ERROR_EVERY_SECONDS:
            self._left_out += 1
            return False
        record.msg = f"{record.getMessage()} ({self._left_out} more in the last minute)"
        record.args, record.exc_info = None, None
        self._last, self._left_out = now, 0
        return True


ACCEPT_ERRORS = OncePerMinute()
