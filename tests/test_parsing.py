"""Dates and phone numbers as people type them: examples plus properties over many inputs."""

from __future__ import annotations

from datetime import date

import phonenumbers
import pytest
from babel.dates import get_month_names
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.models import Birthday
from bot.domain.parsing import (
    WHOLE_NUMBER_DIGITS,
    InvalidInput,
    clean_name,
    normalise_phone,
    parse_birthday,
    usable_name,
    whole_number,
)

TODAY = date(2026, 11, 24)
dates = st.dates(min_value=date(1900, 1, 1), max_value=TODAY)


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("24/12", Birthday(24, 12)),
        ("24/12/1990", Birthday(24, 12, 1990)),
        ("1990-12-24", Birthday(24, 12, 1990)),
        (" 3.4.2001 ", Birthday(3, 4, 2001)),
        ("29/02", Birthday(29, 2)),
        ("29/02/2000", Birthday(29, 2, 2000)),
        ("1/1", Birthday(1, 1)),
        ("15 de marzo", Birthday(15, 3)),
        ("15 marzo", Birthday(15, 3)),
        ("15 de Marzo de 1990", Birthday(15, 3, 1990)),
        ("March 15", Birthday(15, 3)),
        ("March 15th, 1990", Birthday(15, 3, 1990)),
        ("15 Mar", Birthday(15, 3)),
        ("1 de septiembre", Birthday(1, 9)),
        ("3 sept.", Birthday(3, 9)),
        ("15/3", Birthday(15, 3)),
    ],
)
def test_birthday_examples(typed: str, expected: Birthday) -> None:
    assert parse_birthday(typed, TODAY) == expected


@given(dates, st.sampled_from(["es", "en"]), st.booleans(), st.booleans())
def test_a_birthday_written_with_the_month_name_reads_as_the_same_day(
    day: date, language: str, month_first: bool, with_year: bool
) -> None:
    """Any day, its month named in full as Babel names it in either language, either order."""
    month = get_month_names("wide", locale=language)[day.month]
    year = f" {day.year}" if with_year else ""
    typed = f"{month} {day.day}{year}" if month_first else f"{day.day} de {month}{year}"
    expected = Birthday(day.day, day.month, day.year if with_year else None)
    assert parse_birthday(typed, TODAY) == expected


@pytest.mark.parametrize(
    ("typed", "problem"),
    [
        ("", "birthday_format"),
        ("24 de diciembrr", "birthday_format"),
        ("30 de febrero", "birthday_no_such_date"),
        ("diciembre", "birthday_format"),
        ("12/24/1990x", "birthday_format"),
        ("32/01", "birthday_no_such_date"),
        ("12/13", "birthday_no_such_date"),
        ("29/02/2023", "birthday_no_such_date"),
        ("1899-05-05", "birthday_out_of_range"),
        ("25/11/2026", "birthday_out_of_range"),
    ],
)
def test_birthday_refusals_name_the_problem(typed: str, problem: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_birthday(typed, TODAY)
    assert refused.value.problem == problem


@given(
    dates,
    st.sampled_from(
        ["{d}/{m}/{y}", "{d:02d}/{m:02d}/{y}", "{y}-{m:02d}-{d:02d}", "{d}.{m}.{y}", "{d}-{m}-{y}"]
    ),
)
def test_every_real_date_parses_back_in_every_format(day: date, pattern: str) -> None:
    typed = pattern.format(d=day.day, m=day.month, y=day.year)
    assert parse_birthday(typed, TODAY) == Birthday(day.day, day.month, day.year)


@given(dates)
def test_day_and_month_alone_keep_no_year(day: date) -> None:
    assert parse_birthday(f"{day.day}/{day.month}", TODAY) == Birthday(day.day, day.month, None)


@given(st.text(max_size=40))
def test_any_text_parses_or_is_refused_with_a_known_problem(text: str) -> None:
    try:
        birthday = parse_birthday(text, TODAY)
    except InvalidInput as refused:
        assert refused.problem in {
            "birthday_format",
            "birthday_no_such_date",
            "birthday_out_of_range",
        }
    else:
        assert 1 <= birthday.month <= 12 and 1 <= birthday.day <= 31


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("612345678", "+34612345678"),
        ("612 34 56 78", "+34612345678"),
        ("+34 612-345-678", "+34612345678"),
        ("0034 612 345 678", "+34612345678"),
        ("(+34) 612.345.678", "+34612345678"),
        ("+1 (212) 555-0100", "+12125550100"),
    ],
)
def test_phone_examples(typed: str, expected: str) -> None:
    assert normalise_phone(typed, "ES") == expected


@pytest.mark.parametrize("typed", ["", "12", "hola", "+34 1", "6" * 40, "+999 612345678"])
def test_phone_refusals(typed: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        normalise_phone(typed, "ES")
    assert refused.value.problem == "phone_invalid"


spanish_mobiles = st.integers(min_value=600_000_000, max_value=699_999_999)


@given(
    spanish_mobiles,
    st.sampled_from(
        [
            phonenumbers.PhoneNumberFormat.E164,
            phonenumbers.PhoneNumberFormat.INTERNATIONAL,
            phonenumbers.PhoneNumberFormat.NATIONAL,
        ]
    ),
)
def test_a_number_in_any_format_normalises_to_one_form(national: int, style: int) -> None:
    number = phonenumbers.parse(str(national), "ES")
    typed = phonenumbers.format_number(number, style)
    assert normalise_phone(typed, "ES") == f"+34{national}"


@given(st.text(max_size=60))
def test_any_text_is_a_phone_or_refused(text: str) -> None:
    try:
        phone = normalise_phone(text, "ES")
    except InvalidInput as refused:
        assert refused.problem == "phone_invalid"
    else:
        assert phone.startswith("+") and phone[1:].isdigit()


@given(st.text(min_size=1, max_size=80))
def test_names_are_clean_or_refused(text: str) -> None:
    try:
        name = clean_name(text)
    except InvalidInput as refused:
        assert refused.problem in {"name_empty", "name_invalid", "name_too_long"}
    else:
        assert name == name.strip() and "  " not in name and 1 <= len(name) <= 64


def test_name_examples() -> None:
    assert clean_name("  Ana   María  ") == "Ana María"
    assert clean_name("José 🍷") == "José 🍷"
    with pytest.raises(InvalidInput):
        clean_name("/balance")
    with pytest.raises(InvalidInput):
        clean_name("Ana\u0000")
    assert clean_name("Ana 👩‍💻") == "Ana 👩\u200d💻"  # an emoji made with a joiner
    assert clean_name("Pau 🏴󠁧󠁢󠁳󠁣󠁴󠁿") == "Pau 🏴󠁧󠁢󠁳󠁣󠁴󠁿"  # a flag made with tags
    for hidden in ("\u202e", "\u2066", "\u200f", "\ufeff"):
        with pytest.raises(InvalidInput):
            clean_name(f"Ana{hidden}lic")  # reads "Anacil" backwards, or hides a mark


@given(st.one_of(st.none(), st.text(max_size=400)))
def test_a_name_an_app_offers_is_made_valid_or_dropped(text: str | None) -> None:
    """A WhatsApp profile name of 300 characters with a direction override, say."""
    name = usable_name(text)
    if name is not None:
        assert clean_name(name) == name


def test_a_hostile_profile_name_becomes_a_plain_one() -> None:
    assert usable_name("Pepe\u202e" + "x" * 300) == "Pepe" + "x" * 60


@given(st.integers(min_value=0, max_value=10**WHOLE_NUMBER_DIGITS - 1))
def test_a_whole_number_reads_back(number: int) -> None:
    assert whole_number(str(number)) == number
    assert whole_number(f" {number} ") == number
    assert whole_number(f"+{number}", signed=True) == number
    assert whole_number(f"-{number}", signed=True) == -number
    assert whole_number(f"-{number}") is None  # a sign only where one is expected


@given(st.text(max_size=30))
def test_anything_else_is_not_a_whole_number_and_never_an_error(text: str) -> None:
    """Superscripts ("²" passes str.isdigit), other scripts' digits, 16 digits and more (beyond
    what SQLite's integers hold safely): all None, for a usage message instead of a crash."""
    read = whole_number(text, signed=True)
    digits = text.strip().lstrip("+-")
    if read is not None:
        assert digits.isascii() and digits.isdigit() and len(digits) <= WHOLE_NUMBER_DIGITS
        assert abs(read) < 2**63


@pytest.mark.parametrize("text", ["²", "٣", "1²", "9" * 16, "1.5", "1e3", "", " ", "+", "--1"])
def test_look_alike_numbers_are_refused(text: str) -> None:
    assert whole_number(text, signed=True) is None
