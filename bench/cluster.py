"""Several bot processes on one PostgreSQL, beside one process on SQLite: 40 clerks' sales,
a burst of /balance and a run of pushes, with Telegram in webhook mode behind a balancer that
sends each post to the next process. Then the same with one of two processes killed (-9) in
the middle of the pushes: nothing lost, nothing twice, the other process takes over.

    .venv/bin/python -m bench.cluster [--database-url postgresql://...] [--customers N]
        [--sales N] [--balances N] [--pushes N]

Without --database-url (or BENCH_DATABASE_URL) a throwaway server is started with
scripts/postgres.sh. Prints, per configuration: sales a second (typed and confirmed), /balance
a second with its latency, pushes a second (Telegram's 30 a second per bot is the ceiling,
across all processes), the webhook's acknowledgement p50/p99, duplicates and losses.

Targets (2 cores, the server on the same machine): PostgreSQL with one process at least 0.7x
SQLite's sales rate; two processes not slower than one; acknowledgement p99 under 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import psycopg

from bench.common import OWNER_ID, ROOT, TOKEN, describe_ms, free_port, percentile, show, standin
from bench.dataset import build, clerk_user_id, customer_user_id, fixed_now, member_code
from bench.pushes import queue_nps
from bot.program import load_program
from bot.storage.database import Database
from bot.storage.job_runs import JobRuns
from bot.storage.moving import move
from bot.storage.postgresql import PostgresDatabase
from bot.storage.sqlite import SqliteDatabase
from bot.timetable import JOB_NAMES
from handlers.telegram.standin import ApiCall, ChatUser, FakeTelegram

SECRET = "bench-webhook-secret-0123456789abcdef"
CLERKS = 40
READY_TIMEOUT = 60.0
DONE_TIMEOUT = 300.0
NPS_WORDS = ("recomendarías", "recommend")  # the NPS question, in Spanish or English


@dataclass
class Figures:
    sales: float = 0.0
    sale_latency: tuple[float, ...] = ()
    balances: float = 0.0
    balance_latency: tuple[float, ...] = ()
    pushes: float = 0.0
    acks: tuple[float, ...] = ()
    duplicates: int = 0
    lost: int = 0
    uncertain: int = 0
    take_over_seconds: float | None = None
    accounts: str = ""  # the run's pushes by outcome, and the sales recorded


class Cluster:
    """N bot processes on one database, Telegram posting to them through the stand-in."""

    def __init__(self, api: FakeTelegram, environment: dict[str, str], processes: int) -> None:
        self.api = api
        self.environment = environment
        self.ports = [free_port() for _ in range(processes)]
        self.processes: list[asyncio.subprocess.Process] = []
        self.leader: int | None = None
        self._watchers: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self.api.balance_over = [f"http://127.0.0.1:{port}/telegram" for port in self.ports]
        for index, port in enumerate(self.ports):
            env = {
                **os.environ,
                **self.environment,
                "WEBHOOK_LISTEN": f"127.0.0.1:{port}",
            }
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.bot_process",
                cwd=ROOT,
                env=env,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            self.processes.append(process)
            self._watchers.append(asyncio.create_task(self._watch(index, process)))
        deadline = time.monotonic() + READY_TIMEOUT
        while self.api.webhook is None or self.leader is None:
            if time.monotonic() > deadline:
                raise TimeoutError("the bot processes did not start")
            await asyncio.sleep(0.1)
        probe = self.api.user(999_999, "Probe", "es")
        mark = len(self.api.calls)
        await probe.send("/help")
        await self.api.wait_for(lambda call: call.chat_id == probe.id, start=mark, timeout=60)

    async def _watch(self, index: int, process: asyncio.subprocess.Process) -> None:
        """The log tells which process leads (keeps the timetable and sends the pushes)."""
        assert process.stderr is not None
        async for line in process.stderr:
            if b"keeps the timetable" in line:
                self.leader = index
            elif b" INFO " not in line:  # what went wrong, if anything
                print(f"    [process {index}] {line.decode().rstrip()}", file=sys.stderr)

    def kill_leader(self) -> int:
        assert self.leader is not None
        killed = self.leader
        self.processes[killed].send_signal(signal.SIGKILL)
        self.leader = None
        return killed

    async def stop(self) -> None:
        for process in self.processes:
            if process.returncode is None:
                process.terminate()
        for process in self.processes:
            try:
                await asyncio.wait_for(process.wait(), 20)
            except TimeoutError:
                process.kill()
                await process.wait()
        for watcher in self._watchers:
            watcher.cancel()
        self.api.webhook = None
        self.api.balance_over = []


def receipt_to(chat: int) -> Callable[[ApiCall], bool]:
    """The confirm prompt edited into the sale's receipt."""
    return lambda call: (
        call.chat_id == chat and call.method == "editMessageText" and "#" in call.text
    )


async def sales(api: FakeTelegram, count: int, first: int) -> tuple[float, list[float]]:
    """CLERKS clerks, each typing and confirming sales one after the other."""
    latencies: list[float] = []
    per_clerk = count // CLERKS

    async def clerk_works(clerk: ChatUser, customers: range) -> None:
        for number in customers:
            started = time.perf_counter()
            await clerk.send(f"/sale {member_code(number)} 12,50 1")
            confirm = await clerk.receive_with_button("sale:ok:", timeout=DONE_TIMEOUT)
            mark = len(api.calls)
            await clerk.press(confirm, "✅")
            await api.wait_for(receipt_to(clerk.id), start=mark, timeout=DONE_TIMEOUT)
            latencies.append(time.perf_counter() - started)

    clerks = [api.user(clerk_user_id(n), "Clerk", "es") for n in range(1, CLERKS + 1)]
    started = time.perf_counter()
    await asyncio.gather(
        *(
            clerk_works(clerk, range(first + i * per_clerk, first + (i + 1) * per_clerk))
            for i, clerk in enumerate(clerks)
        )
    )
    return per_clerk * CLERKS / (time.perf_counter() - started), latencies


async def balances(api: FakeTelegram, count: int, first: int) -> tuple[float, list[float], int]:
    """`count` customers ask for /balance at once; (rate, latencies, duplicate replies)."""
    people = [api.user(customer_user_id(n), "Cliente", "es") for n in range(first, first + count)]
    asked: dict[int, float] = {}
    answered: dict[int, float] = {}
    replies: Counter[int] = Counter()
    done = asyncio.Event()

    def watch(call: object) -> None:
        chat = getattr(call, "chat_id", None)
        if chat in asked and getattr(call, "method", "") == "sendMessage":
            replies[chat] += 1
            answered.setdefault(chat, time.perf_counter())
            if len(answered) == len(asked):
                done.set()

    api.on_record = watch
    started = time.perf_counter()
    for person in people:
        asked[person.id] = time.perf_counter()
        await person.send("/balance")
    await asyncio.wait_for(done.wait(), DONE_TIMEOUT)
    rate = count / (time.perf_counter() - started)
    api.on_record = None
    await asyncio.sleep(1)  # a late second reply would show here
    latencies = [answered[chat] - asked[chat] for chat in asked]
    return rate, latencies, sum(n - 1 for n in replies.values() if n > 1)


def _is_nps(call: ApiCall) -> bool:
    return any(word in call.text for word in NPS_WORDS)


async def pushes(
    api: FakeTelegram, database: Database, count: int, cluster: Cluster | None
) -> tuple[float, int, float | None]:
    """Queue `count` NPS questions and wait until none is left to send (killing the leader
    halfway, if asked): (pushes a second, duplicates, seconds without a push after the kill)."""
    program = load_program(None)
    mark = len(api.calls)
    await queue_nps(database, program, count)
    started = time.perf_counter()
    killed_at: float | None = None
    gap: float | None = None
    last_seen = 0
    deadline = started + DONE_TIMEOUT
    first_seen: float | None = None  # SQLite's dispatcher learns of pushes queued by
    # another process at its next round (30 s): the rate counts from the first one sent
    while time.perf_counter() < deadline:
        delivered = sum(1 for call in api.calls[mark:] if _is_nps(call))
        if delivered and first_seen is None:
            first_seen = time.perf_counter()
        if cluster is not None and killed_at is None and delivered >= count // 2:
            cluster.kill_leader()
            killed_at, last_seen = time.perf_counter(), delivered
        # A push in flight when the leader died may still arrive: the next leader's count.
        if killed_at is not None and gap is None and delivered > last_seen + 3:
            gap = time.perf_counter() - killed_at
        # After a kill, those the dead leader had in hand stay `sending` (then `uncertain`).
        statuses = ("pending",) if killed_at else ("pending", "sending")
        if not await _left_to_send(database, statuses) and (killed_at is None or gap is not None):
            break
        await asyncio.sleep(0.1)
    elapsed = time.perf_counter() - (first_seen or started)
    per_chat = Counter(call.chat_id for call in api.calls[mark:] if _is_nps(call))
    duplicates = sum(n - 1 for n in per_chat.values() if n > 1)
    return len(per_chat) / elapsed, duplicates, gap


async def _left_to_send(database: Database, statuses: tuple[str, ...]) -> int:
    async with database.reading() as tx:
        row = await tx.fetch_one(
            "SELECT COUNT(*) AS n FROM outbox WHERE dedupe_key LIKE 'bench:%'"
            f" AND status IN ({', '.join('?' for _ in statuses)})",
            statuses,
        )
    return int(row["n"]) if row else 0


async def _sales_recorded(database: Database) -> int:
    async with database.reading() as tx:
        row = await tx.fetch_one("SELECT COUNT(*) AS n FROM sales")
    return int(row["n"]) if row else 0


async def _outcomes(database: Database) -> Counter[str]:
    async with database.reading() as tx:
        rows = await tx.fetch_all(
            "SELECT status, COUNT(*) AS n FROM outbox WHERE dedupe_key LIKE 'bench:%'"
            " GROUP BY status"
        )
    return Counter({row["status"]: int(row["n"]) for row in rows})


async def _jobs_ran_today(database: Database) -> None:
    """The leader's catch-up at start would run today's jobs over the whole dataset and queue
    their pushes ahead of the run's: they count as done, as in a shop running since morning."""
    today = datetime.now(ZoneInfo("Europe/Madrid")).date()
    async with database.transaction() as tx:
        for job in JOB_NAMES:
            await JobRuns(tx).record(job, today, datetime.now(UTC))


async def figures_of(
    api: FakeTelegram,
    database: Database,
    environment: dict[str, str],
    processes: int,
    counts: argparse.Namespace,
    *,
    kill: bool = False,
) -> Figures:
    await _jobs_ran_today(database)
    cluster = Cluster(api, environment, processes)
    await cluster.start()
    try:
        figures = Figures()
        api.webhook_answers.clear()
        sales_before = await _sales_recorded(database)
        print(f"  ({processes} process(es) started; sales...)", flush=True)
        figures.sales, sale_latency = await sales(api, counts.sales, first=1)
        print("  (/balance...)", flush=True)
        figures.sale_latency = tuple(sale_latency)
        figures.balances, balance_latency, duplicates = await balances(
            api, counts.balances, first=counts.sales + 1
        )
        figures.balance_latency = tuple(balance_latency)
        print("  (pushes...)", flush=True)
        rate, push_duplicates, gap = await pushes(
            api, database, counts.pushes, cluster if kill else None
        )
        figures.pushes, figures.take_over_seconds = rate, gap
        figures.duplicates = duplicates + push_duplicates
        figures.acks = tuple(took for status, took in api.webhook_answers if status == 200)
        outcomes = await _outcomes(database)
        # In flight when the leader died: never sent again (`uncertain` after SENDING_LONGEST).
        figures.uncertain = outcomes["sending"] + outcomes["uncertain"]
        # Counted, not dated: the dataset's own sales run up to its "now", later today.
        recorded = await _sales_recorded(database) - sales_before
        figures.accounts = f"pushes {dict(outcomes)}; sales recorded {recorded}"
        # Not sent and not accounted for (customers the dataset made unreachable are).
        figures.lost = outcomes["pending"] + outcomes["failed"] + abs(recorded - counts.sales)
        return figures
    finally:
        await cluster.stop()


def report(name: str, figures: Figures, sqlite: Figures | None, one: Figures | None) -> None:
    print(name, flush=True)
    show(
        "sales (typed and confirmed)",
        f"{figures.sales:.0f}/s, {describe_ms(list(figures.sale_latency))}",
    )
    if sqlite is not None:
        show("  ratio to SQLite", f"{figures.sales / sqlite.sales:.2f}x (target >= 0.7x)")
    if one is not None:
        show("  ratio to one process", f"{figures.sales / one.sales:.2f}x (target >= 1x)")
    show(
        "/balance burst", f"{figures.balances:.0f}/s, {describe_ms(list(figures.balance_latency))}"
    )
    show("pushes", f"{figures.pushes:.1f}/s (the bot's limit: 30/s across processes)")
    if figures.acks:
        p50, p99 = (
            1000 * percentile(list(figures.acks), 0.5),
            1000 * percentile(list(figures.acks), 0.99),
        )
        show("webhook acknowledgement", f"p50 {p50:.1f} ms, p99 {p99:.1f} ms (target p99 < 50 ms)")
    show(
        "duplicates / lost / uncertain",
        f"{figures.duplicates} / {figures.lost} / {figures.uncertain}",
    )
    show("  accounted for", figures.accounts)
    if figures.take_over_seconds is not None:
        show(
            "pushes again after kill -9 of the leader",
            f"{figures.take_over_seconds:.1f} s (target < 10 s)",
        )


@asynccontextmanager
async def server(url: str | None) -> AsyncIterator[str]:
    if url:
        yield url
        return
    folder = tempfile.mkdtemp(prefix="loyalty-bench-pg-")
    script = str(ROOT / "scripts/postgres.sh")
    starting = await asyncio.create_subprocess_exec(
        "bash", script, "start", folder, str(free_port()), stdout=asyncio.subprocess.PIPE
    )
    printed, _ = await starting.communicate()
    if starting.returncode:
        raise RuntimeError("PostgreSQL did not start (scripts/postgres.sh)")
    try:
        yield printed.decode().strip()
    finally:
        stopping = await asyncio.create_subprocess_exec("bash", script, "stop", folder)
        await stopping.wait()
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A new database on the server, dropped afterwards: --database-url may be a server the
    benchmark does not own, and a copied shop of 100,000 customers is half a gigabyte."""
    name = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


async def copy_to_postgresql(dataset: Path, url: str) -> PostgresDatabase:
    source = await SqliteDatabase.open(dataset)
    target = await PostgresDatabase.open(url)
    try:
        await move(source, target)
    finally:
        await source.close()
    return target


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--sales", type=int, default=2_000)
    parser.add_argument("--balances", type=int, default=5_000)
    parser.add_argument("--pushes", type=int, default=1_000)
    counts = parser.parse_args()
    if counts.customers < counts.sales + counts.balances or counts.pushes > counts.customers:
        parser.error("--customers must cover --sales plus --balances, and --pushes")
    with tempfile.TemporaryDirectory(prefix="loyalty-bench-") as folder:
        dataset = Path(folder) / "cluster.db"
        await asyncio.to_thread(
            build, dataset, counts.customers, counts.customers * 5, fixed_now(), clerks=CLERKS
        )
        print(
            f"cluster: {counts.customers:,} customers, {CLERKS} clerks' {counts.sales:,} sales,"
            f" {counts.balances:,} /balance, {counts.pushes:,} pushes",
            flush=True,
        )
        common = {
            "BOT_TOKEN": TOKEN,
            "OWNER_IDS": str(OWNER_ID),
            "LIMIT_OUTGOING_RATE": "false",
            "PUSH_RATE_PER_SECOND": "30",
            "TELEGRAM_WEBHOOK_URL": "https://loyalty.example.com/telegram",
            "TELEGRAM_WEBHOOK_SECRET": SECRET,
            "BENCH_BACKGROUND": "true",
            "BENCH_LOG_LEVEL": "INFO",
            "BACKUP_KEEP": "0",
        }
        async with standin() as api, server(counts.database_url) as server_url:
            common["TELEGRAM_API_URL"] = api.url
            copy = Path(folder) / "sqlite.db"
            shutil.copy(dataset, copy)
            on_sqlite = await SqliteDatabase.open(copy)
            try:
                sqlite = await figures_of(
                    api, on_sqlite, {**common, "DATABASE_PATH": str(copy)}, 1, counts
                )
            finally:
                await on_sqlite.close()
            report("SQLite, one process", sqlite, None, None)
            results: dict[str, Figures] = {}
            for processes, kill in ((1, False), (2, False), (2, True)):
                with fresh_database(server_url) as url:
                    database = await copy_to_postgresql(dataset, url)
                    try:
                        results[f"{processes}{kill}"] = await figures_of(
                            api,
                            database,
                            {**common, "DATABASE_URL": url},
                            processes,
                            counts,
                            kill=kill,
                        )
                    finally:
                        await database.close()
                name = f"PostgreSQL, {processes} process{'es' if processes > 1 else ''}"
                report(
                    name + (", the leader killed halfway through the pushes" if kill else ""),
                    results[f"{processes}{kill}"],
                    sqlite,
                    results.get("1False") if processes > 1 else None,
                )


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
