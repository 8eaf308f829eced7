"""Start-up errors an operator can act on: each names the setting and what is wrong with it."""

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
