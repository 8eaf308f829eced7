"""SQLite, the default engine: one file in WAL mode, opened twice by the process.

A message's statements run on the event loop, on a plain sqlite3 connection: each takes
microseconds, and a trip to aiosqlite's thread and back took ten times that once the loop was
busy (a sale's dozen statements held the database for 3.5 ms, which capped a shop at ~250
sales a second). Work marked `long_work` (the daily jobs, a campaign to every customer) runs
on the aiosqlite connection's thread, so the bot goes on answering what needs no database;
so do migrations and upkeep. Units of work take turns (bot/storage/turns.py), which makes each
atomic for the others, whichever connection runs it; recording what arrived goes first."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import aiosqlite

from bot.errors import StorageError
from bot.storage.backups import (
    APPLICATION_ID,
    OWNERSHIP,
    PRIVATE_FILE,
    copy_pages,
    dated_backup_path,
    ownership,
)
from bot.storage.database import (
    STREAM_CHUNK,
    Database,
    Executed,
    Held,
    Parameters,
    Row,
    Transaction,
    apply_migrations,
    bundled_migrations,
    enlisted,
    in_long_work,
    split_statements,
)
from bot.storage.dialect import SQLITE
from bot.storage.turns import Turns

log = logging.getLogger(__name__)
CHECKPOINT_EVERY = 200  # writes on the loop (a few pages each; SQLite's own default: 1,000 pages)
CONNECTION_PRAGMAS = (
    "PRAGMA busy_timeout = 5000",
    # Deleted rows are overwritten with zeros: an erased customer's data leaves the file.
    "PRAGMA secure_delete = ON",
    "PRAGMA foreign_keys = ON",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA wal_autocheckpoint = 0",  # see SqliteDatabase._written
)


class SqliteDatabase(Database):
    """Serialises access to one aiosqlite connection.

    aiosqlite runs a connection on one thread, but two coroutines could still interleave their
    statements inside one transaction; the lock makes each unit of work atomic for the others.
    """

    dialect = SQLITE
    shared = False

    def __init__(
        self, connection: aiosqlite.Connection, *, where: str, snapshot_reads: bool
    ) -> None:
        super().__init__()
        self._connection = connection
        self._on_the_loop: sqlite3.Connection | None = None  # see the module's docstring
        self._writes_since_checkpoint = 0
        self._checkpointing: asyncio.Task[None] | None = None
        self.where = where
        self._turns = Turns()
        self._snapshot_reads = snapshot_reads

    @classmethod
    async def open(cls, path: Path, *, backups: Path | None = None) -> Database:
        """Open (or create) and migrate; before migrating a database that has data, copy it
        into `backups` (default: a `backups` folder beside it)."""
        existed = _has_data(path)
        try:
            connection = await aiosqlite.connect(str(path), isolation_level=None)
        except Exception as error:
            raise StorageError(f"DATABASE_PATH {path}: cannot be opened ({error})") from error
        connection.row_factory = aiosqlite.Row
        # Every write of this process goes through this connection's lock, so reads under the
        # lock see no change midway and need no transaction of their own.
        database = cls(connection, where=str(path), snapshot_reads=False)
        try:
            await database._configure()
            if existed:
                await database._refuse_a_stranger(path)
            if existed and pending_migrations(path):
                await _backup_before_migrating(path, backups or path.parent / "backups")
            if await database.migrate():  # what they wrote goes into the file now, not beside
                await connection.execute_fetchall("PRAGMA wal_checkpoint(PASSIVE)")
            await connection.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            database._on_the_loop = _on_the_loop(path)
            _make_private(path)
        except (sqlite3.Error, StorageError) as error:
            await connection.close()  # its thread would keep the process alive
            if isinstance(error, StorageError):
                raise
            raise StorageError(_explain(path, error)) from error
        if not existed:
            log.warning("created a new, empty database at %s", path)
        return database

    @classmethod
    async def open_reader(cls, path: Path | str) -> Database:
        """A second, read-only connection for long reports (/stats, /export): in WAL mode it
        reads while the main connection writes, so a report never holds up the counter."""
        try:
            connection = await aiosqlite.connect(
                _read_only_uri(path), uri=True, isolation_level=None
            )
        except Exception as error:
            raise StorageError(f"DATABASE_PATH {path}: cannot be read ({error})") from error
        connection.row_factory = aiosqlite.Row
        await connection.execute("PRAGMA busy_timeout = 5000")
        await connection.execute("PRAGMA query_only = ON")
        # The main connection writes beside this one: a report reads from one snapshot.
        return cls(connection, where=str(path), snapshot_reads=True)

    async def _configure(self) -> None:
        # Each read to its end: a pragma's row left unread keeps its statement open, and a
        # checkpoint on this connection then fails ("database table is locked").
        for pragma in (*CONNECTION_PRAGMAS, "PRAGMA journal_mode = WAL"):
            await self._connection.execute_fetchall(pragma)

    async def _refuse_a_stranger(self, path: Path) -> None:
        """A file with tables of somebody else's is never migrated into ours."""
        rows = await self._connection.execute_fetchall(OWNERSHIP)
        if ownership(*next(iter(rows))) == "stranger":
            raise StorageError(
                f"DATABASE_PATH {path}: it is not a loyalty-bot database; nothing was changed"
            )

    async def migrate(self) -> list[int]:
        """Apply every bundled migration not yet recorded; returns the versions applied now."""

        async def run(tx: Transaction, sql: str) -> None:
            for statement in split_statements(sql, sqlite3.complete_statement):
                await tx.execute(statement)

        async with self.transaction() as tx:
            return await apply_migrations(tx, "sqlite", run)

    def _unit(self) -> Transaction:
        """Where this unit of work runs its statements (see the module's docstring)."""
        if self._on_the_loop is None or in_long_work():
            return SqliteTransaction(self._connection)
        return OnTheLoop(self._on_the_loop)

    @asynccontextmanager
    async def transaction(
        self, *, alone: bool = True, touching: tuple[str, ...] = ()
    ) -> AsyncIterator[Transaction]:
        """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any error: all or nothing. SQLite has
        one writer: every write runs alone, whatever it touches."""
        work = enlisted()
        async with self._turns.turn(first=not alone):  # what arrived is written first
            tx = self._unit()
            await tx.execute("BEGIN IMMEDIATE")
            try:
                if work is not None:
                    await work.join(tx)
                yield tx
            except BaseException:
                await tx.execute("ROLLBACK")
                raise
            else:
                await tx.execute("COMMIT")
                if work is not None:
                    work.committed(tx)
                if tx.left_to_dispatcher:
                    self.outbox_committed()
        self._written(tx)

    @asynccontextmanager
    async def exclusively(self, name: str) -> AsyncIterator[Held | None]:
        # One process per file (the file lock at start): it holds every such lock.
        yield _OnlyProcess()

    @asynccontextmanager
    async def serving(self, name: str) -> AsyncIterator[bool]:
        yield True  # the only process

    @asynccontextmanager
    async def hearing_others(self) -> AsyncIterator[None]:
        yield  # there are none

    @asynccontextmanager
    async def single_write(self, *, alone: bool = True) -> AsyncIterator[Transaction]:
        """For a unit of work that is exactly one statement: SQLite makes a lone statement
        atomic by itself, which saves the trips for BEGIN and COMMIT."""
        async with self._turns.turn(first=not alone):
            tx = self._unit()
            yield tx
        if tx.left_to_dispatcher:
            self.outbox_committed()
        self._written(tx)

    def _written(self, tx: Transaction) -> None:
        """Neither connection checkpoints by itself: copying the write-ahead log into the
        database can take a slow disk tens of ms, which would stall the loop, and a daily job
        committing a slice of customers at a time would copy its pages again at each slice.
        aiosqlite's thread does it beside, every CHECKPOINT_EVERY writes on the loop, and
        after any transaction of long work at the first write once the long work is over."""
        if self._on_the_loop is None:
            return  # still opening: `open` checkpoints after the migrations itself
        self._writes_since_checkpoint += 1 if isinstance(tx, OnTheLoop) else CHECKPOINT_EVERY
        if in_long_work():
            return
        if self._writes_since_checkpoint >= CHECKPOINT_EVERY and self._checkpointing is None:
            self._writes_since_checkpoint = 0
            self._checkpointing = asyncio.create_task(self._checkpoint_beside())

    async def _checkpoint_beside(self) -> None:
        try:
            async with self._turns.turn():
                await self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as error:  # the next one copies what this one could not
            log.warning("could not checkpoint the write-ahead log: %s", error)
        finally:
            self._checkpointing = None

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[Transaction]:
        """A consistent read of several queries that writes nothing."""
        async with self._turns.turn():
            if not self._snapshot_reads:
                yield self._unit()
                return
            await self._connection.execute("BEGIN")
            try:
                yield SqliteTransaction(self._connection)
            finally:
                await self._connection.execute("ROLLBACK")

    @asynccontextmanager
    async def single_read(self) -> AsyncIterator[Transaction]:
        async with self._turns.turn():
            yield self._unit()

    async def checkpoint(self) -> None:
        """Copy the write-ahead log into the database and empty it (old page images included);
        if a reader holds it, what is left goes at the next checkpoint."""
        async with self._turns.turn():
            await self._connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    async def rewrite_erased(self) -> None:
        """Nothing to do: SQLite overwrote what was deleted (secure_delete)."""

    async def settle(self) -> None:
        async with self._turns.turn():
            await self._connection.execute("ANALYZE")

    async def close(self) -> None:
        if self._checkpointing is not None:
            await self._checkpointing
        if self._on_the_loop is not None:
            self._on_the_loop.close()
        # SQLite's advice for long-lived connections: refresh the planner's statistics on close.
        with contextlib.suppress(sqlite3.Error):
            await self._connection.execute("PRAGMA optimize")
        await self._connection.close()


class _OnlyProcess:
    async def kept(self) -> bool:
        return True


class SqliteTransaction(Transaction):
    """The statements of one unit of work; repositories take one of these."""

    dialect = SQLITE

    def __init__(self, connection: aiosqlite.Connection) -> None:
        super().__init__()
        self._connection = connection

    async def execute(self, sql: str, parameters: Parameters = ()) -> Executed:
        cursor: Executed = await self._connection.execute(sql, _bound(parameters))
        return cursor

    async def execute_many(self, sql: str, rows: Iterable[Parameters]) -> None:
        """One statement over many rows in a single round trip to the database thread."""
        await self._connection.executemany(sql, [_bound(row) for row in rows])

    # A cursor costs three trips to the database thread (execute, fetch, close); these take one.
    async def fetch_one(self, sql: str, parameters: Parameters = ()) -> Row | None:
        rows = await self._connection.execute_fetchall(sql, _bound(parameters))
        return next(iter(rows), None)

    async def fetch_all(self, sql: str, parameters: Parameters = ()) -> list[Row]:
        return list(await self._connection.execute_fetchall(sql, _bound(parameters)))

    async def stream(self, sql: str, parameters: Parameters = ()) -> AsyncIterator[Row]:
        """Rows a chunk at a time, for results too large to hold at once (exports)."""
        async with self._connection.execute(sql, _bound(parameters)) as cursor:
            while rows := await cursor.fetchmany(STREAM_CHUNK):
                for row in rows:
                    yield row


class OnTheLoop(Transaction):
    """The statements of one unit of work, run on the event loop (see the module's docstring)."""

    dialect = SQLITE

    def __init__(self, connection: sqlite3.Connection) -> None:
        super().__init__()
        self._connection = connection

    async def execute(self, sql: str, parameters: Parameters = ()) -> Executed:
        return self._connection.execute(sql, _bound(parameters))

    async def execute_many(self, sql: str, rows: Iterable[Parameters]) -> None:
        self._connection.executemany(sql, [_bound(row) for row in rows])

    async def fetch_one(self, sql: str, parameters: Parameters = ()) -> Row | None:
        row: Row | None = self._connection.execute(sql, _bound(parameters)).fetchone()
        return row

    async def fetch_all(self, sql: str, parameters: Parameters = ()) -> list[Row]:
        return self._connection.execute(sql, _bound(parameters)).fetchall()

    async def stream(self, sql: str, parameters: Parameters = ()) -> AsyncIterator[Row]:
        cursor = self._connection.execute(sql, _bound(parameters))
        try:
            while rows := cursor.fetchmany(STREAM_CHUNK):
                for row in rows:
                    yield row
        finally:
            cursor.close()


def _on_the_loop(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(str(path), isolation_level=None)
    connection.row_factory = sqlite3.Row
    for pragma in CONNECTION_PRAGMAS:
        connection.execute(pragma)
    return connection


async def _backup_before_migrating(path: Path, folder: Path) -> None:
    target = dated_backup_path(folder, datetime.now().astimezone(), "before-upgrade")
    backup = await asyncio.to_thread(copy_pages, path, target)
    log.warning("upgrading the database; a copy as it was is at %s", backup.path)


def _make_private(path: Path) -> None:
    """The database and its write-ahead files, readable by the bot's user alone (also those
    made before this rule, or by a copy with a wider umask)."""
    for part in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(part, PRIVATE_FILE)


def _has_data(path: Path) -> bool:
    return path.exists() and path.stat().st_size > 0


def pending_migrations(path: Path) -> list[int]:
    """The bundled migrations the database file at `path` has not had, read without changing
    it: none for a file without our schema yet."""
    if not _has_data(path):
        return []
    try:
        with contextlib.closing(sqlite3.connect(_read_only_uri(path), uri=True)) as connection:
            done = {row[0] for row in connection.execute("SELECT version FROM schema_migrations")}
    except sqlite3.Error:  # no schema yet, or not ours (opening it says so)
        return []
    return [version for version, _, _ in bundled_migrations() if version not in done]


def _explain(path: Path, error: sqlite3.Error) -> str:
    """One sentence an operator can act on, for a database that cannot be opened or written."""
    text = str(error)
    if "readonly" in text or "read-only" in text:
        hint = "it cannot be written: check the permissions of the file and of its folder"
    elif "full" in text:
        hint = "the disk is full: free some space"
    elif "not a database" in text or "malformed" in text:
        hint = "it is not a loyalty-bot database, or it is damaged: restore a backup"
    else:
        hint = "check that the path is right and the folder exists"
    return f"DATABASE_PATH {path}: {hint} ({text})"


def _read_only_uri(path: Path | str) -> str:
    """file:///absolute/path?mode=ro, with the path percent-encoded as URIs need."""
    return Path(os.path.abspath(path)).as_uri() + "?mode=ro"


def _bound(parameters: Parameters) -> tuple[Any, ...] | Mapping[str, Any]:
    """Positional (?) parameters as a tuple; named (:name) ones as the mapping they are."""
    return parameters if isinstance(parameters, Mapping) else tuple(parameters)
