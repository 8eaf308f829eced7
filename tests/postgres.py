"""PostgreSQL for the tests: a fresh database per test, copied from one migrated template.

scripts/test.sh starts a throwaway server and sets TEST_DATABASE_URL. Without it the PostgreSQL
half of the engine-parametrised tests is skipped, except under CI=true, where that fails the run.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from bot.storage.postgresql import PostgresDatabase

ENGINES = ["sqlite", "postgresql"]
TEMPLATE = f"loyalty_template_{os.getpid()}"  # two test runs may share a server


def with_database(url: str, name: str) -> str:
    """The same server's URL for database `name` (a postgresql:// URL, as DATABASE_URL is)."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def _admin(url: str) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=True)


@pytest.fixture(scope="session")
def postgresql_server() -> Iterator[str]:
    """The server's URL, with a migrated template database made once per run."""
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but TEST_DATABASE_URL is not set: run bash scripts/test.sh")
        pytest.skip("no PostgreSQL server (bash scripts/test.sh starts one)")
    with _admin(url) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {TEMPLATE}")
    template_url = with_database(url, TEMPLATE)

    async def migrate() -> None:
        database = await PostgresDatabase.open(template_url)
        await database.close()

    # Asked for by async fixtures, so an event loop may be running here already.
    with ThreadPoolExecutor(1) as thread:
        thread.submit(asyncio.run, migrate()).result()
    yield url
    with _admin(url) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")


@pytest.fixture
def postgresql_url(postgresql_server: str) -> Iterator[str]:
    """A new database of our schema, dropped after the test."""
    url = new_database(postgresql_server)
    yield url
    with _admin(postgresql_server) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {urlsplit(url).path[1:]} WITH (FORCE)")


def new_database(server: str) -> str:
    name = f"test_{uuid.uuid4().hex[:12]}"
    with _admin(server) as admin:
        admin.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    return with_database(server, name)


_STANDING_IN: dict[Path, str] = {}


def every_test_on_postgresql(path: Path) -> str | None:
    """TEST_ENGINE=postgresql: a PostgreSQL database for each SQLite file a test's bot would
    use (the bot's settings in tests ask here, the same file the same database), so the
    whole suite runs on PostgreSQL."""
    server = os.environ.get("TEST_DATABASE_URL")
    if os.environ.get("TEST_ENGINE") != "postgresql" or not server:
        return None
    if path not in _STANDING_IN:
        _STANDING_IN[path] = new_database(server)
    return _STANDING_IN[path]


@pytest.fixture(scope="session", autouse=True)
def template_for_every_test(request: pytest.FixtureRequest) -> None:
    """With TEST_ENGINE=postgresql, the template is made before the first test needs it."""
    if os.environ.get("TEST_ENGINE") == "postgresql":
        request.getfixturevalue("postgresql_server")
