"""Telegram by webhook (several processes): an update is in the inbox before Telegram gets its
200, a forged post is refused, and an update posted twice is answered once; on both engines."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import ClientSession

from bot.program import Program
from bot.storage.inbox import InboxRepository
from handlers.http_server import free_port, serving_http
from handlers.telegram.app import build_application
from handlers.telegram.context import BotApplication, services_of
from handlers.telegram.standin import FakeTelegram
from handlers.telegram.webhook import SECRET_HEADER, webhook_route
from tests.conftest import FakeClock, running, settings_for
from tests.postgres import ENGINES

SECRET = "s3cret-of-the-webhook-0123456789"


@pytest.fixture(params=ENGINES)
async def on_webhook(
    request: pytest.FixtureRequest,
    api: FakeTelegram,
    clock: FakeClock,
    program: Program,
    tmp_path: Path,
) -> AsyncIterator[tuple[BotApplication, str]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram"
    engine = (
        {"database_url": request.getfixturevalue("postgresql_url")}
        if request.param == "postgresql"
        else {}
    )
    settings = settings_for(
        api,
        tmp_path / "bot.db",
        telegram_webhook_url=url,
        telegram_webhook_secret=SECRET,
        webhook_listen=f"127.0.0.1:{port}",
        **engine,
    )
    application = build_application(settings, program, clock, background=False)
    async with running(application):
        services = services_of(application)
        async with serving_http(services, [webhook_route(application, url, SECRET)]):
            yield application, url


async def _recorded(application: BotApplication) -> int:
    async with services_of(application).database.reading() as tx:
        return len(await InboxRepository(tx).unhandled("telegram", 0, 1000)) + len(
            await tx.fetch_all("SELECT id FROM inbox WHERE handled_at IS NOT NULL")
        )


async def test_updates_come_by_webhook_and_are_answered(
    on_webhook: tuple[BotApplication, str], api: FakeTelegram
) -> None:
    _, url = on_webhook
    [registered] = api.calls_to("setWebhook")
    assert registered.params["url"] == url
    assert registered.params["secret_token"] == SECRET
    assert "message" in json.loads(registered.params["allowed_updates"])
    assert registered.params.get("drop_pending_updates") in (None, "False", "false")
    ana = api.user(501, "Ana")
    update = await ana.send("/start")
    assert "Bodega" in await ana.receive_text()
    await api.handled(update)
    assert all(status == 200 for status, _ in api.webhook_answers)
    # Polling would now be refused, as Telegram refuses it while a webhook is set.
    assert api.calls_to("getUpdates") == []


async def test_a_forged_post_is_refused_and_a_repeated_update_is_answered_once(
    on_webhook: tuple[BotApplication, str], api: FakeTelegram
) -> None:
    application, url = on_webhook
    ana = api.user(502, "Ana")
    update = await ana.send("/help")
    await ana.receive_text()
    await api.handled(update)
    before = await _recorded(application)
    forged = {**update, "update_id": 9999}
    async with ClientSession() as session:
        async with session.post(url, json=forged, headers={SECRET_HEADER: "guess"}) as answer:
            assert answer.status == 401
        async with session.post(url, json=forged) as answer:
            assert answer.status == 401
        for _ in range(2):  # Telegram's retry of an update it thinks was lost
            async with session.post(url, json=update, headers={SECRET_HEADER: SECRET}) as answer:
                assert answer.status == 200
        for wrong in (b"not json", b"[1]", b'{"update_id": "1"}', b'{"message": {}}'):
            async with session.post(url, data=wrong, headers={SECRET_HEADER: SECRET}) as answer:
                assert answer.status == 400
    assert await _recorded(application) == before
    replies = [call for call in api.calls_to("sendMessage") if call.chat_id == 502]
    assert len(replies) == 1
