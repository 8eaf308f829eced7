"""`loyalty-bot migrate-db`: a shop built by the flows moves to PostgreSQL and back, whole."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import pytest

from bot.app import migrate_database
from bot.bootstrap import Services, close_services, open_services
from bot.config import Settings
from bot.domain.models import Identity, Language, LedgerReason, Redemption
from bot.domain.rewards import RedemptionView
from bot.messages import Messages
from bot.program import Program
from bot.storage.backups import BackupError
from bot.storage.database import Database, bundled_migrations
from bot.storage.dumps import dump, restore
from bot.storage.ledger import LedgerRepository
from bot.storage.moving import MoveError, move
from bot.storage.postgresql import PostgresDatabase
from bot.storage.sqlite import SqliteDatabase
from handlers.telegram.standin import FakeTelegram
from tests.conftest import START, FakeClock, settings_for
from tests.flows import CLERK, enrol, sell


async def _shop(services: Services, clock: FakeClock) -> None:
    """Members (one invited by another), sales, a reward taken, a language changed, and a
    member who asked to be forgotten: every kind of row the flows write."""
    ana = await enrol(services.registration, 801, birthday="15/3")
    friend = await enrol(services.registration, 802, referral_code=ana.referral_code)
    for _ in range(4):
        await sell(services.sales, ana, 3)
        clock.advance(timedelta(days=3))
    await sell(services.sales, friend, 2)
    await services.jobs.run("surveys")
    code = await services.rewards.request_reward(ana, "free_bottle")
    assert isinstance(code, Redemption)
    assert isinstance(await services.rewards.confirm(CLERK, code.code), RedemptionView)
    await services.membership.set_language(friend, Language.EN)
    gone = await enrol(services.registration, 803)
    await services.membership.forget(gone, Identity("telegram", "803"))


@asynccontextmanager
async def _services(
    settings: Settings, program: Program, clock: FakeClock
) -> AsyncIterator[Services]:
    """The core as a process opens it on `settings`, closed at the end."""
    services = await open_services(
        settings, program, clock, Messages(settings.zone, program.shop.money)
    )
    try:
        yield services
    finally:
        await close_services(services, None)


_LEDGER_SUMS = "SELECT customer_id, SUM(delta) AS balance FROM points_ledger GROUP BY customer_id"
_KEPT = "SELECT id AS customer_id, balance FROM customers WHERE balance <> 0"
_SPENT = (
    "SELECT customer_id, -SUM(delta) AS balance FROM points_ledger WHERE delta < 0"
    " GROUP BY customer_id"
)
_KEPT_SPENT = "SELECT id AS customer_id, points_spent AS balance FROM customers"


async def _balances(database: Database, query: str = _LEDGER_SUMS) -> dict[int, int]:
    async with database.reading() as tx:
        rows = await tx.fetch_all(query)
    return {int(row["customer_id"]): int(row["balance"]) for row in rows if row["balance"]}


@pytest.mark.sqlite_only
async def test_a_shop_moves_to_postgresql_and_back_with_every_row_and_balance(
    api: FakeTelegram, clock: FakeClock, program: Program, tmp_path: Path, postgresql_url: str
) -> None:
    settings = settings_for(api, tmp_path / "shop.db")
    async with _services(settings, program, clock) as services:
        await _shop(services, clock)

    lines = await migrate_database(settings, postgresql_url)
    assert "balances of 2 customers match" in lines[1]  # the forgotten one had none
    assert lines[2] == f"to use the copy, set DATABASE_URL={postgresql_url} in .env"

    on_postgresql = settings_for(api, tmp_path / "unused.db", database_url=postgresql_url)
    back = tmp_path / "back.db"
    lines = await migrate_database(on_postgresql, str(back))
    assert lines[2] == f"to use the copy, set DATABASE_PATH={back} in .env and remove DATABASE_URL"

    original = await SqliteDatabase.open(tmp_path / "shop.db")
    server = await PostgresDatabase.open(postgresql_url)
    returned = await SqliteDatabase.open(back)
    try:
        balances = await _balances(original)
        assert balances and max(balances.values()) > 0
        assert await _balances(server) == balances == await _balances(returned)
        # The balances kept in the customer rows came along (copied, or rebuilt by the
        # triggers), and the triggers are on again in the copy.
        for copy in (server, returned):
            assert await _balances(copy, _KEPT) == balances
        spent = await _balances(original, _SPENT)  # the reward Ana took
        assert spent and all(
            [await _balances(db, _KEPT_SPENT) == spent for db in (original, server, returned)]
        )
        someone = max(balances, key=lambda customer: balances[customer])
        async with server.transaction() as tx:
            await LedgerRepository(tx).append(
                someone, 5, LedgerReason.ADJUSTMENT, actor="t", idempotency_key="moved", at=START
            )
        assert (await _balances(server, _KEPT))[someone] == balances[someone] + 5
        # Each copy's planner has its statistics: its first jobs are not planned for empty tables.
        async with server.reading() as tx:
            analysed = await tx.fetch_one(
                "SELECT reltuples FROM pg_class WHERE relname = 'customers'"
            )
        async with returned.reading() as tx:
            sampled = await tx.fetch_one("SELECT stat FROM sqlite_stat1 WHERE tbl = 'customers'")
        assert analysed is not None and analysed["reltuples"] == len(balances) + 1
        assert sampled is not None and str(sampled["stat"]).startswith(str(len(balances) + 1))
        # The copy goes on where the shop left off: new rows are numbered after the old.
        async with _services(on_postgresql, program, clock) as services:
            newcomer = await enrol(services.registration, 804)
            assert newcomer.id > max(balances)
    finally:
        for database in (original, server, returned):
            await database.close()


@pytest.mark.sqlite_only
async def test_a_target_that_holds_a_shop_is_refused_and_left_as_it_was(
    database: Database, tmp_path: Path, clock: FakeClock, api: FakeTelegram, program: Program
) -> None:
    settings = settings_for(api, tmp_path / "shop.db")
    async with _services(settings, program, clock) as services:
        await enrol(services.registration, 811)
    # Into a shop of its own (the engine-parametrised `database`), nothing is merged.
    async with database.transaction() as tx:
        await tx.execute(
            "INSERT INTO program_history (rules, recorded_at) VALUES ('{}', '2026-11-24 10:00:00')"
        )
    source = await SqliteDatabase.open(tmp_path / "shop.db")
    try:
        with pytest.raises(MoveError, match="program_history has rows"):
            await move(source, database)
    finally:
        await source.close()
    async with database.reading() as tx:
        row = await tx.fetch_one("SELECT COUNT(*) AS n FROM customers")
    assert row is not None and row["n"] == 0


async def test_a_postgresql_shop_is_backed_up_with_pg_dump_and_restored_into_an_empty_database(
    api: FakeTelegram,
    clock: FakeClock,
    program: Program,
    tmp_path: Path,
    postgresql_url: str,
    empty_postgresql_url: str,
) -> None:
    settings = settings_for(api, tmp_path / "unused.db", database_url=postgresql_url)
    async with _services(settings, program, clock) as services:
        await _shop(services, clock)
        balances = await _balances(services.database)
    folder = tmp_path / "backups"
    folder.mkdir()
    backup = await asyncio.to_thread(dump, postgresql_url, folder)
    assert backup.path.suffix == ".dump" and backup.size_bytes > 0
    assert backup.path.stat().st_mode & 0o077 == 0  # the bot's user's alone
    with pytest.raises(BackupError, match="not empty"):
        await asyncio.to_thread(restore, backup.path, postgresql_url)
    await asyncio.to_thread(restore, backup.path, empty_postgresql_url)
    restored = await PostgresDatabase.open(empty_postgresql_url)
    try:
        assert await _balances(restored) == balances
    finally:
        await restored.close()


async def test_two_processes_starting_together_on_an_empty_postgresql_migrate_it_once(
    empty_postgresql_url: str,
) -> None:
    first, second = await asyncio.gather(
        PostgresDatabase.open(empty_postgresql_url), PostgresDatabase.open(empty_postgresql_url)
    )
    try:
        async with first.reading() as tx:
            rows = await tx.fetch_all("SELECT version FROM schema_migrations")
        assert [row["version"] for row in rows] == [
            version for version, _, _ in bundled_migrations("postgresql")
        ]
    finally:
        await first.close()
        await second.close()
