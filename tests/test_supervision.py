"""The process and its workers: each channel starts on its own, signals are honoured in every
state, a failed write is logged and the worker goes on, and GET /healthz tells the truth."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from bench.common import free_port
from bot.program import Program
from bot.timetable import DISPATCH_EVERY_SECONDS
from handlers.telegram.standin import FakeTelegram
from handlers.whatsapp.standin import FakeGraph
from tests.conftest import SECRET, FakeClock, set_writable
from tests.flows import register
from tests.processes import (
    TELEGRAM_READY,
    WHATSAPP_READY,
    bot_process,
    problems,
    run_command,
    telegram_environment,
)
from tests.test_whatsapp import WhatsAppBot, join, running, whatsapp_environment

STOPS_WITHIN = 5.0


async def _health(listen: str) -> tuple[int, dict[str, object]]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://{listen}/healthz") as answer,
    ):
        return answer.status, json.loads(await answer.text())


async def _stopped_by(process: asyncio.subprocess.Process, sent: signal.Signals) -> float:
    """Seconds from the signal to the end of the process, which must exit 0."""
    began = time.monotonic()
    process.send_signal(sent)
    async with asyncio.timeout(30):
        code = await process.wait()
    assert code == 0
    return time.monotonic() - began


async def test_telegram_unreachable_at_start_silences_nothing_and_sigterm_ends_it(
    tmp_path: Path,
) -> None:
    """Telegram refusing connections: WhatsApp serves regardless, /healthz says which channel
    is down, and SIGTERM ends the process at once, with exit code 0."""
    graph = FakeGraph(SECRET)
    await graph.start()
    nobody = free_port()
    env = whatsapp_environment(
        graph,
        tmp_path / "bot.db",
        BOT_TOKEN="123456:DOWN",
        TELEGRAM_API_URL=f"http://127.0.0.1:{nobody}",
        POLLING_TIMEOUT="1",
    )
    log: list[str] = []
    try:
        began = time.monotonic()
        async with bot_process(env, tmp_path, log, [WHATSAPP_READY]) as process:
            serving_after = time.monotonic() - began
            ana = graph.person("34612345601", "Ana")
            await ana.send("hola")
            await ana.receive_containing("llamas")
            status, report = await _health(env["WEBHOOK_LISTEN"])
            assert status == 503
            tasks = report["tasks"]
            assert isinstance(tasks, dict)
            assert tasks["whatsapp"]["alive"] and not tasks["telegram"]["alive"]
            assert any("Telegram cannot be reached" in line for line in log)
            assert await _stopped_by(process, signal.SIGTERM) < STOPS_WITHIN
    finally:
        await graph.stop()
    print(f"WhatsApp served {serving_after:.2f} s after the process started")
    assert serving_after < 5.0  # the interpreter and its imports take most of it
    assert problems(log) == []


async def test_ctrl_c_during_a_long_poll_ends_the_process_at_once(
    api: FakeTelegram, tmp_path: Path
) -> None:
    env = telegram_environment(api.url, tmp_path / "bot.db", POLLING_TIMEOUT="50")
    log: list[str] = []
    async with bot_process(env, tmp_path, log, [TELEGRAM_READY]) as process:
        customer = api.user(44, "Eva", "es")
        await customer.send("/help")
        await customer.receive()  # the next long poll starts now
        status, report = await _health(env["WEBHOOK_LISTEN"])
        assert status == 200 and report["alive"] is True
        assert await run_command(env, tmp_path, [], "health") == 0  # Docker's healthcheck
        assert await _stopped_by(process, signal.SIGINT) < STOPS_WITHIN
    assert await run_command(env, tmp_path, [], "health") == 1
    assert problems(log) == []


@pytest.fixture
async def whatsapp_bot(
    graph: FakeGraph, clock: FakeClock, program: Program, tmp_path: Path
) -> AsyncIterator[WhatsAppBot]:
    async with running(graph, clock, program, tmp_path / "whatsapp.db") as started:
        yield started


async def _eventually(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """For state no stand-in call announces (a task's health): looked at every 10 ms."""
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


@pytest.mark.sqlite_only
async def test_a_failed_write_is_logged_once_and_the_whatsapp_worker_goes_on(
    whatsapp_bot: WhatsAppBot, caplog: pytest.LogCaptureFixture
) -> None:
    """The database stops taking writes while a message that changes nothing (a balance) is
    being answered, so the worker cannot mark it handled. The worker logs that once with its
    traceback, tries again, and goes on once writes are back: the message is not answered
    twice, the next one is answered."""
    graph = whatsapp_bot.graph
    ana = graph.person("34612345602", "Ana")
    await join(ana)
    graph.hold = lambda call: call.to == ana.wa_id
    await ana.send("saldo")
    await _eventually(lambda: graph.holding > 0)
    await set_writable(whatsapp_bot.services.database, False)
    graph.hold = None
    graph.release()
    await ana.receive_containing("punto")
    health = whatsapp_bot.services.health
    await _eventually(lambda: health.tasks["whatsapp"].state == "failing")
    await set_writable(whatsapp_bot.services.database, True)
    await ana.send("premios")
    await ana.receive_containing("botella", timeout=30)
    balances = [call for call in graph.calls if call.to == ana.wa_id and "Nivel:" in call.text]
    assert len(balances) == 1  # once
    errors = [record for record in caplog.records if record.levelname == "ERROR"]
    assert len(errors) == 1 and errors[0].exc_info is not None


@pytest.mark.sqlite_only
async def test_healthz_says_alive_and_turns_503_when_the_database_takes_no_writes(
    whatsapp_bot: WhatsAppBot,
) -> None:
    listen = whatsapp_bot.settings.webhook_listen
    status, report = await _health(listen)
    assert status == 200
    assert report["database"] == {"writable": True}
    assert report["outbox"] == {"pending": 0, "oldest_pending_seconds": 0}
    await set_writable(whatsapp_bot.services.database, False)
    status, report = await _health(listen)
    assert status == 503 and report["alive"] is False
    database = report["database"]
    assert isinstance(database, dict) and database["writable"] is False
    await set_writable(whatsapp_bot.services.database, True)
    assert (await _health(listen))[0] == 200


def _a_zone_where_it_is_midday() -> str:
    """Outside the sample program's quiet hours (21-9) whenever the suite runs."""
    ahead = 12 - datetime.now(UTC).hour  # hours ahead of UTC: Etc/GMT names them reversed
    return "Etc/GMT" if ahead == 0 else f"Etc/GMT{'-' if ahead > 0 else '+'}{abs(ahead)}"


async def test_a_campaign_starts_as_soon_as_the_owner_confirms_it(
    api: FakeTelegram, tmp_path: Path
) -> None:
    """The commit that queues a campaign wakes the dispatcher: no waiting for its next tick."""
    env = telegram_environment(api.url, tmp_path / "bot.db", TIMEZONE=_a_zone_where_it_is_midday())
    async with bot_process(env, tmp_path, [], [TELEGRAM_READY]):
        ana = api.user(601, "Ana", "es")
        await register(ana)
        owner = api.user(1, "Dueña", "es")
        await owner.send("/broadcast")
        await owner.receive_containing("Nueva campaña")
        await owner.send("¡Llega el vino nuevo!")
        await owner.press(await owner.receive_containing("¿Quién lo recibe?"), "Todos")
        await owner.press(await owner.receive_containing("cupón de descuento"), "Sin cupón")
        preview = await owner.receive_containing("Lo recibir")
        await owner.press(preview, "Enviar")
        await owner.receive_containing("En marcha")
        began = time.monotonic()
        await ana.receive_containing("vino nuevo", timeout=DISPATCH_EVERY_SECONDS)
    waited = time.monotonic() - began
    print(f"the campaign reached its customer {waited:.2f} s after the owner's tap")
    assert waited < DISPATCH_EVERY_SECONDS / 6


@pytest.mark.sqlite_only
async def test_a_start_whose_catch_up_cannot_write_still_serves(
    whatsapp_bot: WhatsAppBot, caplog: pytest.LogCaptureFixture
) -> None:
    """The disk fills while the day's jobs catch up at start: each failure is logged, the
    start goes on, and the bot answers once there is room again."""
    await set_writable(whatsapp_bot.services.database, False)
    await whatsapp_bot.services.jobs.catch_up()  # raises nothing
    await set_writable(whatsapp_bot.services.database, True)
    failed = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert "could not mark the pushes a crash interrupted; trying at the next run" in failed
    assert any("could not catch up at start" in line for line in failed)
    ana = whatsapp_bot.graph.person("34612345603", "Ana")
    await ana.send("hola")
    await ana.receive_containing("llamas")
