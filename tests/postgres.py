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
    _drop(postgresql_server, url)


@pytest.fixture
def empty_postgresql_url(postgresql_server: str) -> Iterator[str]:
    """A new database with nothing in it, not even our schema, dropped after the test."""
    url = new_database(postgresql_server)
    with _admin(url) as connection:
        connection.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    yield url
    _drop(postgresql_server, url)


def _drop(server: str, url: str) -> None:
    with _admin(server) as admin:
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
def template_for_every_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """With TEST_ENGINE=postgresql, the template is made before the first test needs it, and
    the databases that stood in for the tests' files are dropped at the end, as a developer's
    own server is not thrown away after the run."""
    if os.environ.get("TEST_ENGINE") != "postgresql":
        yield
        return
    server = request.getfixturevalue("postgresql_server")
    yield
    for url in _STANDING_IN.values():
        _drop(server, url)
    _STANDING_IN.clear()


def stored_bytes(database_path: Path, database_url: str | None) -> bytes:
    """Every byte the shop's database keeps in its files: SQLite's file and write-ahead log;
    on PostgreSQL each table's, index's and TOAST table's files once a CHECKPOINT wrote them
    (the server's write-ahead log keeps erased data until it is recycled: README)."""
    if database_url is None:
        wal = database_path.with_name(database_path.name + "-wal")
        return b"".join(path.read_bytes() for path in (database_path, wal) if path.exists())
    with _admin(database_url) as admin:
        admin.execute("CHECKPOINT")
        folder = Path(str(admin.execute("SHOW data_directory").fetchone()[0]))  # type: ignore[index]
        relations = admin.execute(
            "SELECT pg_relation_filepath(c.oid) FROM pg_class AS c"
            " JOIN pg_namespace AS n ON n.oid = c.relnamespace"
            " WHERE c.relkind IN ('r', 'i', 't')"
            " AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
        ).fetchall()
    if not os.access(folder, os.R_OK | os.X_OK):
        if os.environ.get("CI") == "true":
            pytest.fail(f"the server's files ({folder}) cannot be read here")
        pytest.skip(f"the server's files ({folder}) cannot be read here")
    segments = [
        segment
        for (relation,) in relations
        for segment in (folder / relation, *folder.glob(f"{relation}.*"))  # 1 GB each
        if segment.exists()
    ]
    return b"".join(segment.read_bytes() for segment in segments)
