"""Start-up errors an operator can act on: each names the setting and what is wrong with it."""

import re
import socket
import sqlite3
import ssl

import psycopg
from pydantic import ValidationError


class ConfigError(Exception):
    """The configuration or the program file is unusable; the message says which field and why."""


def describe_validation_error(source: str, error: ValidationError) -> str:
    lines = [f"{source} is not valid:"]
    for problem in error.errors():
        location = ".".join(str(part) for part in problem["loc"]) or "(top level)"
        lines.append(f"  - {location}: {problem['msg']}")
    return "\n".join(lines)


class StorageError(Exception):
    """The database cannot be opened or written; the message says what to check."""


# What a failing database raises, whichever the engine (StorageError: a server not reached).
DATABASE_ERRORS: tuple[type[Exception], ...] = (sqlite3.Error, psycopg.Error, StorageError)
INTEGRITY_ERRORS: tuple[type[Exception], ...] = (sqlite3.IntegrityError, psycopg.IntegrityError)
_CANNOT_WRITE = re.compile(r"full|readonly|read-only|disk I/O", re.IGNORECASE)


def cannot_be_written(error: BaseException | None) -> bool:
    """The database refuses writes for a reason the operator must fix (a full disk, a file
    it may not write, a server gone)."""
    if isinstance(error, sqlite3.OperationalError):
        return bool(_CANNOT_WRITE.search(str(error)))
    return isinstance(error, psycopg.OperationalError | StorageError)


LONGEST_REASON = 120  # characters of an unknown error's own words kept in a log line


def unreachable(host: str, error: BaseException) -> str:
    """Why `host` could not be reached, in one plain sentence for the operator's log, instead
    of the chain of library exceptions behind it (a 250-character ClientConnectorDNSError)."""
    for cause in _chain(error):
        if isinstance(cause, socket.gaierror) or type(cause).__name__ == "ClientConnectorDNSError":
            return f"{host} cannot be resolved (is this machine online, and its DNS working?)"
        if isinstance(cause, ConnectionRefusedError):
            return f"{host} refused the connection"
        if isinstance(cause, ssl.SSLError | ssl.CertificateError):
            return f"the certificate of {host} could not be checked"
        if isinstance(cause, TimeoutError) or type(cause).__name__ == "TimedOut":
            return f"{host} did not answer in time"
        if isinstance(cause, ConnectionError | OSError) and type(cause).__name__.startswith(
            "ClientConnector"
        ):
            return f"{host} cannot be connected to"
    return f"{host} answered with an error: {short_reason(error)}"


def short_reason(error: BaseException) -> str:
    """An error's own first line, cut to a length a log line can hold."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text if len(text) <= LONGEST_REASON else text[: LONGEST_REASON - 1] + "…"


def _chain(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen
