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
from datetime import datetime, timedelta

import httpx
from aiohttp import web
from pywa_async.client import WhatsApp

from bot.bootstrap import Services
from bot.config import GRAPH_API_URL, Settings
from bot.domain.models import Identity
from bot.flood import Verdict
from bot.incoming import IncomingUpdates
from bot.storage.inbox import InboxRepository, Received
from bot.storage.outbox import OutboxRepository
from bot.supervisor import supervise
from handlers.http_server import serving_http
from handlers.whatsapp.channel import WhatsAppChannel
from handlers.whatsapp.conversation import Conversation
from handlers.whatsapp.updates import (
    CHANNEL,
    failures_in,
    incoming,
    messages_in,
    preferences_in,
    sent_since,
)

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/whatsapp"
# Meta retries an unacknowledged webhook for up to 7 days: ids are remembered that long, and a
# message that says it was sent longer ago than that is a replay, ignored (its id may be gone).
REMEMBERED = timedelta(days=8)
PRUNE_EVERY = timedelta(days=1)
BATCH = 100
CONNECTIONS = 64  # a burst of replies waits for a connection instead of failing


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
    transport: httpx.AsyncBaseTransport = httpx.AsyncHTTPTransport(
        limits=httpx.Limits(max_connections=CONNECTIONS)
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

    def __init__(self, client: WhatsApp, services: Services, recorded: asyncio.Event) -> None:
        self._client = client
        self._services = services
        self._recorded = recorded

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
            async with self._services.database.transaction() as tx:
                inbox = InboxRepository(tx)
                await inbox.record(CHANNEL, fresh, now)
                await inbox.record(CHANNEL, stale, now, ignored=True)
                outbox = OutboxRepository(tx)
                for message_id, reason in failures:  # never tried again as free text
                    await outbox.failed_later(message_id, reason)
        if fresh:
            self._recorded.set()
        return web.Response(text="ok")


class InboxWorker:
    """Handles what the webhook recorded: each person's messages in order, different people's
    side by side; after a crash, what was recorded and not handled, once."""

    def __init__(
        self, services: Services, updates: IncomingUpdates, conversation: Conversation
    ) -> None:
        self._services = services
        self._updates = updates
        self._conversation = conversation
        self.recorded = asyncio.Event()
        self._pruned_at: datetime | None = None
        self._answered_unmarked: set[int] = set()

    async def run(self, stop: asyncio.Event) -> None:
        after = 0
        while not stop.is_set():
            self.recorded.clear()
            await self._prune_now_and_then()
            async with self._services.database.reading() as tx:
                batch = await InboxRepository(tx).unhandled(CHANNEL, after, BATCH)
            if not batch:
                stopping = asyncio.ensure_future(stop.wait())
                arriving = asyncio.ensure_future(self.recorded.wait())
                await asyncio.wait({stopping, arriving}, return_when=asyncio.FIRST_COMPLETED)
                stopping.cancel()
                arriving.cancel()
                continue
            by_person: dict[str, list[Received]] = {}
            for received in batch:
                by_person.setdefault(received.person, []).append(received)
            await asyncio.gather(*(self._in_order(own) for own in by_person.values()))
            after = batch[-1].id

    async def _prune_now_and_then(self) -> None:
        now = self._services.clock.now()
        if self._pruned_at is not None and now - self._pruned_at < PRUNE_EVERY:
            return
        async with self._services.database.transaction() as tx:
            await InboxRepository(tx).forget_before(now - REMEMBERED)
        self._pruned_at = now

    async def _in_order(self, own: list[Received]) -> None:
        for received in own:
            # Past the person's allowance (FLOOD_BURST): told to slow down once, the rest of
            # the flood recorded as handled unread, so one person cannot hold up the others.
            flood = self._services.flood
            message = incoming(received)
            ids = [Identity(CHANNEL, received.person)]
            if message.phone:  # an owner known by a business-scoped id, named by number
                ids.append(Identity(CHANNEL, message.phone.lstrip("+")))
            team = await self._services.staff.in_team(*ids)
            verdict = flood.judge(
                f"{CHANNEL}:{received.person}", received.id, message.sent_at, exempt=team
            )
            flood.take_warning(received.id)  # ours, not an id Telegram's poller may see
            answered = received.id in self._answered_unmarked
            if (
                not answered
                and verdict is not Verdict.DROP
                and await self._updates.is_new(received.id)
            ):
                try:
                    async with self._updates.handling(received.id):
                        if verdict is Verdict.WARN:
                            await self._conversation.slow_down(message)
                        else:
                            await self._conversation.handle(message)
                except Exception:
                    log.exception("WhatsApp message %s could not be handled", received.id)
            # Should this write fail, the supervisor starts the worker again: the message, then
            # read again, is only marked, not answered a second time.
            self._answered_unmarked.add(received.id)
            async with self._services.database.single_write() as tx:
                await InboxRepository(tx).mark_handled(received.id, self._services.clock.now())
            self._answered_unmarked.discard(received.id)


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
        updates = services.incoming(CHANNEL, ids_only_grow=True)
        await updates.open()
        worker = InboxWorker(services, updates, Conversation(services, channel))
        yield WhatsAppParts(Webhook(client, services, worker.recorded).routes(), worker)


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
