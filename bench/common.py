"""What every benchmark shares: the stand-in Bot API, bot processes started against it, and
latency bookkeeping. Everything runs on 127.0.0.1 and stops by itself."""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from handlers.http_server import free_port as free_port
from handlers.telegram.standin import ApiCall, FakeTelegram

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "123456:BENCH-TOKEN"
OWNER_ID = 1
READY_TIMEOUT = 60.0


@dataclass
class BotProcess:
    process: asyncio.subprocess.Process

    def memory_kib(self) -> tuple[int, int]:
        """(resident now, peak resident) of the bot process, from /proc."""
        values = {}
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
        return values["VmRSS"], values["VmHWM"]


@asynccontextmanager
async def standin() -> AsyncIterator[FakeTelegram]:
    api = FakeTelegram()
    await api.start()
    try:
        yield api
    finally:
        await api.stop()


@asynccontextmanager
async def bot_process(
    api: FakeTelegram, module: str, database: Path | None = None, **environment: str
) -> AsyncIterator[BotProcess]:
    """`python -m <module>` against the stand-in; ready once it has answered a first message."""
    env = {
        **os.environ,
        "BOT_TOKEN": TOKEN,
        "TELEGRAM_API_URL": api.url,
        "OWNER_IDS": str(OWNER_ID),
        "POLLING_TIMEOUT": "1",
        # Telegram's real limit would cap every bot alike at 30 messages a second; the
        # benchmarks measure the handlers, not the limiter.
        "LIMIT_OUTGOING_RATE": "false",
        "WEBHOOK_LISTEN": f"127.0.0.1:{free_port()}",  # /healthz, on a port of its own
        **environment,
    }
    if database is not None:
        env["DATABASE_PATH"] = str(database)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", module, cwd=ROOT, env=env, stdout=asyncio.subprocess.DEVNULL
    )
    try:
        probe = api.user(999_999, "Probe", "es")
        mark = len(api.calls)
        await probe.send("/help")
        await api.wait_for(lambda call: call.chat_id == probe.id, start=mark, timeout=READY_TIMEOUT)
        yield BotProcess(process)
    finally:
        if process.returncode is None:
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 20)
        except TimeoutError:
            process.kill()
            await process.wait()


@dataclass
class Latencies:
    """Time from an update's push to the bot's first message to that chat after it."""

    sent: dict[int, float] = field(default_factory=dict)
    seconds: list[float] = field(default_factory=list)
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    expected: int = 0

    def watcher(self, wanted: Callable[[ApiCall], bool]) -> Callable[[ApiCall], None]:
        def record(call: ApiCall) -> None:
            chat = call.chat_id
            if chat is not None and chat in self.sent and wanted(call):
                self.seconds.append(time.perf_counter() - self.sent.pop(chat))
                if len(self.seconds) >= self.expected:
                    self.answered.set()

        return record

    def mark(self, chat_id: int) -> None:
        self.sent[chat_id] = time.perf_counter()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def describe_ms(values: list[float]) -> str:
    if not values:
        return "no samples"
    median, p99 = 1000 * statistics.median(values), 1000 * percentile(values, 0.99)
    return f"p50 {median:.1f} ms, p99 {p99:.1f} ms ({len(values)} samples)"


def show(label: str, value: str) -> None:
    print(f"  {label:<44} {value}", flush=True)
