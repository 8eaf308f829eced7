"""Amounts as typed at the counter: examples and properties over many inputs."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.money import Currency, parse_amount, parse_items
from bot.domain.parsing import InvalidInput
from bot.program import EarningMode, Program

EUR_ES = Currency("EUR", 2, ",")
USD_US = Currency("USD", 2, ".")
CLP = Currency("CLP", 0, ",")
LARGEST = 10_000_000_00


@pytest.mark.parametrize(
    ("typed", "currency", "minor"),
    [
        ("12.50", EUR_ES, 1250),
        ("12,50", EUR_ES, 1250),
        ("$12.50", USD_US, 1250),
        ("12,5", EUR_ES, 1250),
        ("12", EUR_ES, 1200),
        ("12 €", EUR_ES, 1200),
        ("EUR 7", EUR_ES, 700),
        ("1.250,00", EUR_ES, 125000),
        ("1,250.00", EUR_ES, 125000),
        ("1.250", EUR_ES, 125000),  # in Spain the dot groups thousands
        ("1,250", USD_US, 125000),  # in the US the comma does
        ("1.234.567,89", EUR_ES, 123456789),
        ("12.", EUR_ES, 1200),
        ("1.250", CLP, 1250),
        ("0,01", EUR_ES, 1),
    ],
)
def test_amount_examples(typed: str, currency: Currency, minor: int) -> None:
    assert parse_amount(typed, currency, LARGEST) == minor


def test_a_number_that_reads_both_ways_in_a_currency_of_three_decimals_is_refused() -> None:
    dinar = Currency("KWD", 3, ".")
    with pytest.raises(InvalidInput) as refused:
        parse_amount("1,250", dinar, LARGEST)
    assert refused.value.problem == "amount_ambiguous"
    assert parse_amount("1.250", dinar, LARGEST) == 1250
    assert parse_amount("1,250.000", dinar, LARGEST) == 1_250_000


@pytest.mark.parametrize(
    ("typed", "problem"),
    [
        ("", "amount_unreadable"),
        ("doce", "amount_unreadable"),
        ("12,50,1", "amount_unreadable"),
        ("1.25.0", "amount_unreadable"),
        (",50", "amount_unreadable"),
        ("1e3", "amount_unreadable"),
        ("12,505", "amount_too_precise"),
        ("0.001", "amount_ambiguous"),  # not a sale of 1,00
        ("0,001", "amount_ambiguous"),
        ("00.500", "amount_ambiguous"),
        ("0", "amount_not_positive"),
        ("0,00", "amount_not_positive"),
        ("-5", "amount_not_positive"),
        ("10000000,01", "amount_too_large"),
        ("9" * 40, "amount_too_large"),
    ],
)
def test_amount_refusals(typed: str, problem: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_amount(typed, EUR_ES, LARGEST)
    assert refused.value.problem == problem


minor_amounts = st.integers(min_value=1, max_value=LARGEST)


@given(
    minor_amounts,
    st.sampled_from([EUR_ES, USD_US]),
    st.booleans(),
    st.sampled_from(["", "€", "$", " EUR"]),
)
def test_what_the_bot_writes_it_reads_back(
    minor: int, currency: Currency, grouped: bool, symbol: str
) -> None:
    written = currency.format(minor)
    if not grouped:
        written = written.replace(currency.thousands_mark, "")
    code = currency.code if symbol == " EUR" else ""
    assert parse_amount(written + (symbol if not code else " " + code), currency, LARGEST) == minor


@given(minor_amounts)
def test_plain_decimals_with_either_mark_read_the_same(minor: int) -> None:
    whole, cents = divmod(minor, 100)
    for mark in ".,":
        typed = f"{whole}{mark}{cents:02d}"
        assert parse_amount(typed, EUR_ES, LARGEST) == minor


@given(st.text(max_size=30))
def test_any_text_is_an_amount_or_refused(text: str) -> None:
    try:
        minor = parse_amount(text, EUR_ES, LARGEST)
    except InvalidInput as refused:
        assert refused.problem.startswith("amount_")
    else:
        assert 0 < minor <= LARGEST


@given(st.text(max_size=10))
def test_any_text_is_an_item_count_or_refused(text: str) -> None:
    try:
        count = parse_items(text, 500)
    except InvalidInput as refused:
        assert refused.problem in {"items_unreadable", "items_out_of_range"}
    else:
        assert 1 <= count <= 500


def test_item_examples() -> None:
    assert parse_items("3", 500) == 3
    assert parse_items("x3", 500) == 3
    assert parse_items("\u00d73", 500) == 3


def test_points_per_item_times_the_tier_multiplier_rounded_down(program: Program) -> None:
    bronze, silver, gold = program.tiers
    assert program.points_for(9999, 3, bronze) == 3
    assert program.points_for(9999, 3, silver) == 3  # 3.75
    assert program.points_for(9999, 3, gold) == 4  # 4.5


def test_points_per_currency_unit(program: Program) -> None:
    per_amount = program.model_copy(
        update={
            "earning": program.earning.model_copy(
                update={"mode": EarningMode.PER_AMOUNT, "points_per_currency_unit": 2}
            )
        }
    )
    bronze, silver, _ = per_amount.tiers
    assert per_amount.points_for(1250, 0, bronze) == 25  # 12.50 x 2
    assert per_amount.points_for(1250, 0, silver) == 31  # 31.25
    assert per_amount.points_for(49, 0, bronze) == 0
    assert silver.multiplier == Decimal("1.25")
