"""Conversation throughput: customers asking for /balance and staff recording sales, fed as
fast as the stand-in can, against the real bot process and, in the same run, a bare echo bot
(the floor). Prints updates a second, p50/p99 latency from update to reply, and the ratios.

    .venv/bin/python -m bench.throughput [--customers N] [--sales N]

Targets: /balance at least 70% of the echo floor's throughput, sales at least 50%, and /balance
p99 under 50 ms at half the floor's rate. The floor is PTB as installed (its httpx client); a
second echo bot on the loyalty bot's own client (aiohttp) shows what the handlers alone cost.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from bench.common import Latencies, bot_process, describe_ms, show, standin
from bench.dataset import build, clerk_user_id, customer_user_id, fixed_now, member_code
from handlers.telegram.standin import ApiCall, ChatUser, FakeTelegram

REPLY_TIMEOUT = 120.0
TAPPERS = 500


async def burst(
    api: FakeTelegram,
    senders: list[ChatUser],
    send: Callable[[ChatUser], Awaitable[object]],
    wanted: Callable[[ApiCall], bool],
    pace: float = 0.0,
) -> tuple[float, list[float]]:
    """Each sender sends once (all at once, or `pace` seconds apart); (updates a second,
    latencies) once every sender has had its reply."""
    latencies = Latencies(expected=len(senders))
    api.on_record = latencies.watcher(wanted)
    started = time.perf_counter()
    for sender in senders:
        latencies.mark(sender.id)
        await send(sender)
        if pace:
            await asyncio.sleep(pace)
    await asyncio.wait_for(latencies.answered.wait(), REPLY_TIMEOUT)
    elapsed = time.perf_counter() - started
    api.on_record = None
    return len(senders) / elapsed, latencies.seconds


def _to(chat_id: int) -> Callable[[ApiCall], bool]:
    return lambda call: call.chat_id == chat_id


def message_to_sender(call: ApiCall) -> bool:
    return call.method == "sendMessage"


@dataclass(frozen=True)
class Floor:
    messages: float
    taps: float

    @property
    def sales(self) -> float:
        """A sale is a typed message and a tap: the floor's rate for the pair."""
        return 2 / (1 / self.messages + 1 / self.taps)


async def echo_floor(api: FakeTelegram, count: int, client: str) -> Floor:
    """The bare echo bot's rates for messages and button taps, each the best of two bursts."""
    async with bot_process(api, "bench.echo_bot", ECHO_CLIENT=client):
        people = [api.user(500_000 + n, "Echo", "es") for n in range(count)]
        rate, latency = await best_of(
            lambda: burst(api, people, lambda user: user.send("/balance"), message_to_sender)
        )
        show(f"echo floor ({client}): messages", f"{rate:.0f} updates/s, {describe_ms(latency)}")
        tappers = people[:TAPPERS]
        asked = {user.id: (await api.wait_for(_to(user.id)))[1] for user in tappers}
        taps, latency = await best_of(
            lambda: burst(
                api, tappers, lambda user: user.press_data(asked[user.id], "tap"), message_to_sender
            )
        )
        show(f"echo floor ({client}): button taps", f"{taps:.0f} updates/s, {describe_ms(latency)}")
        return Floor(rate, taps)


async def best_of(
    run: Callable[[], Awaitable[tuple[float, list[float]]]], runs: int = 2
) -> tuple[float, list[float]]:
    """The fastest of a few runs: on a shared machine the slower ones measure the neighbours."""
    results = [await run() for _ in range(runs)]
    return max(results, key=lambda result: result[0])


async def loyalty(
    api: FakeTelegram, database: Path, customers: int, sales: int, floors: dict[str, Floor]
) -> None:
    floor, same_client = floors["httpx"], floors["aiohttp"]
    async with bot_process(api, "bench.bot_process", database):
        people = [api.user(customer_user_id(n), "Cliente", "es") for n in range(1, customers + 1)]
        rate, latency = await best_of(
            lambda: burst(api, people, lambda user: user.send("/balance"), message_to_sender)
        )
        show("/balance burst", f"{rate:.0f} updates/s, {describe_ms(latency)}")
        show("  ratio to the echo floor", f"{rate / floor.messages:.0%} (target at least 70%)")
        show("  ratio to the echo floor on aiohttp", f"{rate / same_client.messages:.0%}")
        paced_rate = floor.messages / 2
        _, latency = await burst(
            api,
            people[: min(customers, int(paced_rate * 5))],
            lambda user: user.send("/balance"),
            message_to_sender,
            pace=1 / paced_rate,
        )
        show(
            f"/balance at {paced_rate:.0f}/s (half the floor)",
            f"{describe_ms(latency)} (target p99 < 50 ms)",
        )

        # Two rounds with different clerks (a pending sale is confirmed once); the better one
        # counts, as for every burst here.
        rounds = [
            await sales_round(api, range(1 + round_ * sales, 1 + (round_ + 1) * sales))
            for round_ in range(2)
        ]
        best = max(rounds, key=lambda result: result.rate)
        show(
            "/sale typed (answered with a confirm button)",
            f"{best.typed:.0f} updates/s, {describe_ms(best.typed_latency)}",
        )
        show(
            "sale confirmed (prompt edited into the receipt)",
            f"{best.recorded:.0f} updates/s, {describe_ms(best.recorded_latency)}",
        )
        show(
            "  sales, both steps, ratio to the floor",
            f"{best.rate / floor.sales:.0%} (target at least 50%)",
        )
        show("  sales, ratio to the echo floor on aiohttp", f"{best.rate / same_client.sales:.0%}")


@dataclass(frozen=True)
class SalesRound:
    typed: float
    typed_latency: list[float]
    recorded: float
    recorded_latency: list[float]

    @property
    def rate(self) -> float:
        """Sales a second, both steps: the harmonic mean, as for the floor's pair."""
        return 2 / (1 / self.typed + 1 / self.recorded)


async def sales_round(api: FakeTelegram, numbers: range) -> SalesRound:
    """Each clerk types a sale for the customer with their number, then confirms it."""
    clerks = [api.user(clerk_user_id(n), "Clerk", "es") for n in numbers]
    typed, typed_latency = await burst(
        api,
        clerks,
        lambda clerk: clerk.send(f"/sale {member_code(clerk.id - clerk_user_id(0))} 12,50 1"),
        message_to_sender,
    )
    confirmations = {clerk.id: await clerk.receive_with_button("sale:ok:") for clerk in clerks}
    recorded, recorded_latency = await burst(
        api,
        clerks,
        lambda clerk: clerk.press(confirmations[clerk.id], "✅"),
        lambda call: call.method == "editMessageText" and "#" in call.text,
    )
    return SalesRound(typed, typed_latency, recorded, recorded_latency)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--sales", type=int, default=500)
    arguments = parser.parse_args()
    if arguments.customers < 2 * arguments.sales:
        parser.error("--customers must be at least twice --sales: two rounds, a customer a sale")
    with tempfile.TemporaryDirectory(prefix="loyalty-bench-") as folder:
        database = Path(folder) / "throughput.db"
        await asyncio.to_thread(
            build,
            database,
            arguments.customers,
            arguments.customers * 10,
            fixed_now(),
            clerks=2 * arguments.sales,
        )
        print(
            f"throughput: {arguments.customers:,} customers, {arguments.sales:,} sales", flush=True
        )
        async with standin() as api:
            floors = {
                client: await echo_floor(api, arguments.customers, client)
                for client in ("httpx", "aiohttp")
            }
            await loyalty(api, database, arguments.customers, arguments.sales, floors)


if __name__ == "__main__":
    asyncio.run(main())
