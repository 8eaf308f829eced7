"""Fixtures: a controlled clock, the Bot API stand-in, and the real Application running on it."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.bootstrap import Services
from bot.config import Settings
from bot.inbox import InboxWorker
from bot.program import Program, load_program
from bot.storage import updates
from bot.storage.database import Database, bundled_migrations, long_work
from bot.storage.postgresql import PostgresDatabase
from bot.storage.sqlite import SqliteDatabase
from handlers.telegram.app import build_application, serving
from handlers.telegram.context import INBOX_KEY, SERVICES_KEY, BotApplication
from handlers.telegram.standin import SERVING as standin_serving
from handlers.telegram.standin import FakeTelegram
from handlers.whatsapp.standin import FakeGraph
from tests.postgres import (  # noqa: F401 (fixtures)
    ENGINES,
    empty_postgresql_url,
    every_test_on_postgresql,
    postgresql_server,
    postgresql_url,
    template_for_every_test,
)

START = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
# WhatsApp's settings in the shapes Meta gives: an app secret of 32 hex digits.
SECRET = "0123456789abcdef0123456789abcdef"
VERIFY = "verify-token-of-the-shop"


class FakeClock:
    """Time stands still until a test moves it."""

    def __init__(self, now: datetime = START) -> None:
        self._now = now
        self.slept: list[float] = []

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now += delta

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self._now += timedelta(seconds=seconds)
        await asyncio.sleep(0)


@pytest.fixture(autouse=True)
def one_commit_per_update(monkeypatch: pytest.MonkeyPatch) -> None:
    """Handling that commits twice for one update fails the test (bot/storage/updates.py)."""
    monkeypatch.setattr(updates, "STRICT_ONE_COMMIT", True)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def program() -> Program:
    return load_program(None)


@pytest.fixture(params=ENGINES)
def engine_url(request: pytest.FixtureRequest) -> str | None:
    """DATABASE_URL for a bot run on each engine: None on SQLite."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgresql_url"))
    return None


@pytest.fixture(params=ENGINES)
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """Each storage test runs on SQLite and on PostgreSQL."""
    db: Database
    if request.param == "postgresql":
        db = await PostgresDatabase.open(request.getfixturevalue("postgresql_url"))
    else:
        db = await SqliteDatabase.open(tmp_path / "unit.db")
    yield db
    await db.close()


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraph]:
    standin = FakeGraph(SECRET)
    await standin.start()
    yield standin
    await standin.stop()


@pytest.fixture
async def api(clock: FakeClock) -> AsyncIterator[FakeTelegram]:
    standin = FakeTelegram()
    standin.now = clock.now  # people write on the tests' clock
    await standin.start()
    yield standin
    await standin.stop()


async def set_writable(database: Database, writable: bool) -> None:
    """A full disk, as SQLite shows it (both of the process's connections: a message's work and
    long work run on different ones)."""
    for long in (False, True):
        with long_work() if long else nullcontext():
            async with database.reading() as tx:
                await tx.execute(f"PRAGMA query_only = {'OFF' if writable else 'ON'}")


def settings_for(api: FakeTelegram, database_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "bot_token": "123456:TEST-TOKEN",
        "telegram_api_url": api.url,
        "database_path": database_path,
        "owner_ids": "1",
        "timezone": "Europe/Madrid",
        "default_language": "es",
        "polling_timeout": 1,
        # Time stands still in tests, so a person's allowance would never refill: the flood
        # guard has tests of its own.
        "flood_burst": 10_000,
        **({"database_url": url} if (url := every_test_on_postgresql(database_path)) else {}),
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg, arg-type]


@asynccontextmanager
async def running(application: BotApplication) -> AsyncIterator[BotApplication]:
    """The bot as `loyalty-bot run` serves it, without the signal handling; the stand-in's
    `handled` waits for the bot's inbox."""
    async with serving(application):
        worker: InboxWorker = application.bot_data[INBOX_KEY]
        for url, standin in standin_serving.items():
            if application.bot.base_url.startswith(url):
                standin.handled_check = lambda update_id: worker.finished(str(update_id))
        yield application


@dataclass
class RunningBot:
    application: BotApplication
    api: FakeTelegram
    clock: FakeClock

    @property
    def services(self) -> Services:
        services = self.application.bot_data[SERVICES_KEY]
        assert isinstance(services, Services)
        return services


@pytest.fixture
async def bot(
    api: FakeTelegram, clock: FakeClock, program: Program, tmp_path: Path
) -> AsyncIterator[RunningBot]:
    # The timetable runs on real time; tests run jobs themselves, on the fake clock.
    settings = settings_for(api, tmp_path / "bot.db")
    application = build_application(settings, program, clock, background=False)
    async with running(application):
        yield RunningBot(application, api, clock)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """TEST_ENGINE=postgresql leaves out what only SQLite has (its file, its pragmas, a
    second process given the file) and the recovery rule of the only process."""
    if os.environ.get("TEST_ENGINE") != "postgresql":
        return
    for item in items:
        if item.get_closest_marker("sqlite_only"):
            item.add_marker(pytest.mark.skip(reason="SQLite only"))


def database_of_an_earlier_version(path: Path, migrations: int) -> None:
    """A SQLite file as a shop's database was after its first `migrations` migrations."""
    earlier = bundled_migrations()[:migrations]
    with closing(sqlite3.connect(path)) as connection:
        for _, _, sql in earlier:
            connection.executescript(sql)
        connection.execute(
            "CREATE TABLE schema_migrations"
            " (version INTEGER PRIMARY KEY, name TEXT, applied_at TEXT)"
        )
        connection.executemany(
            "INSERT INTO schema_migrations VALUES (?, ?, '2026-01-01')",
            [(version, name) for version, name, _ in earlier],
        )
        connection.commit()
