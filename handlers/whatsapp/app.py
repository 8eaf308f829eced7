"""The WhatsApp channel running: pywa's client for sending, our webhook server for receiving,
and the worker that handles what the webhook recorded.

pywa serves webhooks through Starlette or Flask and handles each update in memory; we serve
them with aiohttp (already the bot's HTTP stack) and use pywa's own checks of the verify
token and of the signature, so that each message is written to the database before Meta is
answered 200 (bot/storage/inbox.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from aiohttp import web
from pywa_async.client import WhatsApp

from bot.bootstrap import Services
from bot.config import GRAPH_API_URL, Settings
from bot.inbox import REMEMBERED, InboxWorker
from bot.supervisor import supervise
from handlers.http_server import serving_http
from handlers.whatsapp.channel import WhatsAppChannel
from handlers.whatsapp.conversation import Conversation
from handlers.whatsapp.updates import (
    CHANNEL,
    failures_in,
    messages_in,
    preferences_in,
    sent_since,
)

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/whatsapp"
# Requests to the Graph API at once, the rest waiting their turn: Meta takes about 80 messages
# a second from a number, which 32 cover at 400 ms a request.
CONNECTIONS = 32


@asynccontextmanager
async def sending_whatsapp(services: Services) -> AsyncIterator[WhatsApp]:
    """pywa's client, registered with the core as the channel the outbox sends through."""
    settings = services.settings
    async with graph_session(settings) as session:
        client = whatsapp_client(settings, session)
        assert settings.whatsapp_business_number is not None
        services.channels[CHANNEL] = WhatsAppChannel(
            client, settings.whatsapp_daily_limit, settings.whatsapp_business_number
        )
        try:
            yield client
        finally:
            del services.channels[CHANNEL]


def graph_session(settings: Settings) -> httpx.AsyncClient:
    """The HTTP client pywa sends through, toward `WHATSAPP_API_URL`."""
    transport: httpx.AsyncBaseTransport = _Queued(
        httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=CONNECTIONS)), CONNECTIONS
    )
    if settings.whatsapp_api_url != GRAPH_API_URL:
        transport = _Toward(httpx.URL(settings.whatsapp_api_url), transport)
    return httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(15.0, pool=None))


def whatsapp_client(settings: Settings, session: httpx.AsyncClient) -> WhatsApp:
    """pywa's client on `session` (pywa itself always names Meta's host)."""
    assert settings.whatsapp_token and settings.whatsapp_app_secret
    assert settings.whatsapp_verify_token
    return WhatsApp(
        phone_id=settings.whatsapp_phone_number_id,
        token=settings.whatsapp_token.get_secret_value(),
        session=session,
        verify_token=settings.whatsapp_verify_token.get_secret_value(),
        app_secret=settings.whatsapp_app_secret.get_secret_value(),
        validate_updates=True,
        filter_updates=False,
        skip_duplicate_updates=False,  # ours is by message id, in the database
        webhook_endpoint=WEBHOOK_PATH,
    )


class _Queued(httpx.AsyncBaseTransport):
    """At most `most` requests in httpcore's pool at once; the others wait their turn here.
    httpcore looks over every waiting request each time it hands out a connection: with a
    thousand replies waiting, that took 45% of the bot's time (py-spy, bench.whatsapp)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, most: int) -> None:
        self._inner = inner
        self._turns = asyncio.Semaphore(most)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        async with self._turns:
            response = await self._inner.handle_async_request(request)
            await response.aread()  # the connection goes back to the pool with the turn
            return response

    async def aclose(self) -> None:
        await self._inner.aclose()


class _Toward(httpx.AsyncBaseTransport):
    """Sends every request to `base` (a self-hosted proxy, or the tests' stand-in)."""

    def __init__(self, base: httpx.URL, inner: httpx.AsyncBaseTransport) -> None:
        self._base = base
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(
            scheme=self._base.scheme, host=self._base.host, port=self._base.port
        )
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


class Webhook:
    """GET: Meta's verification. POST: signed by the app secret, or refused and not recorded;
    its messages recorded by id (once, however often Meta sends them), then 200."""

    def __init__(self, client: WhatsApp, services: Services, inbox: InboxWorker) -> None:
        self._client = client
        self._services = services
        self._inbox = inbox

    def routes(self) -> list[web.RouteDef]:
        return [web.get(WEBHOOK_PATH, self.verify), web.post(WEBHOOK_PATH, self.receive)]

    async def verify(self, request: web.Request) -> web.Response:
        challenge, status = await self._client.webhook_challenge_handler(
            request.query.get("hub.verify_token"), request.query.get("hub.challenge")
        )
        return web.Response(text=challenge or "", status=status)

    async def receive(self, request: web.Request) -> web.Response:
        """4xx for what is unsigned or unreadable; 200 for what is signed, whether it is
        understood or not (Meta would only send it again)."""
        body = await request.read()
        signature = request.headers.get("X-Hub-Signature-256")
        if signature is not None and not signature.isascii():
            return web.Response(text="Unauthorized", status=401)
        refused = await self._client.webhook_update_validator(body, signature)
        if refused is not None:
            text, status = refused
            return web.Response(text=text, status=status)
        try:
            update = json.loads(body)
        except (ValueError, RecursionError):  # not JSON, or nested past Python's limit
            return web.Response(text="Bad Request", status=400)
        try:
            messages = messages_in(update) + preferences_in(update)
            failures = failures_in(update)
        except (AttributeError, TypeError, KeyError):
            log.warning("a signed webhook in a shape the bot does not read was ignored")
            return web.Response(text="ok")
        now = self._services.clock.now()
        fresh, stale = sent_since(messages, now - REMEMBERED)
        if stale:
            log.warning(
                "%d messages sent before %s were ignored (a replay)", len(stale), REMEMBERED
            )
        if messages or failures:
            await self._inbox.take_in(fresh, stale, failures)
        return web.Response(text="ok")


@dataclass(frozen=True)
class WhatsAppParts:
    """The channel, ready to serve: its webhook routes for the HTTP server, its inbox worker."""

    routes: list[web.RouteDef]
    worker: InboxWorker

    def start(self, services: Services, stop: asyncio.Event) -> asyncio.Task[None]:
        """The worker, under the supervisor, once the routes are served."""
        log.info(
            "WhatsApp webhook listening on %s%s", services.settings.webhook_listen, WEBHOOK_PATH
        )
        services.health.expect(CHANNEL)
        return asyncio.create_task(
            supervise(CHANNEL, self.worker.run, stop, services.clock, services.health),
            name="whatsapp inbox",
        )


@asynccontextmanager
async def whatsapp_parts(services: Services) -> AsyncIterator[WhatsAppParts]:
    """The channel registered with the core for the outbox, its webhook and its worker."""
    async with sending_whatsapp(services) as client:
        channel = services.channels[CHANNEL]
        assert isinstance(channel, WhatsAppChannel)
        updates = services.incoming(CHANNEL)
        worker = InboxWorker(services, updates, Conversation(services, channel), CHANNEL)
        yield WhatsAppParts(Webhook(client, services, worker).routes(), worker)


@asynccontextmanager
async def serving_whatsapp(services: Services) -> AsyncIterator[None]:
    """The channel alone on `WEBHOOK_LISTEN` (bot.app serves it beside the others)."""
    async with whatsapp_parts(services) as parts, serving_http(services, parts.routes):
        stop = asyncio.Event()
        working = parts.start(services, stop)
        try:
            yield
        finally:
            stop.set()  # what was recorded and not handled waits for the next start
            await working
