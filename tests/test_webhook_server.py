"""The webhook server under slow and idle connections (loopback only, bounded in count and
time): a real signed webhook is still answered at once, the log stays short and the memory
flat, with the process held to the usual file limit of 1,024."""

from __future__ import annotations

import asyncio
import json
import resource
import time
from pathlib import Path

import pytest

from bot.program import Program
from handlers import connection_guard
from handlers.whatsapp.standin import FakeGraph
from tests.conftest import FakeClock
from tests.processes import WHATSAPP_READY, bot_process
from tests.test_whatsapp import running, whatsapp_environment

IDLE = 1_100
SLOW = 800
FILE_LIMIT = 1_024
_SLOW_BODY = (
    b"POST /whatsapp HTTP/1.1\r\nHost: shop\r\nContent-Type: application/json\r\n"
    b'X-Hub-Signature-256: sha256=00\r\nContent-Length: 200000\r\n\r\n{"entry": ['
)


async def _connect_many(
    host: str, port: int, count: int, first_bytes: bytes
) -> list[asyncio.StreamWriter]:
    held = []
    for _ in range(count):
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            continue  # the server closed it at once: at its cap, with nobody to evict
        if first_bytes:
            writer.write(first_bytes)
        held.append(writer)
    return held


def _resident_megabytes(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def test_slow_and_idle_connections_keep_no_real_webhook_out(
    graph: FakeGraph, tmp_path: Path
) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8_192)), hard))
    env = whatsapp_environment(graph, tmp_path / "bot.db")
    host, port = env["WEBHOOK_LISTEN"].rsplit(":", 1)
    log: list[str] = []
    held: list[asyncio.StreamWriter] = []
    async with bot_process(env, tmp_path, log, [WHATSAPP_READY]) as process:
        resource.prlimit(process.pid, resource.RLIMIT_NOFILE, (FILE_LIMIT, FILE_LIMIT))
        lines_before = len(log)
        try:
            held += await _connect_many(host, int(port), IDLE, b"")
            held += await _connect_many(host, int(port), SLOW, _SLOW_BODY)
            ana = graph.person("34612345697", "Ana")
            body = ana.webhook({"id": "wamid.REAL", "type": "text", "text": {"body": "hola"}})
            began = time.monotonic()
            status = await graph.post_webhook(json.dumps(body).encode())
            answered_in = time.monotonic() - began
            await ana.receive_containing("llamas")
            memory = _resident_megabytes(process.pid)
        finally:
            for writer in held:
                writer.close()
        print(f"answered in {answered_in * 1000:.0f} ms with {memory:.0f} MB resident")
        assert status == 200 and answered_in < 1.0
        assert memory < 200
        # Lines that say something went wrong (the start-up's own INFO lines go on meanwhile).
        alarms = [line for line in log[lines_before:] if " INFO " not in line]
        assert len(alarms) < 100, alarms[:5]


async def test_a_request_that_trickles_in_is_cut_at_its_deadline(
    graph: FakeGraph,
    clock: FakeClock,
    program: Program,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Headers or a body still arriving READ_SECONDS after the request's first byte: the
    connection is closed (the deadline shortened here to keep the test quick)."""
    monkeypatch.setattr(connection_guard, "READ_SECONDS", 0.2)
    async with running(graph, clock, program, tmp_path / "bot.db") as bot:
        host, port = bot.settings.webhook_listen.rsplit(":", 1)
        for first_bytes in (b"POST /whatsapp HTTP/1.1\r\nHost: sh", _SLOW_BODY):
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(first_bytes)
            async with asyncio.timeout(5):
                assert await reader.read() == b""  # closed by the server
            writer.close()
