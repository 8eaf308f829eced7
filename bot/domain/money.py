"""Amounts as people type them at the counter, kept as integer minor units (cents), never floats."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from bot.domain.parsing import InvalidInput


@dataclass(frozen=True)
class Currency:
    code: str
    decimals: int
    decimal_mark: str  # "," where 12,50 is twelve and a half (Spain), "." where 12.50 is

    @property
    def thousands_mark(self) -> str:
        return "." if self.decimal_mark == "," else ","

    def format(self, minor_units: int, *, grouped: bool = True) -> str:
        """1250 -> "12,50" (or "12.50"), with thousands grouped: 125000 -> "1.250,00";
        ungrouped ("1250,00") for spreadsheets, which read a grouping mark as a decimal one."""
        sign = "-" if minor_units < 0 else ""
        whole, fraction = divmod(abs(minor_units), 10**self.decimals)
        digits = f"{whole:,}".replace(",", self.thousands_mark) if grouped else str(whole)
        if self.decimals == 0:
            return f"{sign}{digits}"
        return f"{sign}{digits}{self.decimal_mark}{fraction:0{self.decimals}d}"


def parse_amount(text: str, currency: Currency, largest_minor: int) -> int:
    """`12.50`, `12,50`, `$12.50`, `12 €`, `1.250,00`, `1,250.00`, `EUR 7` -> minor units.

    With both marks present the last one is the decimal mark. A single mark followed by exactly
    three digits groups thousands when the shop's decimal mark is the other one (`1.250` is one
    thousand two hundred and fifty in Spain); otherwise a single mark is the decimal mark. What
    could be read both ways (`0.001`; `1,250` in a currency of three decimals) is refused.
    """
    candidate = _without_currency(text, currency.code)
    if candidate.startswith("-"):
        raise InvalidInput("amount_not_positive")
    if not candidate or not re.fullmatch(r"[0-9.,]+", candidate) or not candidate[0].isdigit():
        raise InvalidInput("amount_unreadable")
    whole, fraction = _split(candidate, currency)
    if len(fraction) > currency.decimals:
        raise InvalidInput("amount_too_precise")
    if len(whole) > 15:
        raise InvalidInput("amount_too_large")
    padded_fraction = fraction.ljust(currency.decimals, "0")
    minor: int = int(whole or "0") * 10**currency.decimals + int(padded_fraction or "0")
    if minor <= 0:
        raise InvalidInput("amount_not_positive")
    if minor > largest_minor:
        raise InvalidInput("amount_too_large")
    return minor


def _without_currency(text: str, code: str) -> str:
    folded = "".join(char for char in text if unicodedata.category(char) != "Sc")
    folded = re.sub(re.escape(code), "", folded, flags=re.IGNORECASE)
    return "".join(folded.split()).replace("'", "")


def _split(candidate: str, currency: Currency) -> tuple[str, str]:
    """(whole digits, fraction digits), checking that thousands groups are groups of three."""
    marks = {mark for mark in ".," if mark in candidate}
    if not marks:
        return candidate, ""
    if len(marks) == 2:
        decimal = max(marks, key=candidate.rindex)
        whole, _, fraction = candidate.rpartition(decimal)
        return _ungroup(whole, ({".", ","} - {decimal}).pop()), _digits(fraction)
    mark = marks.pop()
    first_part, _, last_part = candidate.rpartition(mark)
    if candidate.count(mark) == 1 and len(last_part) == 3:
        # "0.001" groups nothing; with three decimals, "1,250" is 1.250 or 1250 alike.
        foreign_mark = mark != currency.decimal_mark
        if not first_part.strip("0") or (currency.decimals >= 3 and foreign_mark):
            raise InvalidInput("amount_ambiguous")
    is_thousands = candidate.count(mark) > 1 or (
        len(last_part) == 3 and (mark != currency.decimal_mark or currency.decimals == 0)
    )
    if is_thousands:
        return _ungroup(candidate, mark), ""
    whole, _, fraction = candidate.partition(mark)
    return _digits(whole), _digits(fraction)


def _ungroup(text: str, mark: str) -> str:
    first, *rest = text.split(mark)
    well_grouped = 1 <= len(first) <= 3 and all(len(group) == 3 for group in rest)
    if not well_grouped or not all(group.isdigit() for group in (first, *rest)):
        raise InvalidInput("amount_unreadable")
    return first + "".join(rest)


def _digits(text: str) -> str:
    if not text.isdigit() and text != "":
        raise InvalidInput("amount_unreadable")
    return text


def parse_items(text: str, largest: int) -> int:
    """A count of items: a whole number from 1 to `largest`."""
    candidate = text.strip().lstrip("xX\u00d7")  # "x3" or the multiplication sign
    if not candidate.isdigit() or not candidate.isascii():
        raise InvalidInput("items_unreadable")
    count = int(candidate)
    if not 1 <= count <= largest:
        raise InvalidInput("items_out_of_range")
    return count
