"""A year of the whole timetable on the injected clock, over a leap day and both daylight-saving
changes, for a small shop whose customers buy, answer surveys, drift away and come back, with
every automation on. Afterwards, the rules that must hold whatever happened: every message went
once, no offer went without consent or over the weekly cap or in the quiet hours, and no
balance ever went below zero."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.domain.contact import PROMOTIONAL_KINDS, QUIET_KINDS
from bot.domain.models import ConsentTopic, Customer, Identity
from bot.program import Contact, Digest, Expiry, ExpiryMode, Program, load_program
from bot.storage.database import from_sql_time
from bot.storage.surveys import SurveyRepository
from handlers.telegram.app import build_application
from handlers.telegram.standin import FakeTelegram
from tests.conftest import FakeClock, RunningBot, running, settings_for
from tests.flows import buy, join

MADRID = ZoneInfo("Europe/Madrid")
FIRST_DAY = date(2027, 6, 1)
LAST_DAY = date(2028, 6, 1)  # 29 February 2028, 31 October 2027 and 26 March 2028 inside
# The timetable as the scheduler keeps it (local hours), with the shop open at 12 and 17.
DAY = [
    (4, "churn"),
    (4, "winback"),
    (8, "digest"),
    (10, "birthdays"),
    (10, "expiry"),
    (11, "nudges"),
    (11, "surveys"),
    (12, "shop"),
    (15, "surveys"),
    (17, "shop"),
]


@pytest.fixture
def program() -> Program:
    sample = load_program(None)
    return sample.model_copy(
        update={
            "expiry": Expiry(mode=ExpiryMode.LOTS, months=6, warning_days=14, last_chance_days=3),
            "churn": sample.churn.model_copy(update={"automatic_winback": True}),
            "nudges": sample.nudges.model_copy(update={"near_reward_share": Decimal("0.5")}),
            "digest": Digest(enabled=True),
            "contact": Contact(promotions_per_week=1),  # tight, so that the cap is put to work
        }
    )


def at_local(clock: FakeClock, day: date, hour: int) -> None:
    target = datetime(day.year, day.month, day.day, hour, tzinfo=MADRID).astimezone(UTC)
    clock.advance(target - clock.now())


@pytest.fixture
async def bot(
    api: FakeTelegram, clock: FakeClock, program: Program, tmp_path: Path
) -> AsyncIterator[RunningBot]:
    """The bot without Telegram's overall rate limit, which counts real seconds: a year's
    messages would take minutes of them."""
    settings = settings_for(api, tmp_path / "year.db", limit_outgoing_rate=False)
    async with running(build_application(settings, program, clock, background=False)) as app:
        yield RunningBot(app, api, clock)


async def test_a_year_of_automations_keeps_every_rule(bot: RunningBot) -> None:
    at_local(bot.clock, FIRST_DAY - timedelta(days=1), 12)
    chance = random.Random(2027)
    birthdays = ["29/02", "31/10", "26/03", "1/06", "15/08", "24/12", None, "2/01"]
    customers: list[Customer] = []
    for number, birthday in enumerate(birthdays * 2):
        _, customer = await join(bot, 700 + number, birthday=birthday, consent=number % 3 != 2)
        customers.append(customer)
    never_asked = {customer.id for customer in customers if not customer.promotions_consent}
    # How often each buys: regulars, occasional, and some who stop for months.
    rhythm = {customer.id: chance.choice((0.3, 0.1, 0.03)) for customer in customers}
    quitter, quit_on = customers[0], date(2027, 12, 1)
    day = FIRST_DAY
    while day <= LAST_DAY:
        for hour, job in DAY:
            at_local(bot.clock, day, hour)
            if job == "shop":
                for customer in customers:
                    if chance.random() < rhythm[customer.id] / 2:
                        await buy(bot, customer, chance.randint(1, 3))
            else:
                await bot.services.jobs.run(job)
                if job == "surveys":
                    await answer_open_surveys(bot, customers, chance)
        if day == quit_on:
            await bot.services.membership.set_consent(quitter, ConsentTopic.PROMOTIONS, False)
        if day.day == 1:  # some drift away for a season, then come back
            for customer in customers:
                rhythm[customer.id] = chance.choice((0.3, 0.1, 0.03, 0.0))
        day += timedelta(days=1)
    at_local(bot.clock, LAST_DAY + timedelta(days=1), 12)
    await bot.services.jobs.deliver()

    rows = await outbox_rows(bot)
    promotions = [row for row in rows if row.kind in PROMOTIONAL_KINDS]
    assert {row.kind for row in promotions} >= {"birthday", "nudge", "winback"}
    assert any(row.kind == "expiry" for row in rows)
    async with bot.services.database.reading() as tx:
        held_back = await tx.fetch_one(
            "SELECT COUNT(*) AS n FROM promotions WHERE outcome = 'capped'"
        )
    assert held_back is not None and held_back["n"] > 0
    # Every message sent once: each chat got exactly what the outbox says was sent to it.
    sent_to: dict[int, int] = defaultdict(int)
    for row in rows:
        assert row.status == "sent", row
        sent_to[row.customer_id] += 1
    by_chat: dict[int | None, int] = defaultdict(int)
    for call in bot.api.calls_to("sendMessage") + bot.api.calls_to("sendPhoto"):
        by_chat[call.chat_id] += 1
    for customer in customers:
        assert by_chat[int(customer.identity.user_id)] == sent_to[customer.id]
    # No offer without consent, none after consent was withdrawn.
    for row in promotions:
        assert row.customer_id not in never_asked
        if row.customer_id == quitter.id:
            assert row.created_at.astimezone(MADRID).date() <= quit_on
    # Never more than the weekly cap in any 7 days.
    cap = bot.services.program.contact.promotions_per_week
    for customer in customers:
        moments = sorted(row.created_at for row in promotions if row.customer_id == customer.id)
        for index in range(len(moments) - cap):
            assert moments[index + cap] - moments[index] >= timedelta(days=7), customer.id
    # Nothing of the quiet kinds delivered in the quiet hours (21:00 to 9:00).
    for row in rows:
        if row.kind in QUIET_KINDS:
            assert row.sent_at is not None
            hour = row.sent_at.astimezone(MADRID).hour
            assert 9 <= hour < 21, row
    # No balance ever below zero, row by row.
    for customer in customers:
        running = 0
        async with bot.services.database.reading() as tx:
            ledger = await tx.fetch_all(
                "SELECT delta FROM points_ledger WHERE customer_id = ? ORDER BY id",
                (customer.id,),
            )
        for entry in ledger:
            running += entry["delta"]
            assert running >= 0, customer.id


async def answer_open_surveys(
    bot: RunningBot, customers: list[Customer], chance: random.Random
) -> None:
    """Most customers answer what they were asked, happy or not."""
    now = bot.clock.now()
    for customer in customers:
        async with bot.services.database.reading() as tx:
            survey = await SurveyRepository(tx).latest_open(customer.id, now)
        if survey is None or chance.random() < 0.3:
            continue
        score = chance.choice((10, 9, 8, 3)) if survey.kind == "nps" else chance.randint(1, 5)
        identity = Identity("telegram", customer.identity.user_id)
        await bot.services.surveys.answer(identity, survey.id, score)


@dataclass(frozen=True)
class Sent:
    customer_id: int
    kind: str
    status: str
    created_at: datetime
    sent_at: datetime | None


async def outbox_rows(bot: RunningBot) -> list[Sent]:
    async with bot.services.database.reading() as tx:
        rows = await tx.fetch_all(
            "SELECT customer_id, kind, status, created_at, sent_at FROM outbox"
            " WHERE customer_id IS NOT NULL ORDER BY id"
        )
    return [
        Sent(
            record["customer_id"],
            record["kind"],
            record["status"],
            from_sql_time(record["created_at"]),
            from_sql_time(record["sent_at"]) if record["sent_at"] else None,
        )
        for record in rows
    ]
