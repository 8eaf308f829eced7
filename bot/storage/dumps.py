"""Backups of a PostgreSQL shop: pg_dump's custom format, put back with pg_restore.

The server's own tools, not a copy made by the bot: they read one consistent snapshot while
the bot runs, and pg_restore takes a dump into an empty database only (the bot refuses one
holding a shop, as migrate-db does). Both come with Debian's postgresql-client package, of the
server's version or newer.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import datetime
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict

from bot.storage.backups import PRIVATE_FILE, PRIVATE_FOLDER, Backup, BackupError, dated_backup_path

DUMP = ".dump"
# A DATABASE_URL's parts, as libpq's environment variables.
_ENVIRONMENT = {
    "host": "PGHOST",
    "port": "PGPORT",
    "user": "PGUSER",
    "password": "PGPASSWORD",
    "dbname": "PGDATABASE",
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "application_name": "PGAPPNAME",
}


def dump(url: str, target: Path) -> Backup:
    """pg_dump of the database at `url` into `target` (a file, or a folder for a dated one),
    checked by listing it back."""
    if target.is_dir():
        target = dated_backup_path(target, datetime.now().astimezone(), "manual", DUMP)
    if target.exists():
        raise BackupError(f"{target} exists already: choose another name")
    target.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_FOLDER)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    partial.touch(mode=PRIVATE_FILE)
    try:
        _run(url, "pg_dump", "--format=custom", "--no-owner", f"--file={partial}")
        _run(url, "pg_restore", "--list", str(partial))
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return Backup(target, target.stat().st_size)


def restore(backup: Path, url: str) -> None:
    """The dump into the database at `url`, which must be empty; all or nothing."""
    if not backup.is_file():
        raise BackupError(f"{backup}: no such backup file")
    try:
        with psycopg.connect(url) as connection:
            row = connection.execute(
                "SELECT COUNT(*) FROM pg_tables WHERE schemaname = current_schema()"
            ).fetchone()
    except psycopg.Error as error:
        raise BackupError(f"DATABASE_URL cannot be reached: {error}") from error
    if row and row[0]:
        raise BackupError(
            "DATABASE_URL's database is not empty: create an empty one (createdb), point"
            " DATABASE_URL at it and restore again; nothing was changed"
        )
    name = str(conninfo_to_dict(url).get("dbname", ""))  # the rest comes by the environment
    _run(
        url,
        "pg_restore",
        "--no-owner",
        "--single-transaction",
        "--exit-on-error",
        f"--dbname={name}",
        str(backup),
    )


def _run(url: str, tool: str, *arguments: str) -> None:
    """`tool` connected to `url` through libpq's environment, so that the password is not on
    a command line every user of the machine can read."""
    if shutil.which(tool) is None:
        raise BackupError(f"{tool} is not installed: apt-get install postgresql-client")
    unknown = set(conninfo_to_dict(url)) - set(_ENVIRONMENT)
    if unknown:
        raise BackupError(f"DATABASE_URL: {', '.join(sorted(unknown))} cannot be given to {tool}")
    environment = {
        **os.environ,
        **{_ENVIRONMENT[key]: str(value) for key, value in conninfo_to_dict(url).items()},
    }
    finished = subprocess.run(
        [tool, *arguments], capture_output=True, text=True, check=False, env=environment
    )
    if finished.returncode != 0:
        reason = (finished.stderr.strip().splitlines() or ["no reason given"])[-1]
        raise BackupError(f"{tool} failed: {reason}")
