"""PostgreSQL, for a shop served by several processes: psycopg 3 with a connection pool.

Writes are serialised across every process by a transaction-scoped advisory lock, as SQLite
serialises them with its write lock: the domain's read-then-write units of work (a balance
checked, then spent) stay correct without a retry loop, and reads never wait for it. Work
that names everything it touches (a sale: the clerk, the customer) holds that lock shared and
each name alone, so sales for different customers go on side by side.
Parameters are bound by the server and statements prepared once used a few times (psycopg's
default: a sale at the counter measured 8% faster than with binding on the client); where the server
cannot tell a parameter's type from where it stands (`:one IS NULL`), the SQL casts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from functools import lru_cache
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.adapt import Dumper, Loader
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import RowMaker
from psycopg_pool import AsyncConnectionPool

from bot.errors import StorageError
from bot.storage.database import (
    STREAM_CHUNK,
    Database,
    Executed,
    Held,
    Parameters,
    Row,
    Transaction,
    apply_migrations,
    enlisted,
)
from bot.storage.dialect import POSTGRESQL

log = logging.getLogger(__name__)

# Advisory lock keys (any 64-bit numbers that nothing else on the server uses).
WRITES_LOCK = 0x4C4F5941_0001  # a write transaction holds it alone, or shared with names
MIGRATIONS_LOCK = 0x4C4F5941_0002  # two processes starting together migrate once
POOL_SIZE = 20
INTAKE_POOL_SIZE = 4
OUTBOX_QUEUED = "loyalty_outbox"  # the channel NOTIFY wakes the leader's dispatcher on
LISTEN_AGAIN_SECONDS = 5
# Autovacuum's own rule for gathering a table's statistics again: once more than 50 rows and a
# tenth of the table changed (autovacuum_analyze_threshold, autovacuum_analyze_scale_factor).
ANALYZE_ROWS, ANALYZE_SHARE = 50, 0.1
_INSERT_INTO = re.compile(r"\s*INSERT INTO (\w+)")
# Tables whose rows an erasure changes (consent_log keeps only ids and yes/no): vacuumed at
# once, so the old row versions go, and written anew that night (`rewrite_erased`).
ERASED_FROM = (
    "customers",
    "customer_identities",
    "link_offers",
    "registration_drafts",
    "surveys",
    "points_ledger",
    "audit_log",
    "outbox",
    "inbox",
)


class PgRow(tuple[Any, ...]):
    """A row read by column name or position, as sqlite3.Row is."""

    _names: dict[str, int]

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._names[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._names)


@lru_cache(maxsize=1024)
def _row_class(names: tuple[str, ...]) -> type[PgRow]:
    return type("Row", (PgRow,), {"_names": {name: index for index, name in enumerate(names)}})


def _rows(cursor: Any) -> RowMaker[PgRow]:
    # The names straight from the result: `cursor.description` builds a Column object per
    # column on every statement, a tenth of a sale's time in psycopg (py-spy).
    result = cursor.pgresult
    if result is None:
        return _row_class(())
    return _row_class(tuple(result.fname(at).decode() for at in range(result.nfields)))


class _WholeOrFloat(Loader):
    """numeric (what SUM of integers gives) as an int when whole: points and money are ints."""

    def load(self, data: Any) -> int | float:
        value = Decimal(bytes(data).decode())
        return int(value) if value == value.to_integral_value() else float(value)


class _BoolAsInt(Dumper):
    """Flags are 0/1 integers in the schema, as on SQLite."""

    oid = psycopg.adapters.types["int8"].oid

    def dump(self, obj: Any) -> bytes:
        return b"1" if obj else b"0"


async def _configure(connection: AsyncConnection[Any]) -> None:
    connection.adapters.register_loader("numeric", _WholeOrFloat)
    connection.adapters.register_dumper(bool, _BoolAsInt)


def describe(url: str) -> str:
    """The server and database, without the password, for logs and check-config."""
    parts = conninfo_to_dict(url)
    host = parts.get("host") or "localhost"
    port = parts.get("port") or "5432"
    return f"PostgreSQL database {parts.get('dbname') or parts.get('user') or ''} on {host}:{port}"


class PostgresDatabase(Database):
    dialect = POSTGRESQL
    shared = True

    def __init__(
        self, pool: AsyncConnectionPool[Any], intake: AsyncConnectionPool[Any], url: str
    ) -> None:
        super().__init__()
        self._pool = pool
        # Recording what arrives never waits for a connection held by a writer queued
        # behind the write lock: the webhook's 200 depends on it.
        self._intake = intake
        self.url = url
        self.where = describe(url)
        # The session holding this process's person locks (see `serving`).
        self._lines: AsyncConnection[Any] | None = None
        self._lines_opening = asyncio.Lock()

    @classmethod
    async def open(cls, url: str, *, size: int = POOL_SIZE) -> PostgresDatabase:
        pools: list[AsyncConnectionPool[Any]] = [
            AsyncConnectionPool(
                url,
                min_size=1,
                max_size=most,
                open=False,
                configure=_configure,
                kwargs={"autocommit": True},
            )
            for most in (size, INTAKE_POOL_SIZE)
        ]
        try:
            for pool in pools:
                await pool.open(wait=True, timeout=15)
        except Exception as error:
            for pool in pools:
                await pool.close()
            raise StorageError(
                f"DATABASE_URL {describe(url)}: cannot be reached ({error})"
            ) from error
        database = cls(pools[0], pools[1], url)
        try:
            await database._refuse_a_stranger()
            await database.migrate()
        except BaseException:
            await database.close()
            raise
        return database

    @asynccontextmanager
    async def _connection(self, *, intake: bool = False) -> AsyncIterator[AsyncConnection[Any]]:
        try:
            async with (self._intake if intake else self._pool).connection() as connection:
                yield connection
        except psycopg.OperationalError as error:
            raise StorageError(f"DATABASE_URL {self.where}: {error}") from error

    async def _refuse_a_stranger(self) -> None:
        """A database with somebody else's tables is never migrated into ours."""
        async with self.reading() as tx:
            row = await tx.fetch_one(
                "SELECT (SELECT COUNT(*) FROM pg_tables WHERE schemaname = current_schema()) AS n,"
                " to_regclass('schema_migrations') IS NOT NULL AS ours"
            )
        if row is not None and row["n"] and not row["ours"]:
            raise StorageError(
                f"DATABASE_URL {self.where}: it holds tables that are not a loyalty-bot"
                " database; nothing was changed"
            )

    async def migrate(self) -> list[int]:
        async def run(tx: Transaction, sql: str) -> None:
            # One script per file: PostgreSQL runs DDL inside the transaction.
            await connection.execute(sql.encode())

        async with self._connection() as connection, connection.transaction():
            tx = PostgresTransaction(connection)
            await tx.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATIONS_LOCK,))
            return await apply_migrations(tx, "postgresql", run)

    @asynccontextmanager
    async def transaction(
        self, *, alone: bool = True, touching: tuple[str, ...] = ()
    ) -> AsyncIterator[Transaction]:
        work = enlisted()
        if touching:  # the shop's write lock shared, each name's alone; one round trip
            names = ", ".join(f"pg_advisory_xact_lock({lock_key(name)})" for name in touching)
            begin = f"BEGIN; SELECT pg_advisory_xact_lock_shared({WRITES_LOCK}), {names}"
        else:
            begin = _BEGIN_ALONE if alone else "BEGIN"
        async with self._connection(intake=not alone) as connection:
            tx = PostgresTransaction(connection)
            async with _in_transaction(connection, begin):
                if work is not None:
                    await work.join(tx)
                yield tx
                if tx.left_to_dispatcher:  # delivered to the listeners at commit
                    await tx.execute(f"NOTIFY {OUTBOX_QUEUED}")
            if work is not None:
                work.committed(tx)
            if tx.left_to_dispatcher:
                self.outbox_committed()
            if tx.inserted:
                await _analyze_grown(connection, tx.inserted)

    @asynccontextmanager
    async def exclusively(self, name: str) -> AsyncIterator[Held | None]:
        """A session-level advisory lock on a connection of its own: the server lets it go
        when this process's session ends, however it ends."""
        try:
            connection = await AsyncConnection.connect(self.url, autocommit=True)
        except psycopg.OperationalError as error:
            raise StorageError(f"DATABASE_URL {self.where}: {error}") from error
        async with connection:
            cursor = await connection.execute("SELECT pg_try_advisory_lock(%s)", (lock_key(name),))
            row = await cursor.fetchone()
            yield _Session(connection) if row and row[0] else None

    @asynccontextmanager
    async def serving(self, name: str) -> AsyncIterator[bool]:
        """An advisory lock per person, all on one session of this process: taken and let
        go in a round trip each, and all let go by the server if this process dies."""
        lines = await self._lines_session()
        key = (lock_key(name),)
        try:
            cursor = await lines.execute("SELECT pg_try_advisory_lock(%s)", key)
            row = await cursor.fetchone()
        except psycopg.Error as error:
            raise StorageError(f"DATABASE_URL {self.where}: {error}") from error
        mine = bool(row and row[0])
        try:
            yield mine
        finally:
            if mine and not lines.closed:
                with contextlib.suppress(psycopg.Error):  # a lost session let it go already
                    await lines.execute("SELECT pg_advisory_unlock(%s)", key)

    async def _lines_session(self) -> AsyncConnection[Any]:
        async with self._lines_opening:
            if self._lines is None or self._lines.closed or self._lines.broken:
                try:
                    self._lines = await AsyncConnection.connect(self.url, autocommit=True)
                except psycopg.OperationalError as error:
                    raise StorageError(f"DATABASE_URL {self.where}: {error}") from error
            return self._lines

    @asynccontextmanager
    async def hearing_others(self) -> AsyncIterator[None]:
        listening = asyncio.create_task(self._listen(), name="outbox notifications")
        try:
            yield
        finally:
            listening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listening

    async def _listen(self) -> None:
        while True:
            try:
                async with await AsyncConnection.connect(self.url, autocommit=True) as session:
                    await session.execute(f"LISTEN {OUTBOX_QUEUED}")
                    self.outbox_committed()  # whatever was queued while nobody listened
                    async for _ in session.notifies():
                        self.outbox_committed()
            except psycopg.Error as error:  # the dispatcher's own timer goes on meanwhile
                log.warning("outbox notifications interrupted (%s); listening again", error)
                await asyncio.sleep(LISTEN_AGAIN_SECONDS)

    @asynccontextmanager
    async def single_write(self, *, alone: bool = True) -> AsyncIterator[Transaction]:
        """One statement, committed by itself: one round trip where BEGIN and COMMIT cost
        two more. `alone=False` (recording what arrived) goes through the intake pool; a lone
        statement never takes the shop's write lock."""
        async with self._connection(intake=not alone) as connection:
            tx = PostgresTransaction(connection)
            yield tx
            if tx.left_to_dispatcher:
                await tx.execute(f"NOTIFY {OUTBOX_QUEUED}")
        if tx.left_to_dispatcher:
            self.outbox_committed()

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[Transaction]:
        async with (
            self._connection() as connection,
            _in_transaction(connection, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"),
        ):
            yield PostgresTransaction(connection)

    @asynccontextmanager
    async def single_read(self) -> AsyncIterator[Transaction]:
        """Autocommit: the query is its own transaction. Every message read three of them
        in BEGIN ... COMMIT (the sender's staff row, member row and earlier messages): a
        quarter of a sale's statements went to those wrappers (server log)."""
        async with self._connection() as connection:
            yield PostgresTransaction(connection)

    async def checkpoint(self) -> None:
        """An erasure's old row versions are removed from the tables now; the space they
        held is only marked free, their bytes stay in the pages until `rewrite_erased`
        (nightly) or new rows overwrite them, and in the write-ahead log and backups until
        those age out (README, "Erasure")."""
        async with self._connection() as connection:
            await connection.execute(f"VACUUM {', '.join(ERASED_FROM)}".encode())

    async def rewrite_erased(self) -> None:
        """VACUUM FULL writes each table and its indexes anew and drops the old files: a test
        found an erased name and number in the pages of four tables and four indexes after
        a plain VACUUM. Each table is held exclusively while it is copied (3.8 s for a ledger
        of a million rows), hence at night."""
        async with self._connection() as connection:
            await connection.execute(f"VACUUM FULL {', '.join(ERASED_FROM)}".encode())

    async def settle(self) -> None:
        """VACUUM too: every copied row's visibility is settled once, here, instead of by the
        first reads (which would write each page again), and index-only scans can begin."""
        async with self._connection() as connection:
            await connection.execute(b"VACUUM ANALYZE")

    async def close(self) -> None:
        if self._lines is not None:
            await self._lines.close()
        await self._pool.close()
        await self._intake.close()


# Beginning a write transaction and taking the shop's write lock, in one round trip.
_BEGIN_ALONE = f"BEGIN; SELECT pg_advisory_xact_lock({WRITES_LOCK})"


@asynccontextmanager
async def _in_transaction(connection: AsyncConnection[Any], begin: str) -> AsyncIterator[None]:
    """`begin` ... COMMIT, or ROLLBACK on any error (psycopg's own transaction block would
    cost a round trip more for the isolation level or the lock)."""
    await connection.execute(begin.encode())
    try:
        yield
    except BaseException:
        if not connection.broken:
            await connection.execute(b"ROLLBACK")
        raise
    await connection.execute(b"COMMIT")


def lock_key(name: str) -> int:
    """A name as an advisory lock's 64-bit key."""
    return int.from_bytes(
        hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True
    )


class _Session:
    def __init__(self, connection: AsyncConnection[Any]) -> None:
        self._connection = connection

    async def kept(self) -> bool:
        try:
            await self._connection.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True


async def _analyze_grown(connection: AsyncConnection[Any], inserted: Counter[str]) -> None:
    """The planner's statistics of each table a transaction grew by a tenth or more, gathered
    as soon as it commits. Autovacuum does it within a minute; a query planned meanwhile sees
    the table as it was. The win-back job run again seconds after its first run (16,721
    coupons where there had been 225 birthday ones) planned its check for a coupon since the
    last purchase for one row: a loop over every pair, 12.9 s instead of 0.8 s. A table that
    autovacuum is working on already is left to it (SKIP_LOCKED), so the job never waits."""
    try:
        cursor = await connection.execute(
            "SELECT c.relname, c.reltuples FROM pg_class AS c"
            " WHERE c.oid IN (SELECT to_regclass(name) FROM unnest(%s::text[]) AS name)"
            " AND c.relpersistence = 'p'",
            (list(inserted),),
        )
        for table, counted in await cursor.fetchall():
            if inserted[table] > ANALYZE_ROWS + ANALYZE_SHARE * max(counted, 0):
                await connection.execute(f"ANALYZE (SKIP_LOCKED) {table}")
    except psycopg.Error as error:  # committed already; autovacuum gets to it soon
        log.warning("could not gather the planner's statistics again: %s", error)


class PostgresTransaction(Transaction):
    dialect = POSTGRESQL

    def __init__(self, connection: AsyncConnection[Any]) -> None:
        super().__init__()
        self._connection = connection
        self.inserted: Counter[str] = Counter()  # rows each INSERT of many put in a table

    async def touch(self, name: str) -> None:
        await self._connection.execute(
            "SELECT pg_advisory_xact_lock(%s)", (lock_key(name),), prepare=True
        )

    async def execute(self, sql: str, parameters: Parameters = ()) -> Executed:
        cursor = self._connection.cursor(row_factory=_rows)
        await cursor.execute(POSTGRESQL.sql(sql), _bound(parameters))
        if cursor.rowcount > ANALYZE_ROWS and (into := _INSERT_INTO.match(sql)):
            self.inserted[into.group(1)] += cursor.rowcount
        return cursor

    async def execute_many(self, sql: str, rows: Iterable[Parameters]) -> None:
        cursor = self._connection.cursor()
        await cursor.executemany(POSTGRESQL.sql(sql), [_bound(row) for row in rows])

    async def fetch_one(self, sql: str, parameters: Parameters = ()) -> Row | None:
        cursor = self._connection.cursor(row_factory=_rows)
        await cursor.execute(POSTGRESQL.sql(sql), _bound(parameters))
        return await cursor.fetchone()

    async def fetch_all(self, sql: str, parameters: Parameters = ()) -> list[Row]:
        cursor = self._connection.cursor(row_factory=_rows)
        await cursor.execute(POSTGRESQL.sql(sql), _bound(parameters))
        return list(await cursor.fetchall())

    async def stream(self, sql: str, parameters: Parameters = ()) -> AsyncIterator[Row]:
        cursor = self._connection.cursor(row_factory=_rows)
        async for row in cursor.stream(POSTGRESQL.sql(sql), _bound(parameters), size=STREAM_CHUNK):
            yield row


def _bound(parameters: Parameters) -> Sequence[Any] | dict[str, Any]:
    """Positional parameters as a tuple; named ones as the mapping they are."""
    if isinstance(parameters, dict):
        return parameters
    if hasattr(parameters, "keys"):
        return dict(parameters)
    return tuple(parameters)
