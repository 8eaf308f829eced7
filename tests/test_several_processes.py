"""What several processes on one PostgreSQL share: one leader at a time, each day's job run once
whichever process leads, one process serving a person at a time, a dispatcher woken by another
process's commit, and a push left `sending` by a process that died is never resent. Each
`PostgresDatabase` (or `Services`) here is what one process opens."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import pytest

from bot import leadership
from bot.bootstrap import Services, close_services, open_services
from bot.domain.models import Identity
from bot.domain.pushes import SENDING_LONGEST
from bot.leadership import LEADER_LOCK, lead_when_possible
from bot.messages import Messages
from bot.program import Program
from bot.storage.job_runs import JobRuns
from bot.storage.outbox import NewPush, OutboxRepository, OutboxStatus
from bot.storage.postgresql import PostgresDatabase
from handlers.telegram.standin import FakeTelegram
from handlers.whatsapp.standin import FakeGraph
from tests.conftest import START, FakeClock, settings_for
from tests.flows import enrol
from tests.test_whatsapp import running


async def _two_processes(url: str) -> tuple[PostgresDatabase, PostgresDatabase]:
    return await PostgresDatabase.open(url), await PostgresDatabase.open(url)


async def test_one_process_leads_and_another_takes_over_when_it_goes(postgresql_url: str) -> None:
    first, second = await _two_processes(postgresql_url)
    try:
        async with first.exclusively(LEADER_LOCK) as leading:
            assert leading is not None and await leading.kept()
            async with second.exclusively(LEADER_LOCK) as waiting:
                assert waiting is None
        async with second.exclusively(LEADER_LOCK) as taken_over:
            assert taken_over is not None
    finally:
        await first.close()
        await second.close()


class _StandingClock(FakeClock):
    """A process's clock in which the dispatcher's fallback tick never comes: FakeClock's
    sleep moves time on, and a leader's dispatcher would race it through the day."""

    async def sleep(self, seconds: float) -> None:
        await asyncio.Event().wait()


class _Heard(logging.Handler):
    """What both processes log, with a wake-up for each line."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[tuple[str, str]] = []
        self._more = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.name, record.getMessage()))
        self._more.set()

    def count(self, part: str) -> int:
        return sum(part in line for _, line in self.lines)

    async def until(self, part: str, times: int) -> None:
        async with asyncio.timeout(10):
            while self.count(part) < times:
                self._more.clear()
                await self._more.wait()


async def test_each_days_job_runs_once_whichever_process_leads(
    api: FakeTelegram,
    program: Program,
    tmp_path: Path,
    postgresql_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Two processes up after the jobs' hours: the one that leads catches up on the day's
    jobs while the other waits; when it stops, the other takes over the same day and runs
    none of them again (each job once: one log line each, one birthday greeting)."""
    monkeypatch.setattr(leadership, "TAKE_OVER_SECONDS", 0.05)
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="bot.leadership")
    heard = _Heard()
    logging.getLogger().addHandler(heard)
    settings = settings_for(api, tmp_path / "unused.db", database_url=postgresql_url)
    local = START.astimezone(settings.zone)
    opened: list[Services] = []
    stops = [asyncio.Event(), asyncio.Event()]
    leading: list[asyncio.Task[None]] = []
    try:
        for _ in stops:
            messages = Messages(settings.zone, program.shop.money)
            opened.append(await open_services(settings, program, _StandingClock(), messages))
        first, second = opened
        ana = await enrol(first.registration, 1, birthday="24/11")  # START's day
        leading.append(asyncio.create_task(lead_when_possible(first, stops[0])))
        await heard.until("Scheduler started", 1)  # the day's jobs caught up first
        leading.append(asyncio.create_task(lead_when_possible(second, stops[1])))
        await heard.until("another process leads", 3)  # the second asks, and asks again
        assert heard.count("keeps the timetable") == 1
        stops[0].set()
        await leading[0]
        await heard.until("Scheduler started", 2)
        assert heard.count("keeps the timetable") == 2
        async with second.database.reading() as tx:
            ran_today = await JobRuns(tx).ran_on(local.date())
            greetings = await tx.fetch_all(
                "SELECT dedupe_key FROM outbox WHERE customer_id = ? AND kind = 'birthday'",
                (ana.id,),
            )
    finally:
        for stop in stops:
            stop.set()
        await asyncio.gather(*leading)
        for services in opened:
            await close_services(services, None)
        logging.getLogger().removeHandler(heard)
    due = {name for name, job in first.jobs.scheduled.items() if job.catch_up(local)}
    assert due and ran_today >= due
    runs = [line for name, line in heard.lines if name == "bot.timetable"]
    for job in due:
        assert len([line for line in runs if line.startswith(f"job {job} queued")]) == 1
    assert len(greetings) == 1


async def test_a_person_is_served_by_one_process_at_a_time(postgresql_url: str) -> None:
    first, second = await _two_processes(postgresql_url)
    try:
        async with first.serving("telegram:42") as mine:
            assert mine
            async with second.serving("telegram:42") as theirs:
                assert not theirs
            async with second.serving("telegram:43") as another:
                assert another
        async with second.serving("telegram:42") as now_theirs:
            assert now_theirs
    finally:
        await first.close()
        await second.close()


async def test_a_commit_in_one_process_wakes_the_leaders_dispatcher(postgresql_url: str) -> None:
    leader, other = await _two_processes(postgresql_url)
    woken = asyncio.Event()
    leader.outbox_committed = woken.set
    try:
        async with leader.hearing_others():
            await asyncio.wait_for(woken.wait(), 5)  # what was queued while nobody listened
            woken.clear()
            async with other.transaction() as tx:
                await tx.execute(
                    "INSERT INTO customers (channel, channel_user_id, member_code, referral_code,"
                    " language, promotions_consent, created_at)"
                    " VALUES ('telegram', '7', 'M1', 'R1', 'es', 1, '2026-11-24 10:00:00')"
                )
                await OutboxRepository(tx).enqueue(
                    NewPush(1, "nps", "nps:1", "pushes/nps", {"context": {}}), START
                )
            await asyncio.wait_for(woken.wait(), 5)
    finally:
        await leader.close()
        await other.close()


async def test_only_a_push_sending_longer_than_any_send_counts_as_interrupted(
    postgresql_url: str,
) -> None:
    database = await PostgresDatabase.open(postgresql_url)
    try:
        async with database.transaction() as tx:
            await tx.execute(
                "INSERT INTO customers (channel, channel_user_id, member_code, referral_code,"
                " language, promotions_consent, created_at)"
                " VALUES ('telegram', '7', 'M1', 'R1', 'es', 1, '2026-11-24 10:00:00')"
            )
            outbox = OutboxRepository(tx)
            for key in ("old", "new"):
                await outbox.enqueue(NewPush(1, "nps", key, "pushes/nps", {"context": {}}), START)
            rows = await tx.fetch_all("SELECT id FROM outbox ORDER BY id")
            old, new = (row["id"] for row in rows)
            assert await outbox.claim([old], START - SENDING_LONGEST - timedelta(seconds=1))
            assert await outbox.claim([new], START)  # another process is sending it now
            assert await outbox.mark_interrupted(START - SENDING_LONGEST) == 1
            statuses = await tx.fetch_all("SELECT status FROM outbox ORDER BY id")
        assert [row["status"] for row in statuses] == [OutboxStatus.UNCERTAIN, OutboxStatus.SENDING]
    finally:
        await database.close()


async def test_two_processes_answer_each_of_a_persons_messages_once_and_in_order(
    graph: FakeGraph, clock: FakeClock, program: Program, tmp_path: Path, postgresql_url: str
) -> None:
    """Meta's posts of one member's messages spread over two processes (as a balancer would):
    each message answered once, in the order she wrote them."""
    shared = {"database_url": postgresql_url}
    async with running(graph, clock, program, tmp_path / "a.db", **shared) as one:
        first = graph.webhook_url
        async with running(graph, clock, program, tmp_path / "b.db", **shared):
            second = graph.webhook_url
            ana = graph.person("34612345001", "Ana")
            await enrol(one.services.registration, 1, identity=Identity("whatsapp", ana.wa_id))
            mark = len(graph.calls)
            words = ["saldo", "tarjeta"] * 4
            for number, word in enumerate(words):
                graph.webhook_url = (first, second)[number % 2]
                await ana.send(word)
            await graph.wait_for(
                lambda _: len([c for c in graph.calls[mark:] if c.to == ana.wa_id]) >= len(words),
                timeout=10,
            )
    replies = [call for call in graph.calls[mark:] if call.to == ana.wa_id]
    kinds = ["card" if call.body.get("type") == "image" else "balance" for call in replies]
    assert kinds == ["balance", "card"] * 4


async def test_a_message_for_a_person_another_process_serves_waits_only_until_they_are_free(
    graph: FakeGraph,
    clock: FakeClock,
    program: Program,
    tmp_path: Path,
    postgresql_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The balancer sent Ana's message to a process while another was still serving her: it is
    answered as soon as she is free, not at the next look over the whole inbox (every
    LOOK_AGAIN_SECONDS, 5 s)."""
    elsewhere = await PostgresDatabase.open(postgresql_url)  # the process still serving her
    try:
        async with running(
            graph, clock, program, tmp_path / "a.db", database_url=postgresql_url
        ) as bot:
            ana = graph.person("34612345002", "Ana")
            await enrol(bot.services.registration, 1, identity=Identity("whatsapp", ana.wa_id))
            turned_away = asyncio.Event()
            database = bot.services.database
            serving = database.serving

            @asynccontextmanager
            async def watched(name: str) -> AsyncIterator[bool]:
                async with serving(name) as mine:
                    if not mine:
                        turned_away.set()
                    yield mine

            monkeypatch.setattr(database, "serving", watched)
            mark = len(graph.calls)
            async with elsewhere.serving(f"whatsapp:{ana.wa_id}") as held:
                assert held
                await ana.send("saldo")
                await asyncio.wait_for(turned_away.wait(), 5)
            await graph.wait_for(
                lambda _: any(call.to == ana.wa_id for call in graph.calls[mark:]), timeout=2
            )
    finally:
        await elsewhere.close()
