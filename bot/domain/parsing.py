"""Turning what people type into clean values, or a reason why not."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date

import phonenumbers

from bot.domain.models import Birthday
from bot.wording import month_numbers, plain_word

NAME_MAX_LENGTH = 64
OLDEST_BIRTH_YEAR = 1900
# Ids and counts people type or buttons carry: ASCII digits only (str.isdigit also accepts
# "²", which int() refuses), and few enough that SQLite's 64-bit integers hold them.
WHOLE_NUMBER_DIGITS = 15
WHOLE_NUMBER_PATTERN = rf"[0-9]{{1,{WHOLE_NUMBER_DIGITS}}}"
_WHOLE_NUMBER = re.compile(rf"[+-]?{WHOLE_NUMBER_PATTERN}")


@dataclass(frozen=True)
class InvalidInput(Exception):
    """`problem` names the template that explains to the person what to type instead."""

    problem: str


def clean_name(text: str) -> str:
    """A display name: trimmed, inner runs of space folded, 1-64 long, emoji welcome; no
    control characters, and none of the invisible ones that reorder text ("Ana\u202e...")."""
    folded = " ".join(text.split())
    if not folded:
        raise InvalidInput("name_empty")
    if any(_hidden(char) for char in folded):
        raise InvalidInput("name_invalid")
    if len(folded) > NAME_MAX_LENGTH:
        raise InvalidInput("name_too_long")
    if folded.startswith("/"):
        raise InvalidInput("name_invalid")
    return folded


def usable_name(text: str | None) -> str | None:
    """A name offered by an app (a profile name): what of it makes a valid name, cut to the
    longest allowed; None when nothing does."""
    if text is None:
        return None
    kept = " ".join("".join(char for char in text if not _hidden(char)).split())
    kept = kept.lstrip("/").strip()[:NAME_MAX_LENGTH].strip()
    return kept or None


# Format characters an emoji sequence is made of: joiners ("👩‍💻") and the tags of flags.
_EMOJI_JOINERS = frozenset("\u200c\u200d")
_EMOJI_TAGS = range(0xE0020, 0xE0080)


def _hidden(char: str) -> bool:
    """Control, unassigned or private characters, and invisible format characters (the
    direction overrides among them) other than those emoji sequences need."""
    category = unicodedata.category(char)
    if category != "Cf":
        return category.startswith("C")
    return char not in _EMOJI_JOINERS and ord(char) not in _EMOJI_TAGS


def whole_number(text: str, *, signed: bool = False) -> int | None:
    """`42` (or `+3`, `-3` when `signed`) as an int; None for anything else."""
    candidate = text.strip()
    if not _WHOLE_NUMBER.fullmatch(candidate) or (not signed and candidate[0] in "+-"):
        return None
    return int(candidate)


def normalise_phone(text: str, default_region: str) -> str:
    """E.164 (+34612345678) from what a person types: spaces, dashes, dots, brackets, 00 prefix."""
    candidate = text.strip()
    if candidate.startswith("00"):
        candidate = "+" + candidate[2:]
    if not candidate or len(candidate) > 32:
        raise InvalidInput("phone_invalid")
    try:
        number = phonenumbers.parse(candidate, default_region)
    except phonenumbers.NumberParseException as error:
        raise InvalidInput("phone_invalid") from error
    if not phonenumbers.is_valid_number(number):
        raise InvalidInput("phone_invalid")
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


_NAMED_DAY_FIRST = re.compile(
    r"^(\d{1,2})(?:st|nd|rd|th)? (?:de |of )?([^\d\s]+)(?: (?:de )?(\d{4}))?$"
)
_NAMED_MONTH_FIRST = re.compile(r"^([^\d\s]+) (\d{1,2})(?:st|nd|rd|th)?(?: (\d{4}))?$")


def _with_month_name(text: str) -> tuple[int, int, int | None]:
    words = " ".join(plain_word(text).replace(",", " ").split())
    day_first, month_first = _NAMED_DAY_FIRST.match(words), _NAMED_MONTH_FIRST.match(words)
    if day_first:
        day, name, year = day_first.group(1), day_first.group(2), day_first.group(3)
    elif month_first:
        name, day, year = month_first.group(1), month_first.group(2), month_first.group(3)
    else:
        raise InvalidInput("birthday_format")
    month = month_numbers("es").get(name) or month_numbers("en").get(name)
    if month is None:
        raise InvalidInput("birthday_format")
    return int(day), month, int(year) if year else None


_DAY_FIRST = re.compile(r"^(\d{1,2})\s*[/.\-]\s*(\d{1,2})(?:\s*[/.\-]\s*(\d{4}))?$")
_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")


def parse_birthday(text: str, today: date) -> Birthday:
    """`24/12`, `24/12/1990`, `24.12.1990`, `24-12` or `1990-12-24`, or with the month's name
    in Spanish or English as people write it: `15 de marzo`, `15 marzo 1990`, `March 15`,
    `15 Mar`, `March 15th, 1990`. The year is optional.

    Day first, as written in Spain and most of Latin America. 29 February is valid without a
    year; with one, the date must exist, must not be in the future and not before 1900.
    """
    candidate = text.strip()
    iso = _ISO.match(candidate)
    day_first = _DAY_FIRST.match(candidate)
    if iso:
        year, month, day = int(iso.group(1)), int(iso.group(2)), int(iso.group(3))
        year_or_none: int | None = year
    elif day_first:
        day, month = int(day_first.group(1)), int(day_first.group(2))
        year_or_none = int(day_first.group(3)) if day_first.group(3) else None
    else:
        day, month, year_or_none = _with_month_name(candidate)
    # A leap year stands in for "any year" so that 29 February passes the calendar check.
    try:
        date(year_or_none if year_or_none is not None else 2000, month, day)
    except ValueError as error:
        raise InvalidInput("birthday_no_such_date") from error
    if year_or_none is not None and not (
        year_or_none >= OLDEST_BIRTH_YEAR and date(year_or_none, month, day) <= today
    ):
        raise InvalidInput("birthday_out_of_range")
    return Birthday(day=day, month=month, year=year_or_none)
