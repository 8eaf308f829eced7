"""Words that agree with a number, and month names, by each language's own rules (Babel's
CLDR data): "1 punto", "2 puntos", "Te queda 1 punto", "Lo recibirán 21 clientes"."""

from __future__ import annotations

import unicodedata
from functools import cache

from babel import Locale
from babel.dates import get_month_names


@cache
def _locale(language: str) -> Locale:
    return Locale.parse(language)


def plural(language: str, n: int, one: str, other: str) -> str:
    """`one` where the language says the number takes the singular, else `other`."""
    return one if _locale(language).plural_form(abs(n)) == "one" else other


def count(language: str, n: int, one: str, other: str) -> str:
    """The number and its noun: "1 punto", "0 puntos", "21 clientes"."""
    return f"{n} {plural(language, n, one, other)}"


@cache
def month_numbers(language: str) -> dict[str, int]:
    """Each month's name, full and abbreviated, lower case and without accents -> 1..12."""
    names: dict[str, int] = {}
    for width in ("wide", "abbreviated"):
        for context in ("format", "stand-alone"):
            for number, name in get_month_names(width, context, _locale(language)).items():
                names[plain_word(name)] = number
    return names


def plain_word(word: str) -> str:
    """A word as `month_numbers` keys it: lower case, no accents, no final dot."""
    decomposed = unicodedata.normalize("NFKD", word.lower().strip().rstrip("."))
    return "".join(char for char in decomposed if not unicodedata.combining(char))
