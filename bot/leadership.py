"""Who keeps the timetable and delivers the outbox when several processes serve one shop.

Every process takes messages, but each daily job must run once and a sender's rate
(Telegram's 30 messages a second per bot, WhatsApp's 80 per number) must be kept by one pacer:
one process at a time, the leader, does both. Leadership is a lock of the database's
(PostgreSQL: an advisory lock held by the leader's own session, freed by the server when that
process dies, however it dies); another process takes over within TAKE_OVER_SECONDS.
On SQLite the file lock already makes the one process the leader.

Why a lock around APScheduler 3 rather than procrastinate's periodic tasks: the jobs already
run once per day whatever starts them (job_runs, idempotency keys), so what is missing is only
"one process at a time"; a second job system beside the first would be more to run and learn.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from bot.bootstrap import Services, start_background

log = logging.getLogger(__name__)

LEADER_LOCK = "loyalty-bot: timetable and outbox"
TAKE_OVER_SECONDS = 3.0  # how often a follower asks; also how often the leader checks it leads


async def lead_when_possible(services: Services, stop: asyncio.Event) -> None:
    """Until `stop`: run the background while this process holds the lock, else wait for it."""
    while not stop.is_set():
        async with services.database.exclusively(LEADER_LOCK) as held:
            if held is not None:
                log.info("this process keeps the timetable and delivers the outbox")
                async with services.database.hearing_others():
                    background = await start_background(services)
                    try:
                        while not stop.is_set() and await held.kept():
                            await _wait(stop, TAKE_OVER_SECONDS)
                    finally:
                        await background.end(services.jobs)
                if not stop.is_set():
                    log.warning("lost the lead (the database session ended); asking again")
            else:
                log.debug("another process leads; asking again in %.2f s", TAKE_OVER_SECONDS)
        await _wait(stop, TAKE_OVER_SECONDS)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
