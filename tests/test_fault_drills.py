"""Fault drills: the bot process killed mid-burst, databases from every earlier version, and
Bot API faults during pushes. The crash drill runs the real `python -m bot` as a process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import signal
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, closing
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import pytest
from aiohttp import web

from bench.dataset import build, clerk_user_id, customer_user_id, member_code
from bot.domain.models import Actor, Identity, Language, Role
from bot.domain.pushes import PushMessage
from bot.storage.database import bundled_migrations
from bot.storage.sqlite import SqliteDatabase
from handlers.telegram.standin import ApiCall, FakeTelegram, api_error
from tests import processes
from tests.conftest import RunningBot, set_writable
from tests.flows import invitation, join
from tests.processes import TELEGRAM_READY, telegram_environment

ROOT = Path(__file__).resolve().parent.parent
CLERKS = 200  # and as many customers, one sale each
KILL_AFTER_RECEIPTS = 8
PUSHED = 120  # customers with a pending push
KILL_AFTER_PUSHES = 20
CUSTOMER_CHATS = frozenset(customer_user_id(number) for number in range(1, PUSHED + 1))


@asynccontextmanager
async def bot_process(
    api: FakeTelegram, database: Path, log: list[str] | None = None
) -> AsyncIterator[asyncio.subprocess.Process]:
    """`python -m bot` (the timetable included) on the stand-in, ready once it has answered;
    its log lines (stderr, through a pipe: a full disk could not take a log file) go to
    `log` if given."""
    env = telegram_environment(api.url, database, PUSH_RATE_PER_SECOND="30")
    lines = [] if log is None else log
    api.handled_check = partial(_handled_in_file, database)
    async with processes.bot_process(env, ROOT, lines, [TELEGRAM_READY]) as process:
        probe = api.user(999_999, "Probe", "es")
        mark = len(api.calls)
        await probe.send("/help")
        await api.wait_for(lambda call: call.chat_id == probe.id, start=mark, timeout=60)
        yield process


async def _handled_in_file(database: Path, update_id: int) -> bool:
    """The update, and every one recorded before it, marked handled in the bot's inbox (its
    replies may still be on their way)."""

    def look() -> bool:
        with closing(sqlite3.connect(database)) as connection:
            row = connection.execute(
                "SELECT COUNT(*) FROM inbox WHERE channel = 'telegram' AND handled_at IS NULL"
                " AND id <= (SELECT id FROM inbox WHERE channel = 'telegram' AND message_id = ?)",
                (str(update_id),),
            ).fetchone()
            recorded = connection.execute(
                "SELECT 1 FROM inbox WHERE channel = 'telegram' AND message_id = ?",
                (str(update_id),),
            ).fetchone()
        return recorded is not None and row[0] == 0

    return await asyncio.to_thread(look)


def _receipt(call: ApiCall) -> bool:
    """The confirmation prompt, turned into the sale's receipt."""
    return call.method == "editMessageText" and "#" in call.text and "/void" in call.text


def _push(call: ApiCall) -> bool:
    """The drill's push (the NPS question); customers also hear of their sales and friends."""
    question = "del 0 al 10" in call.text or "from 0 to 10" in call.text
    return call.method == "sendMessage" and call.chat_id in CUSTOMER_CHATS and question


async def test_a_bot_killed_mid_burst_of_sales_and_pushes_loses_and_doubles_nothing(
    api: FakeTelegram, tmp_path: Path
) -> None:
    """SIGKILL while 200 clerks' taps are being handled and a push run is half done. After a
    restart, the inbox worker handles every tap the dead process had recorded and not handled
    (and Telegram hands out again any it had not confirmed): each sale is then recorded once,
    with its ledger row, and its clerk gets the receipt without tapping again. A sale recorded
    before the kill but not yet answered needs a second tap, which says it was already
    recorded. Pushes: none lost that was pending, none
    sent twice; the one caught mid-send is marked uncertain instead of resent."""
    database = tmp_path / "drill.db"
    await asyncio.to_thread(build, database, CLERKS, 0, datetime.now(UTC), clerks=CLERKS)
    await asyncio.to_thread(_queue_pushes_only_ours, database)
    clerks = [api.user(clerk_user_id(n), f"Clerk {n}", "es") for n in range(1, CLERKS + 1)]
    confirmations: dict[int, ApiCall] = {}
    async with bot_process(api, database) as process:
        await _heard(api, lambda calls: sum(map(_push, calls)) >= KILL_AFTER_PUSHES)
        for number, clerk in enumerate(clerks, start=1):
            await clerk.send(f"/sale {member_code(number)} 10 1")
        for clerk in clerks:
            confirmations[clerk.id] = await clerk.receive_with_button("sale:ok:", timeout=30)
        for clerk in clerks:  # every clerk taps at once
            last_tap = await clerk.press(confirmations[clerk.id], "✅")
        await _heard(api, lambda calls: sum(map(_receipt, calls)) >= KILL_AFTER_RECEIPTS)
        process.send_signal(signal.SIGKILL)
        await process.wait()
    told_before_crash = _receipted(api)
    assert KILL_AFTER_RECEIPTS <= len(told_before_crash) < CLERKS
    assert _outbox(database).get("pending", 0) > 0  # the kill caught the push run midway

    async with bot_process(api, database):
        # The taps recorded and not handled at the kill, and any Telegram hands out again, are
        # handled now (how many there are depends on timing: handling outruns the replies, so
        # often every sale is in and only answers were lost; test_delivery shows the restart).
        await api.handled(last_tap, timeout=60)
        for clerk in clerks:
            if clerk.id not in _receipted(api):
                await clerk.press(confirmations[clerk.id], "✅")
                await clerk.receive_containing("ya estaba registrada", timeout=30)
        await _heard(api, lambda _: _outbox(database).get("pending", 0) == 0)
        await _heard(api, lambda _: _outbox(database, "points/earned").get("pending", 0) == 0)

    with sqlite3.connect(database) as connection:
        sales = connection.execute(
            "SELECT COUNT(*), COUNT(DISTINCT customer_id) FROM sales"
        ).fetchone()
        unledgered = connection.execute(
            "SELECT COUNT(*) FROM sales s WHERE NOT EXISTS (SELECT 1 FROM points_ledger l"
            " WHERE l.idempotency_key = 'sale:' || s.id)"
        ).fetchone()
        earned = connection.execute(
            "SELECT COALESCE(SUM(l.delta), 0) FROM customers c LEFT JOIN points_ledger l"
            " ON l.customer_id = c.id AND l.reason = 'purchase' WHERE c.id <= ? GROUP BY c.id",
            (CLERKS,),
        ).fetchall()
    assert sales == (CLERKS, CLERKS)  # every sale once, none twice
    assert unledgered == (0,)  # none half-written
    assert earned == [(1,)] * CLERKS  # one point a bottle, each customer bought one

    outbox = _outbox(database)
    pushed = Counter(call.chat_id for call in api.calls if _push(call))
    assert set(outbox) <= {"sent", "uncertain"} and outbox.get("uncertain", 0) <= 1
    assert outbox["sent"] + outbox.get("uncertain", 0) == PUSHED
    assert max(pushed.values()) == 1  # nobody twice
    assert outbox["sent"] <= len(pushed) <= PUSHED

    # Each customer's receipt: queued with the sale, sent once (or, caught mid-send, never).
    receipts = _outbox(database, "points/earned")
    told = Counter(call.chat_id for call in api.calls if _receipt_to_customer(call))
    assert set(receipts) <= {"sent", "uncertain"} and receipts.get("uncertain", 0) <= 1
    assert receipts["sent"] + receipts.get("uncertain", 0) == CLERKS
    assert max(told.values()) == 1 and receipts["sent"] <= len(told) <= CLERKS


async def test_a_receipt_committed_with_its_sale_reaches_the_customer_once_after_a_crash(
    api: FakeTelegram, tmp_path: Path
) -> None:
    """SIGKILL after a sale's commit and before the customer is told. The receipt was written
    to the outbox with the sale, so the restarted bot sends it: once, although Telegram hands
    the clerk's tap out again."""
    database = tmp_path / "receipt.db"
    await asyncio.to_thread(build, database, 1, 0, datetime.now(UTC), clerks=1)
    clerk = api.user(clerk_user_id(1), "Clerk 1", "es")
    committed = asyncio.Event()

    def hold_the_clerks_receipt(call: ApiCall) -> bool:
        """The clerk's receipt is sent after the commit and before the customer's: the kill
        lands while it is held."""
        if call.method == "editMessageText" and call.chat_id == clerk.id:
            committed.set()
            return True
        return False

    api.hold = hold_the_clerks_receipt
    async with bot_process(api, database) as process:
        await clerk.send(f"/sale {member_code(1)} 10 1")
        tap = await clerk.press(await clerk.receive_with_button("sale:ok:", timeout=30), "✅")
        await asyncio.wait_for(committed.wait(), timeout=30)
        assert _outbox(database, "points/earned") == {"pending": 1}
        process.send_signal(signal.SIGKILL)
        await process.wait()
    api.hold = None

    def told(call: ApiCall) -> bool:
        return call.chat_id == customer_user_id(1) and "Has sumado <b>1 punto</b>" in call.text

    assert not any(map(told, api.calls))
    async with bot_process(api, database):
        await _heard(api, lambda calls: any(map(told, calls)))
        await api.handled(tap, timeout=30)  # the tap, handled before the kill, is not again
    assert sum(map(told, api.calls)) == 1
    assert _outbox(database, "points/earned") == {"sent": 1}  # recorded before the bot stopped
    with closing(sqlite3.connect(database)) as connection:
        assert connection.execute("SELECT COUNT(*) FROM sales").fetchone() == (1,)


def _queue_pushes_only_ours(database: Path) -> None:
    """A push run caught half done: pending pushes to every customer, and no consent for the
    bot's own jobs, so that only these go out."""
    with sqlite3.connect(database) as connection:
        connection.execute("UPDATE customers SET promotions_consent = 0, surveys_enabled = 0")
        connection.executemany(
            "INSERT INTO outbox (customer_id, kind, dedupe_key, template, payload,"
            " next_attempt_at, created_at) VALUES (?, 'drill', ?, 'pushes/nps', ?, ?, ?)",
            (
                (
                    number,
                    f"drill:{number}",
                    json.dumps(PushMessage("pushes/nps", {"shop": "Bodega"}).payload()),
                    "2000-01-01 00:00:00",
                    "2000-01-01 00:00:00",
                )
                for number in range(1, PUSHED + 1)
            ),
        )


def _outbox(database: Path, template: str = "pushes/nps") -> dict[str, int]:
    """The outbox by status: the drill's own pushes, or the customers' receipts."""
    with closing(sqlite3.connect(database)) as connection:
        return dict(
            connection.execute(
                "SELECT status, COUNT(*) FROM outbox WHERE template = ? GROUP BY status",
                (template,),
            )
        )


def _receipt_to_customer(call: ApiCall) -> bool:
    return "Has sumado" in call.text or "You earned" in call.text


def _receipted(api: FakeTelegram) -> set[int | None]:
    return {call.chat_id for call in api.calls if _receipt(call)}


async def _heard(api: FakeTelegram, condition: Callable[[list[ApiCall]], bool]) -> None:
    await api.wait_until(lambda: condition(api.calls), timeout=60)


def test_a_database_from_every_earlier_version_upgrades_cleanly(tmp_path: Path) -> None:
    migrations = bundled_migrations()
    identities_from = next(i for i, (_, name, _) in enumerate(migrations) if "identities" in name)
    for stop in range(1, len(migrations)):
        path = tmp_path / f"from-{stop}.db"
        with sqlite3.connect(path) as connection:
            connection.execute(
                "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                " applied_at TEXT NOT NULL)"
            )
            for version, name, sql in migrations[:stop]:
                connection.executescript(sql)
                connection.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, '2026-01-01 00:00:00')",
                    (version, name),
                )
            connection.execute(
                "INSERT INTO customers (channel, channel_user_id, member_code, referral_code, name,"
                " language, promotions_consent, created_at) VALUES ('telegram', '7', 'OLD00001',"
                " 'REF00001', 'Old Member', 'es', 1, '2026-01-01 00:00:00')"
            )
            connection.execute(
                "INSERT INTO points_ledger (customer_id, delta, reason, actor, idempotency_key,"
                " created_at) VALUES (1, 5, 'adjustment', 'owner:telegram:1', 'old-1',"
                " '2026-01-01 00:00:00')"
            )
        assert asyncio.run(_upgrade(path)) == [], stop
        before = list((tmp_path / "backups").glob("loyalty-*-before-upgrade.db"))
        assert len(before) == stop  # a copy before each upgrade, as it was
        newest = max(before, key=lambda copy: copy.stat().st_mtime_ns)
        with contextlib.closing(sqlite3.connect(newest)) as copy:
            kept = copy.execute(
                "SELECT (SELECT MAX(version) FROM schema_migrations),"
                " (SELECT name FROM customers), (SELECT SUM(delta) FROM points_ledger)"
            ).fetchone()
        assert kept == (migrations[stop - 1][0], "Old Member", 5)
        with sqlite3.connect(path) as connection:
            row = connection.execute(
                "SELECT c.name, SUM(l.delta) FROM customers c JOIN points_ledger l"
                " ON l.customer_id = c.id"
            ).fetchone()
            versions = [v for (v,) in connection.execute("SELECT version FROM schema_migrations")]
            known_as = connection.execute(
                "SELECT customer_id FROM customer_identities WHERE channel_user_id = '7'"
            ).fetchone()
        assert row == ("Old Member", 5)
        if stop <= identities_from:  # a member from before identities: still found by chat
            assert known_as == (1,)
        assert versions == [version for version, _, _ in migrations]


async def _upgrade(path: Path) -> list[int]:
    database = await SqliteDatabase.open(path)  # applies what is missing
    try:
        return await database.migrate()  # ... so a second pass applies nothing
    finally:
        await database.close()


async def test_chat_not_found_marks_the_customer_unreachable_and_the_run_goes_on(
    bot: RunningBot,
) -> None:
    for user_id in (330, 331, 332):
        await join(bot, user_id, birthday="24/11")

    def faults(call: ApiCall) -> web.Response | None:
        if call.chat_id == 330:
            return api_error(400, "Bad Request: chat not found")
        if call.chat_id == 331:
            return api_error(400, "Bad Request: message is too long")
        return None

    bot.api.override = faults
    result = await bot.services.jobs.run("birthdays")
    report = result.delivery
    assert (report.sent, report.unreachable, report.failed) == (1, 1, 1)
    again = await bot.services.jobs.run("birthdays")
    assert (again.queued, again.delivery.sent) == (0, 0)  # nothing is sent twice
    async with bot.services.database.reading() as tx:
        rows = await tx.fetch_all(
            "SELECT c.channel_user_id, o.status FROM outbox o JOIN customers c"
            " ON c.id = o.customer_id ORDER BY c.channel_user_id"
        )
    assert [(row[0], row[1]) for row in rows] == [
        ("330", "unreachable"),
        ("331", "failed"),
        ("332", "sent"),
    ]


async def test_a_full_disk_loses_nothing_silently(api: FakeTelegram, tmp_path: Path) -> None:
    """The real process with its file size limit cut to one byte, so every write to the
    database fails as on a disk with no room (SQLite says "disk I/O error" for this, and
    "database or disk is full" for a full disk: the bot treats both alike). The clerk's tap is
    answered with "try again", never with a receipt; nothing is half-written; the operator's
    log says what to check; once there is room again, the same tap records the sale once."""
    database, log = tmp_path / "full.db", list[str]()
    await asyncio.to_thread(build, database, 1, 0, datetime.now(UTC), clerks=1)
    clerk = api.user(clerk_user_id(1), "Clerk 1", "es")
    async with bot_process(api, database, log) as process:
        await clerk.send(f"/sale {member_code(1)} 10 1")
        prompt = await clerk.receive_with_button("sale:ok:", timeout=30)
        unlimited = resource.prlimit(process.pid, resource.RLIMIT_FSIZE)
        resource.prlimit(process.pid, resource.RLIMIT_FSIZE, (1, unlimited[1]))
        await clerk.press(prompt, "✅")
        apology = await clerk.receive_containing("algo ha fallado", timeout=30)
        assert "registrada" not in apology.text
        assert _sales_and_ledger_rows_in(database) == (0, 0)
        resource.prlimit(process.pid, resource.RLIMIT_FSIZE, unlimited)
        await clerk.press(prompt, "✅")
        assert "#" in (await clerk.receive_containing("registrada", timeout=30)).text
    assert _sales_and_ledger_rows_in(database) == (1, 1)
    assert any("CRITICAL" in line and "cannot be written" in line for line in log)


def _sales_and_ledger_rows_in(database: Path) -> tuple[int, int]:
    with closing(sqlite3.connect(database)) as connection:
        row = connection.execute(
            "SELECT (SELECT COUNT(*) FROM sales), (SELECT COUNT(*) FROM points_ledger)"
        ).fetchone()
    return row[0], row[1]


@pytest.mark.sqlite_only
async def test_a_database_that_cannot_be_written_loses_nothing_silently(
    bot: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    """A read-only disk (a full one fails the same way): the clerk is told to try again,
    never that the sale was recorded; the operator's log says what to check; the retry, once
    the disk is back, records the sale once."""
    _, customer = await join(bot, 340)
    await bot.services.staff.accept(
        Identity("telegram", "50"),
        (await invitation(bot.services.staff, Actor(Identity("telegram", "1"), Role.OWNER))).token,
        "Pepe",
        Language.ES,
    )
    clerk = bot.api.user(50, "Pepe", "es")
    await clerk.send(f"/sale {customer.member_code} 10 1")
    confirmation = await clerk.receive_with_button("sale:ok:")
    await set_writable(bot.services.database, False)
    await clerk.press(confirmation, "✅")
    apology = await clerk.receive_containing("algo ha fallado")
    assert "registrada" not in apology.text
    assert any("database cannot be written" in record.message for record in caplog.records)
    assert await _sales_and_ledger_rows(bot) == (0, 0)  # nothing half-written
    await set_writable(bot.services.database, True)
    await clerk.press(confirmation, "✅")
    assert "#" in (await clerk.receive_containing("registrada")).text
    assert await _sales_and_ledger_rows(bot) == (1, 1)


async def _sales_and_ledger_rows(bot: RunningBot) -> tuple[int, int]:
    async with bot.services.database.reading() as tx:
        row = await tx.fetch_one(
            "SELECT (SELECT COUNT(*) FROM sales), (SELECT COUNT(*) FROM points_ledger)"
        )
    assert row is not None
    return row[0], row[1]
