"""The bot's one HTTP server, on `WEBHOOK_LISTEN`: `GET /healthz` whatever channels run, and
the webhook routes of the channels that take webhooks (WhatsApp's `/whatsapp`)."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager, closing
from typing import Any

from aiohttp import web

from bot.bootstrap import Services, health_report
from bot.errors import ConfigError
from handlers.connection_guard import ACCEPT_ERRORS, ConnectionGuard, connection_cap

log = logging.getLogger(__name__)

HEALTH_PATH = "/healthz"
# Meta's webhooks are a few KiB; nothing larger is read (aiohttp answers 413).
LARGEST_BODY = 256 * 1024
# A load balancer keeps a connection open about a minute; aiohttp's default is an hour.
KEEP_ALIVE_SECONDS = 75.0


@asynccontextmanager
async def serving_http(
    services: Services, routes: Iterable[web.RouteDef] = ()
) -> AsyncIterator[None]:
    """Served until the block ends. A port that cannot be had stops a bot whose channel needs
    webhooks; a Telegram-only bot goes on without /healthz, and says so."""
    routes = list(routes)

    async def healthz(_: web.Request) -> web.Response:
        alive, report = await health_report(services)
        return web.json_response({"alive": alive, **report}, status=200 if alive else 503)

    def protocol() -> Any:
        assert runner.server is not None
        return runner.server()

    guard = ConnectionGuard(protocol, connection_cap)
    app = web.Application(client_max_size=LARGEST_BODY, middlewares=[guard.middleware])
    app.add_routes([web.get(HEALTH_PATH, healthz), *routes])
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=KEEP_ALIVE_SECONDS)
    await runner.setup()
    logging.getLogger("asyncio").addFilter(ACCEPT_ERRORS)
    host, port = services.settings.listen_host_port
    listening: asyncio.Server | None = None
    try:
        try:
            listening = await asyncio.get_running_loop().create_server(
                guard, host, port, reuse_address=True
            )
        except OSError as error:
            problem = (
                f"WEBHOOK_LISTEN {services.settings.webhook_listen}: cannot listen there"
                f" ({error.strerror or error})"
            )
            if routes:
                raise ConfigError(f"{problem}; pick a free port") from error
            log.warning("%s; %s is off until a free port is set", problem, HEALTH_PATH)
            yield
            return
        log.info("HTTP server listening on %s (%s)", services.settings.webhook_listen, HEALTH_PATH)
        yield
    finally:
        if listening is not None:
            listening.close()  # no new connections; aiohttp ends the open ones below
        await runner.cleanup()


def free_port() -> int:
    """A loopback port nobody listens on now (for a server `try` runs in its own process)."""
    with closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
