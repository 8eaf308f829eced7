"""The few SQL fragments that differ between SQLite and PostgreSQL, in one place.

Repositories write portable SQL (`RETURNING`, `ON CONFLICT`, `UPDATE ... FROM`, `FILTER`,
`IS NOT DISTINCT FROM`, window functions) and ask `tx.dialect` for the rest: days between
timestamps kept as text, a JSON list passed as one parameter, JSON built or read in SQL, the
larger of two values, a case-blind LIKE, and string aggregation. Placeholders are written in
SQLite's style (`?`, `:name`) and converted once per statement for psycopg.
"""

from __future__ import annotations

import re
from functools import lru_cache


class Dialect:
    """SQLite's spelling; PostgreSQL's below overrides what differs."""

    name = "sqlite"

    def days(self, moment: str) -> str:
        """A timestamp (text, SQL_TIME_FORMAT) as a number of days, for differences."""
        return f"julianday({moment})"

    def listed(self, parameter: str, sql_type: str = "INTEGER") -> str:
        """The values of a JSON list passed as one parameter, as a subquery for `IN`."""
        return f"(SELECT value FROM json_each({parameter}))"

    def pairs(self, parameter: str) -> str:
        """The (key, value) pairs of a JSON object passed as one parameter, as a table."""
        return f"json_each({parameter})"

    def rows(self, parameter: str, columns: tuple[tuple[str, str], ...]) -> str:
        """The rows of a JSON list of lists passed as one parameter, as a table: `n`, each
        row's place in the list, then `columns` ((name, "INTEGER" or "TEXT"), in order). Many
        rows in one INSERT ... SELECT cost one statement, not one execution each."""
        values = ", ".join(
            f"json_extract(value, '$[{at}]') AS {name}" for at, (name, _) in enumerate(columns)
        )
        return f"(SELECT CAST(key AS INTEGER) AS n, {values} FROM json_each({parameter}))"

    def greatest(self, first: str, second: str) -> str:
        return f"MAX({first}, {second})"

    def whole(self, number: str) -> str:
        """A number's whole part (towards zero), as an integer."""
        return f"CAST({number} AS INTEGER)"

    def json_object(self, *pairs: str) -> str:
        """A JSON object (as text) from 'key', value pairs."""
        return f"json_object({', '.join(pairs)})"

    def json_text(self, document: str, key: str) -> str:
        """The value at `key` of a JSON object kept as text, as text."""
        return f"CAST(json_extract({document}, '$.{key}') AS TEXT)"

    def json_set(self, document: str, path: tuple[str, ...], value: str) -> str:
        """A JSON object (as text) with the value at `path` (keys, outermost first) set."""
        return f"json_set({document}, '$.{'.'.join(path)}', {value})"

    def like_any_case(self) -> str:
        return "LIKE"  # SQLite's LIKE already ignores case (of ASCII letters)

    def joined(self, expression: str, separator: str) -> str:
        return f"group_concat({expression}, '{separator}')"

    def position(self, needle: str, haystack: str) -> str:
        return f"instr({haystack}, {needle})"

    def sql(self, statement: str) -> str:
        """The statement as the driver takes it."""
        return statement

    def tables(self) -> str:
        """A query for the names (`name`) of the database's tables."""
        return "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"

    def renumber(self, table: str) -> str | None:
        """After rows were copied with their ids: new rows numbered above them."""
        return None  # SQLite numbers from the largest id (AUTOINCREMENT notes copied ids)

    def triggers(self, table: str, on: bool) -> str | None:
        """Turn a table's own triggers off for a bulk copy of rows whose derived columns come
        with them, and on again; None where the engine cannot (SQLite's stay on)."""
        return None


class PostgresDialect(Dialect):
    name = "postgresql"

    def days(self, moment: str) -> str:
        # Through text first: a parameter used here and compared with a text column stays text.
        return f"(date_part('epoch', CAST(CAST({moment} AS TEXT) AS timestamp)) / 86400.0)"

    def listed(self, parameter: str, sql_type: str = "INTEGER") -> str:
        return (
            f"(SELECT CAST(value AS {'BIGINT' if sql_type == 'INTEGER' else 'TEXT'})"
            f" FROM jsonb_array_elements_text(CAST({parameter} AS jsonb)) AS value)"
        )

    def pairs(self, parameter: str) -> str:
        return f"jsonb_each_text(CAST({parameter} AS jsonb))"

    def rows(self, parameter: str, columns: tuple[tuple[str, str], ...]) -> str:
        values = ", ".join(
            f"CAST(value ->> {at} AS BIGINT) AS {name}"
            if sql_type == "INTEGER"
            else f"value ->> {at} AS {name}"
            for at, (name, sql_type) in enumerate(columns)
        )
        return (
            f"(SELECT n, {values} FROM jsonb_array_elements(CAST({parameter} AS jsonb))"
            " WITH ORDINALITY AS given (value, n))"
        )

    def greatest(self, first: str, second: str) -> str:
        return f"GREATEST({first}, {second})"

    def whole(self, number: str) -> str:
        return f"CAST(TRUNC({number}) AS INTEGER)"

    def json_object(self, *pairs: str) -> str:
        return f"CAST(json_build_object({', '.join(pairs)}) AS TEXT)"

    def json_text(self, document: str, key: str) -> str:
        return f"(CAST({document} AS jsonb) ->> '{key}')"

    def json_set(self, document: str, path: tuple[str, ...], value: str) -> str:
        keys = "{" + ",".join(path) + "}"
        return f"CAST(jsonb_set(CAST({document} AS jsonb), '{keys}', to_jsonb({value})) AS TEXT)"

    def like_any_case(self) -> str:
        return "ILIKE"

    def joined(self, expression: str, separator: str) -> str:
        return f"string_agg({expression}, '{separator}' ORDER BY {expression})"

    def position(self, needle: str, haystack: str) -> str:
        return f"strpos({haystack}, {needle})"

    def sql(self, statement: str) -> str:
        return pyformat(statement)

    def tables(self) -> str:
        return "SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema()"

    def renumber(self, table: str) -> str | None:
        return (
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
            f" (SELECT COALESCE(MAX(id), 0) + 1 FROM {table}), false)"
        )

    def triggers(self, table: str, on: bool) -> str | None:
        return f"ALTER TABLE {table} {'ENABLE' if on else 'DISABLE'} TRIGGER USER"


SQLITE = Dialect()
POSTGRESQL = PostgresDialect()

# A string literal (kept whole), a `::` cast, a placeholder, or a percent sign.
_TOKEN = re.compile(r"'(?:[^']|'')*'|::|\?|:([A-Za-z_][A-Za-z0-9_]*)|%")


@lru_cache(maxsize=4096)
def pyformat(statement: str) -> str:
    """`?` -> `%s`, `:name` -> `%(name)s`, and every `%` doubled, for psycopg."""

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token.startswith("'"):
            return token.replace("%", "%%")
        if token == "?":
            return "%s"
        if token == "%":
            return "%%"
        if match.group(1):
            return f"%({match.group(1)})s"
        return token

    return _TOKEN.sub(replace, statement)
