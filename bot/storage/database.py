"""The database every repository writes through: one unit of work is one transaction.

Two engines serve it: SQLite (bot/storage/sqlite.py, the default: one file, nothing to install)
and PostgreSQL (bot/storage/postgresql.py, `DATABASE_URL`, for several processes). Both give
the same `Transaction`; what their SQL spells differently is in bot/storage/dialect.py.
"""

from __future__ import annotations

import logging
import re
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from bot.errors import DATABASE_ERRORS
from bot.errors import StorageError as StorageError  # where callers have always found it
from bot.storage.dialect import Dialect

if TYPE_CHECKING:  # the outbox is built on this module
    from bot.storage.outbox import OutboxItem

log = logging.getLogger(__name__)
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
SQL_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
STREAM_CHUNK = 2000

Parameters = Iterable[Any] | Mapping[str, Any]


class Row(Protocol):
    """A result row, read by column name or position (sqlite3.Row, and ours on PostgreSQL)."""

    def __getitem__(self, key: int | str) -> Any: ...

    def keys(self) -> list[str]: ...


class Executed(Protocol):
    """What a statement reports: how many rows it changed."""

    @property
    def rowcount(self) -> int: ...


class Held(Protocol):
    """A lock one process at a time holds across every process serving the shop."""

    async def kept(self) -> bool:
        """Still held (a PostgreSQL session that ended has let it go)."""


class Enlisted(Protocol):
    """Work that must commit together with the next transaction of the current task."""

    async def join(self, tx: Transaction) -> None: ...

    def committed(self, tx: Transaction) -> None: ...


_enlisted: ContextVar[Enlisted | None] = ContextVar("enlisted", default=None)
_long_work: ContextVar[bool] = ContextVar("long_work", default=False)


@contextmanager
def long_work() -> Iterator[None]:
    """The database work inside takes long (a daily job over every customer, a campaign to all
    of them): SQLite runs it on the database's own thread, so that the bot meanwhile goes on
    doing what needs no database (bot/storage/sqlite.py says why the rest does not)."""
    token = _long_work.set(True)
    try:
        yield
    finally:
        _long_work.reset(token)


def in_long_work() -> bool:
    return _long_work.get()


@contextmanager
def enlisting(work: Enlisted | None) -> Iterator[None]:
    """Every transaction opened inside this block (in this task, or tasks it starts) first
    runs `work.join`; `work` decides itself whether it still has anything to write. None:
    the transactions inside are their own, whatever the block is nested in."""
    token = _enlisted.set(work)
    try:
        yield
    finally:
        _enlisted.reset(token)


def enlisted() -> Enlisted | None:
    return _enlisted.get()


def to_sql_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(SQL_TIME_FORMAT)


def from_sql_time(text: str) -> datetime:
    # fromisoformat reads "2026-11-24 10:00:00" too, and far faster than strptime.
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def bundled_migrations(engine: str = "sqlite") -> list[tuple[int, str, str]]:
    """(version, file name, SQL) for every migration shipped for `engine`, oldest first."""
    folder = resources.files("bot.storage").joinpath("migrations").joinpath(engine)
    found = []
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


async def apply_migrations(
    tx: Transaction, engine: str, run: Callable[[Transaction, str], Awaitable[None]]
) -> list[int]:
    """Run (with `run`, the engine's way) every bundled migration of `engine` not recorded
    yet, recording each; returns the versions applied now."""
    await tx.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    done = {row["version"] for row in await tx.fetch_all("SELECT version FROM schema_migrations")}
    applied_now = []
    for version, name, sql in bundled_migrations(engine):
        if version in done:
            continue
        log.info("applying migration %s", name)
        await run(tx, sql)
        await tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
            (version, name, to_sql_time(datetime.now(UTC))),
        )
        applied_now.append(version)
    return applied_now


@dataclass(frozen=True)
class Selected:
    """A set a job chose, kept as a query for the next statements to read from (INSERT ...
    SELECT): tens of thousands of rows go from one table to another without passing through
    Python. Each reader names the columns it needs (a push: `customer_id`, `dedupe_key`, and
    `about` when its payload carries it)."""

    sql: str
    parameters: dict[str, object]


class Transaction(ABC):
    """The statements of one unit of work; repositories take one of these."""

    dialect: Dialect

    def __init__(self) -> None:
        # Messages this unit of work queued for the person they tell, sent right after the
        # update that caused them is handled (bot/incoming.py); see `on_commit`.
        self.after_commit: list[OutboxItem] = []
        self.left_to_dispatcher = False  # for the dispatcher, which is woken after the commit

    def on_commit(self, item: OutboxItem) -> None:
        """Send `item` (already in the outbox, in this transaction) once this commits."""
        self.after_commit.append(item)

    async def insert(self, sql: str, parameters: Parameters = ()) -> int | None:
        """An INSERT's new row id; None when it inserted nothing (ON CONFLICT DO NOTHING)."""
        row = await self.fetch_one(f"{sql} RETURNING id", parameters)
        return None if row is None else int(row["id"])

    async def touch(self, name: str) -> None:
        """In a transaction `touching` names: this one too, from now on (waiting while other
        work holds it). Names are taken staff first, then customers, newest first (a customer,
        then whoever referred them), so that two transactions never wait for each other."""
        return None  # an engine that runs writes one at a time has nothing more to take

    @abstractmethod
    async def execute(self, sql: str, parameters: Parameters = ()) -> Executed: ...

    @abstractmethod
    async def execute_many(self, sql: str, rows: Iterable[Parameters]) -> None:
        """One statement over many rows."""

    @abstractmethod
    async def fetch_one(self, sql: str, parameters: Parameters = ()) -> Row | None: ...

    @abstractmethod
    async def fetch_all(self, sql: str, parameters: Parameters = ()) -> list[Row]: ...

    @abstractmethod
    def stream(self, sql: str, parameters: Parameters = ()) -> AsyncIterator[Row]:
        """Rows a chunk at a time, for results too large to hold at once (exports)."""


class Database(ABC):
    """One shop's database: transactions, migrations and the engine's upkeep."""

    dialect: Dialect
    # A short name for logs and check-config: the file, or the server without its password.
    where: str
    # Whether other processes may serve the same shop (PostgreSQL), so work in hand must be
    # claimed from them.
    shared: bool

    def __init__(self) -> None:
        # Called once a commit has written to the outbox: the dispatcher wakes for it.
        self.outbox_committed: Callable[[], None] = lambda: None

    @abstractmethod
    def transaction(
        self, *, alone: bool = True, touching: tuple[str, ...] = ()
    ) -> AbstractAsyncContextManager[Transaction]:
        """BEGIN ... COMMIT, or ROLLBACK on any error: all or nothing. Write transactions
        of a shop run one at a time, as they always have on SQLite; `alone=False` for work
        that reads nothing it decides on (recording what arrived), which PostgreSQL then runs
        beside the others.

        `touching`: work that changes and decides on only what these names stand for (a
        staff member, and the customers it names as it finds them: `Transaction.touch`).
        PostgreSQL runs it beside such work on other names, and apart from all other writes;
        SQLite, one at a time as ever."""

    @abstractmethod
    def single_write(self, *, alone: bool = True) -> AbstractAsyncContextManager[Transaction]:
        """For a unit of work that is exactly one statement (atomic by itself); `alone` as
        for `transaction`."""

    @abstractmethod
    def reading(self) -> AbstractAsyncContextManager[Transaction]:
        """A consistent read of several queries that writes nothing."""

    @abstractmethod
    def single_read(self) -> AbstractAsyncContextManager[Transaction]:
        """For a read that is exactly one query (consistent by itself), such as those every
        incoming message makes: PostgreSQL then spares the trips for BEGIN and COMMIT."""

    @abstractmethod
    def exclusively(self, name: str) -> AbstractAsyncContextManager[Held | None]:
        """Held by this process, or None while another process holds it."""

    @abstractmethod
    def serving(self, name: str) -> AbstractAsyncContextManager[bool]:
        """True while this process serves `name` (a person's line of messages), False when
        another process does; cheap enough for every line of messages."""

    @abstractmethod
    def hearing_others(self) -> AbstractAsyncContextManager[None]:
        """While inside, a commit by another process that queues work for the dispatcher
        calls `outbox_committed` here too."""

    @abstractmethod
    async def migrate(self) -> list[int]:
        """Apply every bundled migration not yet recorded; returns the versions applied now."""

    async def check_writable(self, at: datetime) -> str | None:
        """None while the database takes a write; else the engine's reason (GET /healthz)."""
        try:
            async with self.single_write() as tx:
                await tx.execute(
                    "INSERT INTO liveness (id, checked_at) VALUES (1, ?)"
                    " ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at",
                    (to_sql_time(at),),
                )
        except DATABASE_ERRORS as error:
            return str(error)
        return None

    @abstractmethod
    async def checkpoint(self) -> None:
        """After an erasure: what was deleted leaves the engine's own logs and old row
        versions now (the free space they leave: `rewrite_erased`)."""

    @abstractmethod
    async def rewrite_erased(self) -> None:
        """Rewrite the tables erasures change, so that no erased bytes stay in the free space
        of their pages (a nightly job: it holds each table while it copies it)."""

    @abstractmethod
    async def settle(self) -> None:
        """After a whole shop was copied in: the planner's statistics gathered, so that its
        first jobs are not planned for empty tables."""

    @abstractmethod
    async def close(self) -> None: ...


async def open_database(
    *, path: Path, url: str | None = None, backups: Path | None = None
) -> Database:
    """PostgreSQL when `url` is given (DATABASE_URL), else the SQLite file at `path`."""
    if url:
        from bot.storage.postgresql import PostgresDatabase

        return await PostgresDatabase.open(url)
    from bot.storage.sqlite import SqliteDatabase

    return await SqliteDatabase.open(path, backups=backups)


async def open_reader(database: Database, *, path: Path) -> Database:
    """A connection for long reports (/stats, /export) that never holds up the counter."""
    from bot.storage.sqlite import SqliteDatabase

    if isinstance(database, SqliteDatabase):
        return await SqliteDatabase.open_reader(path)
    return database  # PostgreSQL: every read has its own snapshot already


def split_statements(sql: str, complete: Callable[[str], bool]) -> list[str]:
    """A migration's statements; `complete` says when one ends (keeping triggers whole).

    Running the file as one script would commit on its own on SQLite, so a failing migration
    could be left half-applied."""
    statements, current = [], ""
    for line in sql.splitlines(keepends=True):
        if not current and (not line.strip() or line.lstrip().startswith("--")):
            continue
        current += line
        if complete(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        raise StorageError(f"migration ends with an incomplete statement: {current.strip()[:60]}")
    return statements
