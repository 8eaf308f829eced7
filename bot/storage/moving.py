"""`loyalty-bot migrate-db`: copy a shop from one engine to the other, whole, and prove it.

Every row is copied with its id in one transaction of the target (all or nothing), parents
before children; then every table's row count and every customer's balance are compared.
A target that holds any row is refused: nothing is ever merged into another shop's data.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.errors import StorageError
from bot.storage.database import Database, Transaction

# Every table, each after the tables its rows point to (a customer's referrer is an earlier
# customer: ids in order keep that too).
TABLES = (
    "customers",
    "customer_identities",
    "consent_log",
    "registration_drafts",
    "link_offers",
    "staff",
    "staff_invites",
    "owner_languages",
    "sales",
    "pending_sales",
    "points_ledger",
    "coupons",
    "redemptions",
    "surveys",
    "follow_ups",
    "risk_flags",
    "promotions",
    "invite_requests",
    "campaigns",
    "outbox",
    "inbox",
    "audit_log",
    "program_history",
    "rule_starts",
    "job_runs",
    "liveness",
)
# Columns the triggers of migrations 0023 to 0025 fill in as the ledger and the sales arrive.
# PostgreSQL copies them as they are with its triggers off (a trigger per row, updating the same
# customer rows again and again in one transaction, made a million-sale copy take over twenty
# minutes);
# SQLite cannot turn triggers off, so there they are left out and the triggers rebuild them.
DERIVED = {
    "customers": frozenset(
        {
            "balance",
            "visits",
            "spend_minor",
            "last_sale_id",
            "last_purchase_at",
            "first_purchase_at",
            "points_spent",
        }
    )
}
CHUNK = 2000
_BALANCES = "SELECT customer_id, SUM(delta) AS balance FROM points_ledger GROUP BY customer_id"
# The balance each customer row carries, beside the ledger's sum: both must match the source.
_KEPT_BALANCES = "SELECT id AS customer_id, balance FROM customers WHERE balance <> 0"


class MoveError(StorageError):
    """The copy was refused or did not match; the target was left as it was."""


@dataclass(frozen=True)
class Moved:
    rows: dict[str, int]  # table -> rows copied
    customers_checked: int


async def move(source: Database, target: Database) -> Moved:
    async with source.reading() as reader:
        await _refuse_unknown_tables(reader)
        async with target.transaction() as writer:
            await _refuse_a_shop(writer)
            triggers_off = await _switch_triggers(writer, on=False)
            for table in TABLES:
                left_out = frozenset() if triggers_off else DERIVED.get(table, frozenset())
                if "id" in await _copy(reader, writer, table, left_out):
                    await _renumber(writer, table)
            await _switch_triggers(writer, on=True)
            counts = await _counts(reader)
            if (copied := await _counts(writer)) != counts:
                raise MoveError(f"the copy does not match: {counts} rows, {copied} copied")
            balances = await _balances(reader, _BALANCES)
            for copied_balances in (_BALANCES, _KEPT_BALANCES):
                if await _balances(writer, copied_balances) != balances:
                    raise MoveError("a customer's balance differs in the copy")
    return Moved(counts, len(balances))


async def _refuse_unknown_tables(tx: Transaction) -> None:
    rows = await tx.fetch_all(tx.dialect.tables())
    unknown = {row["name"] for row in rows} - set(TABLES) - {"schema_migrations"}
    if unknown:
        raise MoveError(f"tables this version cannot copy: {', '.join(sorted(unknown))}")


async def _refuse_a_shop(tx: Transaction) -> None:
    for table in TABLES:
        if await tx.fetch_one(f"SELECT 1 FROM {table} LIMIT 1"):
            raise MoveError(f"the target is not empty ({table} has rows); nothing was copied")


async def _copy(
    reader: Transaction, writer: Transaction, table: str, left_out: frozenset[str]
) -> list[str]:
    """The table's rows but the `left_out` columns, in id order where it has ids; returns its
    columns (none if empty)."""
    batch: list[tuple[object, ...]] = []
    insert = ""
    columns: list[str] = []
    async for row in reader.stream(f"SELECT * FROM {table} ORDER BY 1"):
        if not insert:
            names: list[str] = row.keys()  # a row iterates over its values, not its names
            columns = [column for column in names if column not in left_out]
            insert = (
                f"INSERT INTO {table} ({', '.join(columns)})"
                f" VALUES ({', '.join('?' for _ in columns)})"
            )
        batch.append(tuple(row[column] for column in columns))
        if len(batch) >= CHUNK:
            await writer.execute_many(insert, batch)
            batch = []
    if batch:
        await writer.execute_many(insert, batch)
    return columns


async def _switch_triggers(tx: Transaction, *, on: bool) -> bool:
    """Every table's own triggers on or off, where the engine can: whether it could."""
    statements = [tx.dialect.triggers(table, on) for table in TABLES]
    for statement in statements:
        if statement:
            await tx.execute(statement)
    return any(statements)


async def _renumber(tx: Transaction, table: str) -> None:
    """New rows get ids above the copied ones."""
    if statement := tx.dialect.renumber(table):
        await tx.fetch_one(statement)


async def _counts(tx: Transaction) -> dict[str, int]:
    counts = {}
    for table in TABLES:
        row = await tx.fetch_one(f"SELECT COUNT(*) AS n FROM {table}")
        counts[table] = int(row["n"]) if row else 0
    return counts


async def _balances(tx: Transaction, query: str) -> dict[int, int]:
    rows = await tx.fetch_all(query)
    return {int(row["customer_id"]): int(row["balance"]) for row in rows if row["balance"]}
