"""The real `python -m bot` as a separate process, for the drills: started with the settings
a test gives, its log (standard error) kept line by line, ready once it has logged the lines
that say each configured channel is serving, and stopped with SIGTERM at the end."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from bench.common import free_port

ROOT = Path(__file__).resolve().parent.parent
TELEGRAM_READY = "ready for"
WHATSAPP_READY = "WhatsApp webhook listening"
PROBLEMS = (" ERROR ", " CRITICAL ", "Traceback")


def environment(**settings: str) -> dict[str, str]:
    """This machine's environment without any bot setting of its own, plus `settings`."""
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("WHATSAPP_", "TELEGRAM_", "OWNER_", "DATABASE_", "BOT_TOKEN"))
    }
    port = free_port()
    return {**inherited, "PYTHONPATH": str(ROOT), "WEBHOOK_LISTEN": f"127.0.0.1:{port}", **settings}


def telegram_environment(api_url: str, database: Path, **more: str) -> dict[str, str]:
    """`python -m bot` on the Bot API stand-in at `api_url`, the owner's user id 1."""
    settings = {"OWNER_IDS": "1", "POLLING_TIMEOUT": "1", "LIMIT_OUTGOING_RATE": "false"}
    return environment(
        BOT_TOKEN="123456:DRILL",
        TELEGRAM_API_URL=api_url,
        DATABASE_PATH=str(database),
        **{**settings, **more},
    )


@asynccontextmanager
async def bot_process(
    env: dict[str, str], cwd: Path, log: list[str], ready: Sequence[str], *args: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, cwd=cwd, env=env, stderr=asyncio.subprocess.PIPE
    )
    reading = asyncio.create_task(_read(process, log))
    try:
        async with asyncio.timeout(60):
            while not all(any(line_part in line for line in log) for line_part in ready):
                if process.returncode is not None or reading.done():
                    raise AssertionError("the bot ended at start:\n" + "".join(log[-20:]))
                await asyncio.sleep(0.05)
        yield process
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()
        await reading


async def run_command(env: dict[str, str], cwd: Path, log: list[str], *args: str) -> int:
    """`python -m bot ARGS` to its end; its log lines go to `log`."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, cwd=cwd, env=env, stderr=asyncio.subprocess.PIPE
    )
    await _read(process, log)
    return await process.wait()


def problems(log: list[str]) -> list[str]:
    return [line for line in log if any(mark in line for mark in PROBLEMS)]


async def _read(process: asyncio.subprocess.Process, into: list[str]) -> None:
    assert process.stderr is not None
    async for line in process.stderr:
        into.append(line.decode(errors="replace"))
