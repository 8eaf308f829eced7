"""Pushes: a run to 5,000 customers through the real dispatcher and Telegram channel, against a
stand-in that answers 429 (retry after 1 s) to anything above the allowed rate in any second.
Prints the achieved rate against the allowed one, the 429s met, and whether every customer was
served exactly once; beside it, a bare python-telegram-bot Bot sending the same messages at the
same pace (the floor). With --campaign, the run is the owner's campaign (with a coupon and
the opt-out button) to every customer, as /broadcast sends it.

    .venv/bin/python -m bench.pushes [--customers N] [--rate PER_SECOND] [--campaign]

Target: at least 95% of the allowed rate, no more than a handful of 429s, everyone served once.
The default rate is above Telegram's 30 a second so that the run takes a minute, not three; the
pacing is the same at any rate.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections import Counter, deque
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from aiohttp import web
from telegram import Bot
from telegram.error import RetryAfter

from bench.common import OWNER_ID, TOKEN, show, standin
from bench.dataset import build, customer_user_id, fixed_now
from bot.channels import Choice
from bot.clock import SystemClock
from bot.domain.campaigns import CampaignService
from bot.domain.models import Actor, Identity, Refused, Role
from bot.domain.pushes import PushDispatcher, PushMessage
from bot.messages import Messages
from bot.program import Program, load_program
from bot.storage.database import Database
from bot.storage.outbox import NewPush, OutboxRepository
from bot.storage.sqlite import SqliteDatabase
from handlers.telegram.aiohttp_request import AiohttpRequest
from handlers.telegram.app import REQUEST_POOL_SIZE
from handlers.telegram.channel import TelegramChannel
from handlers.telegram.polling import retry_after_seconds
from handlers.telegram.standin import ApiCall, FakeTelegram, api_error


class Strict:
    """Telegram's flood control as the stand-in plays it: N messages in any one second."""

    def __init__(self, per_second: int) -> None:
        self.per_second = per_second
        self.recent: deque[float] = deque()
        self.refused = 0
        self.accepted: Counter[int] = Counter()

    def __call__(self, call: ApiCall) -> web.Response | None:
        if call.method != "sendMessage":
            return None
        now = time.monotonic()
        while self.recent and now - self.recent[0] >= 1.0:
            self.recent.popleft()
        if len(self.recent) >= self.per_second:
            self.refused += 1
            return api_error(429, "Too Many Requests: retry after 1", retry_after=1)
        self.recent.append(now)
        self.accepted[call.chat_id or 0] += 1
        return None


async def queue_nps(db: Database, program: Program, customers: int) -> None:
    """The NPS question as the surveys job queues it, its eleven score buttons included."""
    scores = Choice("survey", 1, tuple(range(11)), 6)
    message = PushMessage("pushes/nps", {"shop": program.shop.name}, scores)
    async with db.transaction() as tx:
        await OutboxRepository(tx).enqueue_many(
            [
                NewPush(number, "bench", f"bench:{number}", message.template, message.payload())
                for number in range(1, customers + 1)
            ],
            datetime.now(UTC),  # due at once
        )


async def queue_campaign(db: Database, program: Program) -> None:
    """Everyone accepts offers; the owner sends them a campaign with a 10% coupon."""
    async with db.transaction() as tx:
        await tx.execute("UPDATE customers SET promotions_consent = 1")
    campaigns = CampaignService(db, SystemClock(), program, ZoneInfo("Europe/Madrid"))
    owner = Actor(Identity("telegram", str(OWNER_ID)), Role.OWNER)
    draft = await campaigns.start(owner)
    assert not isinstance(draft, Refused)
    await campaigns.write(owner, "¡Llega el vino nuevo! Ven a probarlo este sábado.")
    await campaigns.choose_audience(owner, draft.id, "everyone")
    started = time.perf_counter()
    preview = await campaigns.choose_coupon(owner, draft.id, 10)
    counted = time.perf_counter() - started
    assert not isinstance(preview, Refused)
    started = time.perf_counter()
    sent = await campaigns.send(owner, draft.id)
    assert not isinstance(sent, Refused)
    show("campaign: audience counted", f"{preview.recipients:,} in {counted:.2f} s")
    show(
        "campaign: coupons and messages queued",
        f"{sent.queued:,} in {time.perf_counter() - started:.2f} s",
    )


async def dispatcher_run(
    api: FakeTelegram, database: Path, customers: int, rate: int, *, campaign: bool
) -> None:
    program = load_program(None)
    db = await SqliteDatabase.open(database)
    if campaign:
        await queue_campaign(db, program)
    else:
        await queue_nps(db, program, customers)
    client = AiohttpRequest(connection_pool_size=REQUEST_POOL_SIZE)  # as the bot has it
    async with Bot(TOKEN, base_url=f"{api.url}/bot", request=client) as bot:
        messages = Messages(ZoneInfo("Europe/Madrid"), program.shop.money)
        channel = TelegramChannel(bot, messages)
        # A little under the allowed rate, as the bot's own setting (25 of 30) is.
        dispatcher = PushDispatcher(
            db, SystemClock(), {"telegram": channel}, messages, rate_per_second=rate * 0.97
        )
        strict = Strict(rate)
        api.override = strict
        started = time.perf_counter()
        report = await dispatcher.deliver_due()
        elapsed = time.perf_counter() - started
        api.override = None
    await db.close()
    served = [strict.accepted[customer_user_id(number)] for number in range(1, customers + 1)]
    achieved = report.sent / elapsed
    show(
        "dispatcher: achieved rate", f"{achieved:.1f}/s of {rate}/s allowed ({achieved / rate:.0%})"
    )
    show(
        "dispatcher: 429s met", f"{strict.refused} (waits honoured: {report.waits_for_retry_after})"
    )
    show(
        "dispatcher: customers served",
        f"{report.sent} sent, {report.failed} failed; exactly once each: {set(served) == {1}}",
    )


async def floor_run(api: FakeTelegram, customers: int, rate: int) -> None:
    """A bare Bot sending the same number of messages at the same pace."""
    strict = Strict(rate)
    api.override = strict
    interval = 1 / rate
    async with Bot(TOKEN, base_url=f"{api.url}/bot") as bot:
        started = time.perf_counter()
        for number in range(customers):
            try:
                await bot.send_message(5_000_000 + number, "hola")
            except RetryAfter as flood:
                await asyncio.sleep(retry_after_seconds(flood))
                await bot.send_message(5_000_000 + number, "hola")
            next_slot = started + (number + 1) * interval
            await asyncio.sleep(max(0.0, next_slot - time.perf_counter()))
        elapsed = time.perf_counter() - started
    api.override = None
    show(
        "floor: bare Bot at the same pace",
        f"{customers / elapsed:.1f}/s, 429s met: {strict.refused}",
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--rate", type=int, default=100)
    parser.add_argument("--campaign", action="store_true")
    arguments = parser.parse_args()
    what = "a campaign to" if arguments.campaign else "pushes:"
    print(f"{what} {arguments.customers:,} customers at {arguments.rate}/s", flush=True)
    with tempfile.TemporaryDirectory(prefix="loyalty-bench-") as folder:
        database = Path(folder) / "pushes.db"
        await asyncio.to_thread(build, database, arguments.customers, 0, fixed_now())
        async with standin() as api:
            await dispatcher_run(
                api, database, arguments.customers, arguments.rate, campaign=arguments.campaign
            )
            await floor_run(api, arguments.customers, arguments.rate)


if __name__ == "__main__":
    asyncio.run(main())
