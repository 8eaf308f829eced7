"""WhatsApp throughput: a burst of signed webhooks, each a member typing `saldo`, against the
real bot process and, in the same run, a bare pywa echo bot (the floor) on the same webhook
stack and Graph API stand-in. Prints messages a second from the first webhook to the last
reply, the ratio to the floor, and the time to acknowledge a webhook (Meta's 200) at half the
floor's rate.

    .venv/bin/python -m bench.whatsapp [--members N]

Targets: `saldo` at least 80% of the floor's rate; p99 acknowledgement under 50 ms at half
the floor's rate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

from bench.common import ROOT, describe_ms, free_port, show
from bench.dataset import build, customer_user_id, fixed_now
from handlers.whatsapp.standin import FakeGraph, GraphCall, WhatsAppPerson

SECRET = "0123456789abcdef0123456789abcdef"
VERIFY = "bench-verify-token"
IN_FLIGHT = 64  # webhooks Meta has open at once
REPLY_TIMEOUT = 120.0


@asynccontextmanager
async def process(module: str, graph: FakeGraph, database: Path) -> AsyncIterator[None]:
    """`python -m <module>` with WhatsApp only, ready once its webhook listens."""
    port = free_port()
    env = {
        **os.environ,
        "BOT_TOKEN": "",
        "WHATSAPP_TOKEN": "EAAbench",
        "WHATSAPP_PHONE_NUMBER_ID": "1001",
        "WHATSAPP_BUSINESS_NUMBER": "593991110000",
        "WHATSAPP_APP_SECRET": SECRET,
        "WHATSAPP_VERIFY_TOKEN": VERIFY,
        "WHATSAPP_API_URL": graph.url,
        "WEBHOOK_LISTEN": f"127.0.0.1:{port}",
        "DATABASE_PATH": str(database),
        "FLOOD_BURST": "1000",
    }
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", module, cwd=ROOT, env=env, stderr=asyncio.subprocess.DEVNULL
    )
    graph.webhook_url = f"http://127.0.0.1:{port}/whatsapp"
    try:
        await _listening(graph.webhook_url)
        yield
    finally:
        child.terminate()
        await child.wait()


async def _listening(url: str) -> None:
    """Wait until the webhook answers Meta's verification call."""
    query = {"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "1"}
    async with aiohttp.ClientSession() as session, asyncio.timeout(60):
        while True:
            try:
                async with session.get(url, params=query) as answer:
                    if answer.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.05)  # a process starting: nothing to be told by


def _bodies(people: list[WhatsAppPerson], round_: str) -> list[bytes]:
    return [
        json.dumps(
            person.webhook(
                {"id": f"wamid.{round_}.{person.wa_id}", "type": "text", "text": {"body": "saldo"}}
            )
        ).encode()
        for person in people
    ]


async def burst(graph: FakeGraph, people: list[WhatsAppPerson], round_: str) -> float:
    """Every member's `saldo` posted, IN_FLIGHT at a time: replies a second until the last."""
    waiting = {person.wa_id for person in people}
    done = asyncio.Event()

    def replied(call: GraphCall) -> None:
        waiting.discard(call.to or "")
        if not waiting:
            done.set()

    graph.on_record = replied
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def post(body: bytes) -> None:
        async with gate:
            assert await graph.post_webhook(body) == 200

    started = time.perf_counter()
    await asyncio.gather(*(post(body) for body in _bodies(people, round_)))
    await asyncio.wait_for(done.wait(), REPLY_TIMEOUT)
    graph.on_record = None
    return len(people) / (time.perf_counter() - started)


async def acknowledgements(
    graph: FakeGraph, people: list[WhatsAppPerson], rate: float
) -> list[float]:
    """Seconds from each webhook's POST to its 200, posted at `rate` a second."""
    seconds: list[float] = []

    async def post(body: bytes) -> None:
        started = time.perf_counter()
        assert await graph.post_webhook(body) == 200
        seconds.append(time.perf_counter() - started)

    posts = []
    for body in _bodies(people, "paced"):
        posts.append(asyncio.create_task(post(body)))
        await asyncio.sleep(1 / rate)
    await asyncio.gather(*posts)
    return seconds


async def run(members: int) -> None:
    print(f"whatsapp: {members} members typing saldo")
    with tempfile.TemporaryDirectory(prefix="loyalty-bench-") as folder:
        database = Path(folder) / "whatsapp.db"
        await asyncio.to_thread(build, database, members, 0, fixed_now())
        with sqlite3.connect(database) as connection:  # the dataset's members, on WhatsApp
            for table in ("customers", "customer_identities"):
                connection.execute(f"UPDATE {table} SET channel = 'whatsapp'")
        graph = FakeGraph(SECRET)
        await graph.start()
        try:
            # pywa reads the business-scoped user id Meta now sends with every contact; the
            # dataset's members are keyed on theirs (here the same digits as their number).
            people = [
                graph.person(str(customer_user_id(n)), user_id=str(customer_user_id(n)))
                for n in range(1, members + 1)
            ]
            async with process("bench.whatsapp_echo", graph, Path(folder) / "echo.db"):
                floor = max([await burst(graph, people, f"floor{n}") for n in range(2)])
            show("echo floor (pywa)", f"{floor:.0f} messages/s")
            async with process("bench.bot_process", graph, database):
                rate = max([await burst(graph, people, f"bot{n}") for n in range(2)])
                show("saldo burst", f"{rate:.0f} messages/s")
                show("  ratio to the echo floor", f"{rate / floor:.0%} (target at least 80%)")
                acked = await acknowledgements(graph, people, floor / 2)
                show(
                    f"acknowledging a webhook at {floor / 2:.0f}/s",
                    f"{describe_ms(acked)} (target p99 < 50 ms)",
                )
        finally:
            await graph.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=1000)
    asyncio.run(run(parser.parse_args().members))


if __name__ == "__main__":
    main()
