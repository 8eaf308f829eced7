"""Storage: migrations, the append-only ledger and its idempotency keys."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.domain.erasures import JOB as ERASURES
from bot.domain.erasures import OVERLAP, ErasureRewrite
from bot.domain.models import Identity, Language, LedgerReason, RegistrationDraft, RegistrationStep
from bot.errors import INTEGRITY_ERRORS
from bot.incoming import beside_the_update
from bot.storage.customers import CustomerRepository
from bot.storage.database import (
    Database,
    bundled_migrations,
    enlisting,
    long_work,
    to_sql_time,
)
from bot.storage.inbox import InboxRepository
from bot.storage.job_runs import JobRuns
from bot.storage.ledger import LedgerRepository, LedgerRow
from bot.storage.outbox import NewPush, OutboxRepository
from bot.storage.postgresql import PostgresDatabase
from bot.storage.sales import SalesRepository
from bot.storage.sqlite import CHECKPOINT_EVERY, SqliteDatabase
from bot.storage.updates import SecondCommit, UpdateClaim
from tests.conftest import database_of_an_earlier_version

AT = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


async def _customer(
    database: Database, user_id: str = "9", codes: tuple[str, str] = ("AAAA2222", "BBBB3333")
) -> int:
    draft = RegistrationDraft(
        Identity("telegram", user_id), RegistrationStep.CONSENT, Language.ES, None, name="Ana"
    )
    async with database.transaction() as tx:
        return await CustomerRepository(tx).insert(
            draft.identity,
            member_code=codes[0],
            referral_code=codes[1],
            draft=draft,
            promotions_consent=True,
            at=AT,
        )


def test_migrations_are_numbered_without_gaps() -> None:
    versions = [version for version, _, _ in bundled_migrations()]
    assert versions == list(range(1, len(versions) + 1))


async def test_opening_again_applies_nothing_and_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "loyalty.db"
    first = await SqliteDatabase.open(path)
    customer_id = await _customer(first)
    await first.close()
    second = await SqliteDatabase.open(path)
    assert await second.migrate() == []
    async with second.reading() as tx:
        assert await CustomerRepository(tx).by_id(customer_id) is not None
        rows = await tx.fetch_all("SELECT version FROM schema_migrations")
        mode = await tx.fetch_one("PRAGMA journal_mode")
    await second.close()
    assert [row["version"] for row in rows] == [v for v, _, _ in bundled_migrations()]
    assert mode is not None and mode[0] == "wal"


async def test_a_balance_is_the_sum_of_the_ledger(database: Database) -> None:
    customer_id = await _customer(database)
    async with database.transaction() as tx:
        ledger = LedgerRepository(tx)
        for key, delta, reason in [
            ("a", 10, LedgerReason.PURCHASE),
            ("b", -4, LedgerReason.REWARD),
            ("c", 2, LedgerReason.REFERRAL),
        ]:
            assert await ledger.append(
                customer_id, delta, reason, actor="test", idempotency_key=key, at=AT
            )
    async with database.reading() as tx:
        assert await LedgerRepository(tx).balance(customer_id) == 8


async def test_the_totals_kept_in_the_customer_row_follow_the_ledger_and_the_sales(
    database: Database,
) -> None:
    """Balance, points spent, purchases, spend, the first and last purchase are kept in the
    customer's row by the database itself; whatever the order of sales, voids and ledger rows,
    they equal what the ledger and the sales add up to."""
    customer_id = await _customer(database)
    async with database.transaction() as tx:
        sales = SalesRepository(tx)
        ledger = LedgerRepository(tx)
        first, latest = [
            (
                await sales.insert(
                    customer_id,
                    recorded_by="s",
                    amount_minor=amount,
                    items=1,
                    points=1,
                    idempotency_key=f"sale:{amount}",
                    at=at,
                    count_since=AT,
                )
            )[0]
            for amount, at in ((1250, AT), (900, AT + timedelta(days=2)))
        ]
        await ledger.append(
            customer_id, 3, LedgerReason.PURCHASE, actor="s", idempotency_key="p", at=AT
        )
        await ledger.append(
            customer_id, -1, LedgerReason.REWARD, actor="s", idempotency_key="r", at=AT
        )
    async with database.reading() as tx:
        kept = await tx.fetch_one("SELECT * FROM customers WHERE id = ?", (customer_id,))
    assert kept is not None
    assert (kept["balance"], kept["visits"], kept["spend_minor"]) == (2, 2, 2150)
    assert kept["points_spent"] == 1
    assert kept["last_sale_id"] == latest.id
    assert kept["first_purchase_at"] == to_sql_time(first.created_at)
    async with database.transaction() as tx:
        assert await SalesRepository(tx).mark_voided(latest.id, "s", "typo", AT)
        assert not await SalesRepository(tx).mark_voided(latest.id, "s", "again", AT)
    async with database.reading() as tx:
        kept = await tx.fetch_one("SELECT * FROM customers WHERE id = ?", (customer_id,))
        assert await LedgerRepository(tx).balance(customer_id) == 2
    assert kept is not None
    assert (kept["visits"], kept["spend_minor"], kept["last_sale_id"]) == (1, 1250, first.id)
    assert kept["last_purchase_at"] == to_sql_time(first.created_at)
    async with database.transaction() as tx:
        assert await SalesRepository(tx).mark_voided(first.id, "s", "typo", AT)
    async with database.reading() as tx:
        kept = await tx.fetch_one("SELECT * FROM customers WHERE id = ?", (customer_id,))
    assert kept is not None
    assert (kept["visits"], kept["last_purchase_at"], kept["first_purchase_at"]) == (0, None, None)
    # Many rows in one statement, two of them the same customer's, one a key seen before.
    other = await _customer(database, "10", ("CCCC4444", "DDDD5555"))
    async with database.transaction() as tx:
        await LedgerRepository(tx).append_many(
            [
                LedgerRow(customer_id, 5, "many:1"),
                LedgerRow(other, 4, "many:2"),
                LedgerRow(customer_id, -3, "many:3"),
                LedgerRow(customer_id, -1, "r"),
            ],
            LedgerReason.ADJUSTMENT,
            actor="s",
            at=AT,
        )
    async with database.reading() as tx:
        kept_rows = await tx.fetch_all(
            "SELECT id, balance, points_spent FROM customers ORDER BY id"
        )
    assert [(row["id"], row["balance"], row["points_spent"]) for row in kept_rows] == [
        (customer_id, 4, 4),
        (other, 4, 0),
    ]


async def test_a_ledger_summary_matches_its_rows(database: Database) -> None:
    """One query gives /balance its figures: the whole balance, the qualifying points since a
    moment (other reasons and older rows left out), and the newest rows first."""
    customer_id = await _customer(database)
    async with database.reading() as tx:
        empty = await LedgerRepository(tx).summary(customer_id, (LedgerReason.PURCHASE,), AT, 3)
    assert (empty.balance, empty.qualifying, empty.latest) == (0, 0, [])
    rows = [
        ("old", 7, LedgerReason.PURCHASE, AT - timedelta(days=1)),
        ("bought", 5, LedgerReason.PURCHASE, AT),
        ("spent", -4, LedgerReason.REWARD, AT),
        ("friend", 2, LedgerReason.REFERRAL, AT + timedelta(hours=1)),
        ("later", 1, LedgerReason.PURCHASE, AT + timedelta(hours=2)),
    ]
    async with database.transaction() as tx:
        for key, delta, reason, at in rows:
            await LedgerRepository(tx).append(
                customer_id, delta, reason, actor="t", idempotency_key=key, at=at
            )
    async with database.reading() as tx:
        summary = await LedgerRepository(tx).summary(
            customer_id, (LedgerReason.PURCHASE, LedgerReason.REFERRAL), AT, 3
        )
    assert summary.balance == 7 + 5 - 4 + 2 + 1
    assert summary.qualifying == 5 + 2 + 1
    assert [entry.idempotency_key for entry in summary.latest] == ["later", "friend", "spent"]


async def test_the_same_idempotency_key_changes_nothing(database: Database) -> None:
    customer_id = await _customer(database)
    async with database.transaction() as tx:
        ledger = LedgerRepository(tx)
        assert await ledger.append(
            customer_id, 5, LedgerReason.PURCHASE, actor="t", idempotency_key="sale-1", at=AT
        )
        assert not await ledger.append(
            customer_id, 5, LedgerReason.PURCHASE, actor="t", idempotency_key="sale-1", at=AT
        )
        assert await ledger.balance(customer_id) == 5


async def test_ledger_rows_cannot_be_changed_or_deleted(database: Database) -> None:
    customer_id = await _customer(database)
    async with database.transaction() as tx:
        await LedgerRepository(tx).append(
            customer_id, 5, LedgerReason.PURCHASE, actor="t", idempotency_key="k", at=AT
        )
    for statement in ("UPDATE points_ledger SET delta = 50", "DELETE FROM points_ledger"):
        with pytest.raises(INTEGRITY_ERRORS, match="append-only"):
            async with database.transaction() as tx:
                await tx.execute(statement)
    async with database.reading() as tx:
        assert await LedgerRepository(tx).balance(customer_id) == 5


async def test_a_failed_unit_of_work_leaves_nothing_behind(database: Database) -> None:
    customer_id = await _customer(database)
    with pytest.raises(RuntimeError):
        async with database.transaction() as tx:
            await LedgerRepository(tx).append(
                customer_id, 5, LedgerReason.PURCHASE, actor="t", idempotency_key="x", at=AT
            )
            raise RuntimeError("crash between two writes")
    async with database.reading() as tx:
        assert await LedgerRepository(tx).balance(customer_id) == 0


async def test_foreign_keys_are_enforced(database: Database) -> None:
    with pytest.raises(INTEGRITY_ERRORS):
        async with database.transaction() as tx:
            await LedgerRepository(tx).append(
                424242, 5, LedgerReason.PURCHASE, actor="t", idempotency_key="fk", at=AT
            )


async def test_a_second_commit_for_one_update_is_refused_in_tests(database: Database) -> None:
    """Handling an update is one unit of work: its first commit records it as handled, so a
    second commit could be lost to a crash with the update never handled again."""
    async with database.transaction() as tx:
        await InboxRepository(tx).record("telegram", [("77", "5", {})], AT)
        [received] = await InboxRepository(tx).unhandled("telegram", 0, 1)
    claim = UpdateClaim("telegram", received.id, datetime(2026, 11, 24, tzinfo=UTC))
    with enlisting(claim):
        async with database.transaction() as tx:
            await tx.execute("SELECT 1")
        second = f"telegram message {received.id} committed a second time"
        with pytest.raises(SecondCommit, match=second):
            async with database.transaction() as tx:
                await tx.execute("SELECT 1")
        with beside_the_update():  # a report running beside the update has its own commits
            async with database.transaction() as tx:
                await tx.execute("SELECT 1")


async def test_an_inbox_id_is_never_handed_out_twice_even_after_every_row_was_pruned(
    database: Database,
) -> None:
    async with database.transaction() as tx:
        inbox = InboxRepository(tx)
        await inbox.record("whatsapp", [("wamid.1", "34600000001", {})], AT)
        first = await inbox.unhandled("whatsapp", 0, 10)
        assert await inbox.claim(first[0].id, AT)
        assert not await inbox.claim(first[0].id, AT)  # handled once
        await inbox.forget_before(AT + timedelta(days=9))
        await inbox.record("whatsapp", [("wamid.2", "34600000001", {})], AT)
        second = await inbox.unhandled("whatsapp", 0, 10)
    assert second[0].id > first[0].id


async def test_an_upgrade_numbers_the_inbox_above_every_id_already_handled(tmp_path: Path) -> None:
    """A shop upgraded after its newest rows were pruned: its handled ids stay out of reach."""
    path = tmp_path / "old.db"
    database_of_an_earlier_version(path, 18)
    with closing(sqlite3.connect(path)) as connection:
        connection.execute(
            "INSERT INTO processed_updates (channel, update_id, received_at)"
            " VALUES ('whatsapp', 41, '2026-01-01 00:00:00'),"
            " ('telegram', 9001, '2026-01-01 00:00:00')"
        )
        connection.commit()
    database = await SqliteDatabase.open(path)
    try:
        async with database.transaction() as tx:
            inbox = InboxRepository(tx)
            await inbox.record("whatsapp", [("wamid.3", "34600000001", {})], AT)
            [received] = await inbox.unhandled("whatsapp", 0, 10)
            # A Telegram update handled by an older version, handed out again: kept as handled.
            await inbox.record("telegram", [("9001", "5", {"update_id": 9001})], AT)
            assert await inbox.handled_through("telegram", "9001") is not None
            assert not await inbox.unhandled("telegram", 0, 10)
    finally:
        await database.close()
    assert received.id > 41


@pytest.mark.sqlite_only
async def test_sqlite_writes_on_the_loop_leave_checkpoints_to_the_database_thread(
    tmp_path: Path,
) -> None:
    """A message's writes run on the event loop, whose connection never copies the write-ahead
    log into the database itself (a slow disk would stall the loop): every CHECKPOINT_EVERY
    writes that is done beside, so the log is reused instead of growing."""
    path = tmp_path / "wal.db"
    database = await SqliteDatabase.open(path)
    wal = path.with_name("wal.db-wal")
    sizes: list[int] = []
    try:
        for _ in range(3):
            for n in range(CHECKPOINT_EVERY):
                async with database.single_write() as tx:
                    await tx.execute(
                        "INSERT INTO inbox (channel, message_id, person, body, received_at)"
                        " VALUES ('telegram', ?, '5', ?, '2026-01-01 00:00:00')",
                        (f"{len(sizes)}.{n}", "x" * 2000),
                    )
            await asyncio.sleep(0)  # the checkpoint takes the lock first
            async with database.reading():
                sizes.append(wal.stat().st_size)
    finally:
        await database.close()
    assert sizes[2] <= sizes[0] * 1.2  # reused after each checkpoint, not 3x as long


@pytest.mark.sqlite_only
async def test_sqlite_long_work_checkpoints_once_it_is_over(tmp_path: Path) -> None:
    """A daily job commits a slice of customers at a time: the write-ahead log is copied into
    the database once the job is over, not again at each slice, and is then reused."""
    path = tmp_path / "wal.db"
    database = await SqliteDatabase.open(path)
    wal = path.with_name("wal.db-wal")
    slice_bytes = 1000 * 2000
    sizes: list[int] = []
    try:
        for round_ in range(3):
            with long_work():
                for slice_ in range(5):
                    async with database.transaction() as tx:
                        await tx.execute_many(
                            "INSERT INTO inbox (channel, message_id, person, body, received_at)"
                            " VALUES ('telegram', ?, '5', ?, '2026-01-01 00:00:00')",
                            [(f"{round_}.{slice_}.{n}", "x" * 2000) for n in range(1000)],
                        )
                    await asyncio.sleep(0)  # a checkpoint, were one started, would go first
            assert wal.stat().st_size >= 5 * slice_bytes  # every slice still in the log
            async with database.single_write() as tx:  # the next write, outside long work
                await tx.execute("DELETE FROM inbox WHERE message_id LIKE ?", (f"{round_}.%",))
            await asyncio.sleep(0)
            async with database.reading():
                sizes.append(wal.stat().st_size)
    finally:
        await database.close()
    assert sizes[2] <= sizes[0] * 1.2  # reused after each checkpoint, not 3x as long


async def test_postgresql_gathers_statistics_of_a_table_an_insert_grew_by_a_tenth(
    postgresql_url: str,
) -> None:
    """Autovacuum would within a minute; a statement planned meanwhile (a job's next run, seconds
    later in the benchmark) sees the table as it was. Past autovacuum's own threshold only, so
    a sale's one row never pays for it."""
    database = await PostgresDatabase.open(postgresql_url)
    try:
        customer_id = await _customer(database)
        pushes = [NewPush(customer_id, "nudge", f"key:{n}", "pushes/nudge", {}) for n in range(200)]
        async with database.transaction() as tx:
            await OutboxRepository(tx).enqueue_many(pushes, AT)
        fewer = [NewPush(customer_id, "nudge", f"more:{n}", "pushes/nudge", {}) for n in range(60)]
        async with database.transaction() as tx:  # 50 rows and a tenth of 200: not yet
            await OutboxRepository(tx).enqueue_many(fewer, AT)
        async with database.reading() as tx:
            counted = await tx.fetch_all(
                "SELECT relname, reltuples FROM pg_class"
                " WHERE relname IN ('outbox', 'customers') ORDER BY relname"
            )
    finally:
        await database.close()
    # Each as it was last gathered: outbox after the 200 (not 260), customers empty (not 1).
    assert [(row["relname"], row["reltuples"]) for row in counted] == [
        ("customers", 0),
        ("outbox", 200),
    ]


async def test_rows_given_as_one_json_list_arrive_whole_and_in_order(database: Database) -> None:
    """Bulk inserts pass their rows as one JSON list (dialect.rows): quotes, accents, emoji,
    JSON inside text, NULLs and large numbers come through unchanged, in the order given,
    and keys already there are skipped."""
    customer_id = await _customer(database)
    odd = {"context": {"name": 'O\'Brien "Ñandú" 🍷', "note": "a\\b\nc", "big": 2**53 + 1}}
    pushes = [
        NewPush(customer_id, "nudge", f"key:{n}", "pushes/nudge", {**odd, "n": n}) for n in (3, 1)
    ]
    staff = NewPush(
        None, "alert", "key:staff", "alerts/fraud", {}, Identity("whatsapp", "346"), Language.EN
    )
    async with database.transaction() as tx:
        outbox = OutboxRepository(tx)
        await outbox.enqueue_many([*pushes, staff], AT)
        await outbox.enqueue_many([pushes[0]], AT)  # queued before: skipped
        await LedgerRepository(tx).append_many(
            [LedgerRow(customer_id, 7, "odd:'ñ'"), LedgerRow(customer_id, -2, "odd:2")],
            LedgerReason.ADJUSTMENT,
            actor="staff:O'Brien",
            at=AT,
        )
    async with database.reading() as tx:
        rows = await tx.fetch_all("SELECT * FROM outbox ORDER BY id")
        ledger = await tx.fetch_all(
            "SELECT delta, actor, idempotency_key FROM points_ledger ORDER BY id"
        )
        balance = await LedgerRepository(tx).balance(customer_id)
    assert [row["dedupe_key"] for row in rows] == ["key:3", "key:1", "key:staff"]
    assert [json.loads(row["payload"]) for row in rows[:2]] == [push.payload for push in pushes]
    assert (rows[2]["customer_id"], rows[2]["channel_user_id"], rows[2]["language"]) == (
        None,
        "346",
        "en",
    )
    assert [(row["delta"], row["actor"], row["idempotency_key"]) for row in ledger] == [
        (7, "staff:O'Brien", "odd:'ñ'"),
        (-2, "staff:O'Brien", "odd:2"),
    ]
    assert balance == 5


async def _waiting_for_locks(database: Database, count: int) -> None:
    """Until `count` transactions wait for an advisory lock (PostgreSQL's own lock table)."""
    async with asyncio.timeout(5):
        while True:
            async with database.reading() as tx:
                row = await tx.fetch_one(
                    "SELECT COUNT(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                )
            if row is not None and row["n"] >= count:
                return
            await asyncio.sleep(0.01)


async def test_sales_on_other_names_go_on_beside_and_the_same_name_waits(
    database: Database,
) -> None:
    """PostgreSQL: work touching only named things (a clerk, a customer) runs beside such work
    on other names; on a name in use, and for work without names, it waits."""
    if database.dialect.name != "postgresql":
        pytest.skip("SQLite runs every write alone")
    holding, release = asyncio.Event(), asyncio.Event()

    async def sale(clerk: str, customer: str, hold: bool = False) -> None:
        async with database.transaction(touching=(clerk,)) as tx:
            await tx.touch(customer)
            if hold:
                holding.set()
                await release.wait()

    async def whole_shop() -> None:
        async with database.transaction() as tx:
            await tx.execute("SELECT 1")

    first = asyncio.create_task(sale("staff:a", "customer:1", hold=True))
    await holding.wait()
    async with asyncio.timeout(5):  # another clerk, another customer: not held up
        await sale("staff:b", "customer:2")
    same_customer = asyncio.create_task(sale("staff:c", "customer:1"))
    await _waiting_for_locks(database, 1)
    alone = asyncio.create_task(whole_shop())
    await _waiting_for_locks(database, 2)
    assert not same_customer.done() and not alone.done()
    release.set()
    async with asyncio.timeout(5):
        await asyncio.gather(first, same_customer, alone)


async def test_the_night_after_an_erasure_rewrites_the_tables_and_other_nights_do_not(
    database: Database,
) -> None:
    """PostgreSQL: a plain VACUUM leaves erased bytes in free space, so the nightly job writes
    the tables anew (new files), but only when someone was erased since its last run."""
    if database.dialect.name == "sqlite":
        pytest.skip("SQLite overwrites what it deletes: its nightly rewrite does nothing")
    night = ErasureRewrite(database)

    async def customers_file() -> int:
        async with database.single_read() as tx:
            row = await tx.fetch_one("SELECT pg_relation_filenode('customers') AS file")
        assert row is not None
        return int(row["file"])

    customer_id = await _customer(database)
    first = await customers_file()
    await night.run()  # nobody was ever erased
    assert await customers_file() == first
    async with database.transaction() as tx:
        await CustomerRepository(tx).erase(customer_id, AT)
    await night.run()
    rewritten = await customers_file()
    assert rewritten != first
    async with database.single_write() as tx:  # that night's run, as the timetable records it
        await JobRuns(tx).record(ERASURES, AT.date(), AT + 2 * OVERLAP)
    await night.run()  # erased before the last run: nothing owed
    assert await customers_file() == rewritten
