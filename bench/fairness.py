"""Fairness: one customer floods the bot with /card while other customers ask for /balance.
Prints the others' latency from update to reply, for the real bot process (the outgoing rate
limit on, as shops run it) and, in the same run, a bare echo bot under the same flood (the
floor).

    .venv/bin/python -m bench.fairness [--flood N] [--others N]

Target: the others' /balance answered within 20 ms (p99) while one customer floods 300.
Each figure is the better of two rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from bench.common import Latencies, bot_process, describe_ms, percentile, show, standin
from bench.dataset import build, customer_user_id, fixed_now
from handlers.telegram.standin import ApiCall, FakeTelegram

OTHERS_PACE = 0.05  # 20 a second: under Telegram's overall limit of 30, as real traffic is
REPLY_TIMEOUT = 120.0


async def flooded(api: FakeTelegram, flood: int, others: int) -> list[float]:
    """The others' p99 latency while one customer sends `flood` /card at once: the better of
    two rounds, like every other benchmark here, each with its own flooder and others."""
    rounds = [await _round(api, flood, others, first=1 + r * (others + 1)) for r in range(2)]
    return min(rounds, key=lambda seconds: percentile(seconds, 0.99))


async def _round(api: FakeTelegram, flood: int, others: int, first: int) -> list[float]:
    flooder = api.user(customer_user_id(first), "Flooder", "es")
    people = [
        api.user(customer_user_id(n), "Customer", "es")
        for n in range(first + 1, first + others + 1)
    ]
    latencies = Latencies(expected=len(people))

    def to_others(call: ApiCall) -> bool:
        return call.method == "sendMessage"

    api.on_record = latencies.watcher(to_others)
    for _ in range(flood):
        await flooder.send("/card")
    for person in people:
        latencies.mark(person.id)
        await person.send("/balance")
        await asyncio.sleep(OTHERS_PACE)
    await asyncio.wait_for(latencies.answered.wait(), REPLY_TIMEOUT)
    api.on_record = None
    return latencies.seconds


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--flood", type=int, default=300)
    parser.add_argument("--others", type=int, default=100)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="loyalty-bench-") as folder:
        database = Path(folder) / "fairness.db"
        await asyncio.to_thread(build, database, 2 * (arguments.others + 1), 0, fixed_now())
        print(
            f"fairness: one customer sends {arguments.flood} /card while {arguments.others}"
            f" others send /balance, {1 / OTHERS_PACE:.0f} a second",
            flush=True,
        )
        async with standin() as api:
            async with bot_process(api, "bench.echo_bot"):
                show(
                    "echo floor: the others' replies",
                    describe_ms(await flooded(api, arguments.flood, arguments.others)),
                )
            async with bot_process(api, "bench.bot_process", database, LIMIT_OUTGOING_RATE="true"):
                seconds = await flooded(api, arguments.flood, arguments.others)
                show("loyalty bot: the others' /balance", describe_ms(seconds))
                show("  target", "p99 < 20 ms")


if __name__ == "__main__":
    asyncio.run(main())
