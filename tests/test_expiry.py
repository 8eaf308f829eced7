"""Points expiry on the injected clock: by lots and by inactivity, at shop-local dates across
a leap day and daylight-saving changes, each message once, never below zero, never racing a
redemption, never retroactive."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot import scheduled_job
from bot.domain.expiry import add_months, earned_by
from bot.domain.models import Customer, LedgerReason, Refused
from bot.domain.rewards import RedemptionView
from bot.program import Expiry, ExpiryMode, Program, load_program
from bot.setup_check import rules_changes
from bot.storage.database import from_sql_time
from bot.storage.ledger import LedgerRepository
from handlers.telegram.app import build_application
from handlers.telegram.standin import FakeTelegram
from tests.conftest import FakeClock, RunningBot, running, settings_for
from tests.flows import CLERK, buy, join

MADRID = ZoneInfo("Europe/Madrid")
BY_LOTS = Expiry(mode=ExpiryMode.LOTS, months=12, warning_days=30, last_chance_days=3)


def with_expiry(program: Program, expiry: Expiry) -> Program:
    return program.model_copy(update={"expiry": expiry})


@pytest.fixture
def program() -> Program:
    return with_expiry(load_program(None), BY_LOTS)


def at_local(clock: FakeClock, day: date, hour: int, minute: int = 0) -> None:
    target = datetime(day.year, day.month, day.day, hour, minute, tzinfo=MADRID)
    clock.advance(target.astimezone(UTC) - clock.now())


async def expiry_messages(
    bot: RunningBot, customer: Customer
) -> list[tuple[str, dict[str, object]]]:
    async with bot.services.database.reading() as tx:
        rows = await tx.fetch_all(
            "SELECT template, payload FROM outbox WHERE customer_id = ? AND kind = 'expiry'"
            " ORDER BY id",
            (customer.id,),
        )
    return [(row["template"], json.loads(row["payload"])["context"]) for row in rows]


async def ledger(bot: RunningBot, customer: Customer) -> list[tuple[int, LedgerReason]]:
    async with bot.services.database.reading() as tx:
        entries = await LedgerRepository(tx).all_for(customer.id)
    return [(entry.delta, entry.reason) for entry in entries]


async def run_daily(bot: RunningBot, last: date, first: date | None = None) -> None:
    """The expiry job at 10:00 every day from `first` (by default the day after the clock's)
    to `last`, as the timetable runs it."""
    day = first or bot.clock.now().astimezone(MADRID).date() + timedelta(days=1)
    while day <= last:
        at_local(bot.clock, day, 10)
        await bot.services.jobs.run("expiry")
        day += timedelta(days=1)


async def open_code(bot: RunningBot, customer: Customer) -> str:
    redemption = await bot.services.rewards.request_reward(customer, "free_bottle")
    assert not isinstance(redemption, Refused)
    return redemption.code


async def redeem_bottle(bot: RunningBot, customer: Customer) -> None:
    done = await bot.services.rewards.confirm(CLERK, await open_code(bot, customer))
    assert isinstance(done, RedemptionView)


# --- the calendar -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("earned", "months", "expires"),
    [
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2028, 1, 31), 1, date(2028, 2, 29)),
        (date(2028, 2, 29), 12, date(2029, 2, 28)),
        (date(2027, 2, 28), 12, date(2028, 2, 28)),
        (date(2026, 11, 24), 12, date(2027, 11, 24)),
        (date(2026, 12, 15), 3, date(2027, 3, 15)),
    ],
)
def test_months_are_added_on_the_calendar(earned: date, months: int, expires: date) -> None:
    assert add_months(earned, months) == expires


@given(
    st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)),
    st.integers(min_value=1, max_value=120),
)
def test_earned_by_is_the_last_day_expiring_in_time(day: date, months: int) -> None:
    last = earned_by(day, months)
    assert add_months(last, months) <= day < add_months(last + timedelta(days=1), months)


# --- by lots, over a year ---------------------------------------------------------------------


async def test_each_lot_expires_a_year_on_with_one_warning_and_one_last_chance(
    bot: RunningBot,
) -> None:
    _, ana = await join(bot, 401)
    await buy(bot, ana, 3)  # 2026-11-24
    await run_daily(bot, date(2027, 2, 9))
    at_local(bot.clock, date(2027, 2, 10), 12)
    await buy(bot, ana, 2)
    await run_daily(bot, date(2027, 2, 28))
    at_local(bot.clock, date(2027, 3, 1), 12)
    await buy(bot, ana, 6)  # 11 points: the first 10 go on a bottle, taking the oldest
    await redeem_bottle(bot, ana)
    await run_daily(bot, date(2028, 3, 10))
    told = await expiry_messages(bot, ana)
    assert told == [
        (
            "points/expiry_warning",
            {"points": 1, "on": "2028-03-01", "days": 30, "stage": "warning"},
        ),
        (
            "points/expiry_warning",
            {"points": 1, "on": "2028-03-01", "days": 3, "stage": "last_chance"},
        ),
    ]  # the news that it went would follow the last chance within the week: left out
    assert (await ledger(bot, ana))[-1] == (-1, LedgerReason.EXPIRY)
    assert (await bot.services.membership.standing(ana)).balance == 0


async def test_unspent_lots_expire_in_turn_at_local_dates(bot: RunningBot) -> None:
    _, ana = await join(bot, 402)
    await buy(bot, ana, 3)  # 24 Nov 2026
    # 00:30 on the night the clocks go forward is still 28 March in Madrid (27 March in UTC).
    at_local(bot.clock, date(2027, 3, 28), 0, 30)
    await buy(bot, ana, 2)
    await run_daily(bot, date(2028, 3, 29), first=date(2027, 10, 20))
    told = await expiry_messages(bot, ana)
    assert [(template, context.get("stage"), context.get("on")) for template, context in told] == [
        ("points/expiry_warning", "warning", "2027-11-24"),
        ("points/expiry_warning", "last_chance", "2027-11-24"),
        ("points/expiry_warning", "warning", "2028-03-28"),
        ("points/expiry_warning", "last_chance", "2028-03-28"),
    ]
    expiries = [delta for delta, reason in await ledger(bot, ana) if reason is LedgerReason.EXPIRY]
    assert expiries == [-3, -2]


async def test_a_leap_day_lot_expires_on_28_february(bot: RunningBot) -> None:
    _, ana = await join(bot, 403)
    at_local(bot.clock, date(2028, 2, 29), 18)
    await buy(bot, ana, 4)
    at_local(bot.clock, date(2028, 3, 1), 12)
    await buy(bot, ana, 1)
    await run_daily(bot, date(2029, 3, 1), first=date(2029, 2, 27))
    expiries = [delta for delta, reason in await ledger(bot, ana) if reason is LedgerReason.EXPIRY]
    assert expiries == [-4, -1]  # 28 Feb for the leap day's, 1 March for the next day's


async def test_running_the_job_again_or_after_downtime_expires_once(bot: RunningBot) -> None:
    _, ana = await join(bot, 404)
    await buy(bot, ana, 5)
    at_local(bot.clock, date(2027, 12, 20), 10)  # the bot was down for the warnings and the day
    for _ in range(3):
        await bot.services.jobs.run("expiry")
    assert [delta for delta, _ in await ledger(bot, ana)] == [5, -5]
    assert [template for template, _ in await expiry_messages(bot, ana)] == ["points/expired"]
    bot.clock.advance(timedelta(seconds=1))
    assert (await bot.services.insights.report(7)).automations.points_expired == 5


async def test_the_run_goes_a_slice_of_customers_at_a_time_each_once(
    bot: RunningBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each slice of customers is a transaction of its own (a sale waits for one slice at
    most): none is left out at a slice's edge, none expired or told twice."""
    monkeypatch.setattr(scheduled_job, "CUSTOMERS_AT_ONCE", 2)
    members = [(await join(bot, 410 + n))[1] for n in range(5)]
    for points, member in enumerate(members, start=1):
        await buy(bot, member, points)
    at_local(bot.clock, date(2027, 12, 20), 10)
    assert (await bot.services.jobs.run("expiry")).queued == 5
    assert (await bot.services.jobs.run("expiry")).queued == 0
    for points, member in enumerate(members, start=1):
        assert [delta for delta, _ in await ledger(bot, member)] == [points, -points]
        assert [template for template, _ in await expiry_messages(bot, member)] == [
            "points/expired"
        ]


async def test_balance_shows_the_next_expiry(bot: RunningBot) -> None:
    user, ana = await join(bot, 405)
    await buy(bot, ana, 3)
    at_local(bot.clock, date(2027, 1, 5), 12)
    await buy(bot, ana, 2)
    await user.send("/balance")
    reply = await user.receive_containing("puntos caducan")
    assert "3 puntos caducan el 24/11/2027" in reply.text


# --- racing a redemption ------------------------------------------------------------------------


async def test_points_promised_to_an_open_code_do_not_expire(bot: RunningBot) -> None:
    _, ana = await join(bot, 406)
    await buy(bot, ana, 12)
    at_local(bot.clock, date(2027, 11, 24), 9, 55)
    code = await open_code(bot, ana)
    at_local(bot.clock, date(2027, 11, 24), 10)
    await bot.services.jobs.run("expiry")
    assert (await bot.services.membership.standing(ana)).balance == 10
    assert isinstance(await bot.services.rewards.confirm(CLERK, code), RedemptionView)
    assert (await bot.services.membership.standing(ana)).balance == 0


async def test_an_expiry_and_a_redemption_at_once_never_go_below_zero(bot: RunningBot) -> None:
    _, ana = await join(bot, 407)
    await buy(bot, ana, 10)
    at_local(bot.clock, date(2027, 11, 24), 9, 58)
    code = await open_code(bot, ana)
    at_local(bot.clock, date(2027, 11, 24), 10)
    confirmed, _ = await asyncio.gather(
        bot.services.rewards.confirm(CLERK, code),
        bot.services.jobs.run("expiry"),
    )
    assert isinstance(confirmed, RedemptionView)
    assert sum(delta for delta, _ in await ledger(bot, ana)) == 0
    at_local(bot.clock, date(2027, 11, 25), 10)
    await bot.services.jobs.run("expiry")
    assert sum(delta for delta, _ in await ledger(bot, ana)) == 0


# --- by inactivity ------------------------------------------------------------------------------


async def test_inactivity_expires_everything_after_months_without_a_purchase(
    api: FakeTelegram, clock: FakeClock, tmp_path: Path
) -> None:
    rules = Expiry(mode=ExpiryMode.INACTIVITY, months=6, warning_days=14, last_chance_days=2)
    program = with_expiry(load_program(None), rules)
    settings = settings_for(api, tmp_path / "inactive.db")
    async with running(build_application(settings, program, clock, background=False)) as app:
        bot = RunningBot(app, api, clock)
        _, ana = await join(bot, 408)
        await buy(bot, ana, 4)
        await run_daily(bot, date(2027, 4, 30))
        at_local(clock, date(2027, 5, 1), 12)
        await buy(bot, ana, 1)  # a purchase starts the six months again
        await run_daily(bot, date(2027, 11, 5))
        told = await expiry_messages(bot, ana)
        assert [(template, context.get("stage")) for template, context in told] == [
            ("points/expiry_warning", "warning"),
            ("points/expiry_warning", "last_chance"),
        ]
        assert told[0][1]["on"] == "2027-11-01"
        assert sum(delta for delta, _ in await ledger(bot, ana)) == 0


# --- never retroactive --------------------------------------------------------------------------


async def test_turning_expiry_on_counts_points_held_as_earned_that_day(
    api: FakeTelegram, clock: FakeClock, tmp_path: Path
) -> None:
    settings = settings_for(api, tmp_path / "later.db")
    without = load_program(None)
    async with running(build_application(settings, without, clock, background=False)) as app:
        _, ana = await join(RunningBot(app, api, clock), 409)
        await buy(RunningBot(app, api, clock), ana, 7)
    at_local(clock, date(2028, 6, 1), 12)  # 18 months on, the owner turns expiry on
    with_lots = with_expiry(without, BY_LOTS)
    async with running(build_application(settings, with_lots, clock, background=False)) as app:
        bot = RunningBot(app, api, clock)
        await run_daily(bot, date(2028, 6, 5))
        assert sum(delta for delta, _ in await ledger(bot, ana)) == 7
        standing = await bot.services.membership.standing(ana)
        assert standing.next_expiry is not None
        assert (standing.next_expiry.points, standing.next_expiry.on) == (7, date(2029, 6, 1))
    changes = rules_changes(without, with_lots, {}, today=date(2028, 6, 1))
    assert any("never retroactively" in change and "01/06/2029" in change for change in changes)


async def test_a_member_hears_about_expiry_at_most_once_a_week(bot: RunningBot) -> None:
    """A regular who never redeems has a lot expiring every week: one message a week at most,
    and news that points went when no last chance came just before."""
    _, ana = await join(bot, 410)
    for _ in range(8):
        await buy(bot, ana)
        at_local(bot.clock, local_date(bot.clock) + timedelta(days=3), 12)
    await run_daily(bot, date(2028, 1, 31), first=date(2027, 10, 1))
    sent_on = await expiry_days(bot, ana)
    assert all((later - earlier).days >= 7 for earlier, later in pairwise(sent_on))
    stages = [context.get("stage") for _, context in await expiry_messages(bot, ana)]
    assert "warning" in stages and "last_chance" in stages and len(stages) < 8
    assert sum(delta for delta, _ in await ledger(bot, ana)) == 0


def local_date(clock: FakeClock) -> date:
    return clock.now().astimezone(MADRID).date()


async def expiry_days(bot: RunningBot, customer: Customer) -> list[date]:
    async with bot.services.database.reading() as tx:
        rows = await tx.fetch_all(
            "SELECT created_at FROM outbox WHERE customer_id = ? AND kind = 'expiry' ORDER BY id",
            (customer.id,),
        )
    return [from_sql_time(row["created_at"]).astimezone(MADRID).date() for row in rows]
