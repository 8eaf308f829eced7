"""Short codes people read aloud or type at the counter: no 0/O or 1/I/L to confuse."""

import secrets

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 8


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(text: str) -> str:
    """What a person typed, upper-cased and without spaces or dashes."""
    return "".join(char for char in text.upper() if char not in " -")
