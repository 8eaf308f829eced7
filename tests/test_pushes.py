"""Pushes the bot sends on its own: birthdays, surveys, flags; paced, once, on the fake clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web

from bot.app import run_job
from bot.config import Settings
from bot.domain.models import Actor, ConsentTopic, Customer, Identity, Language, Role
from bot.domain.pushes import DeliveryReport
from bot.domain.surveys import Answered
from bot.leadership import LEADER_LOCK
from bot.program import Digest, Program
from bot.scheduled_job import daily_at
from bot.storage.backups import exclusive_use
from bot.storage.flags import FlagRepository
from bot.storage.outbox import NewPush, OutboxRepository, OutboxStatus
from bot.storage.postgresql import PostgresDatabase
from bot.timetable import LeftQueued
from handlers.http_server import free_port
from handlers.telegram.app import build_application
from handlers.telegram.standin import ApiCall, ChatUser, FakeTelegram, api_error
from tests.conftest import FakeClock, RunningBot, running, settings_for
from tests.flows import buy, invitation, join, survey_sent

MADRID = ZoneInfo("Europe/Madrid")


def pushes_to(api: FakeTelegram, user_id: int) -> list[ApiCall]:
    return [call for call in api.calls_to("sendMessage") if call.chat_id == user_id]


def at_local(clock: FakeClock, year: int, month: int, day: int, hour: int) -> None:
    target = datetime(year, month, day, hour, tzinfo=MADRID).astimezone(UTC)
    clock.advance(target - clock.now())


# --- birthdays ------------------------------------------------------------------------------


async def test_a_birthday_brings_a_greeting_and_a_coupon_once(bot: RunningBot) -> None:
    ana, _ = await join(bot, 301, birthday="24/11/1990")
    await join(bot, 302, birthday="24/11", consent=False)
    await join(bot, 303, birthday="25/11")
    result = await bot.services.jobs.run("birthdays")
    assert (result.queued, result.delivery.sent) == (1, 1)
    greeting = pushes_to(bot.api, 301)[-1]
    assert "Feliz cumpleaños" in greeting.text and "15% de descuento" in greeting.text
    assert "hasta el 08/12/2026" in greeting.text
    assert pushes_to(bot.api, 302) == [] and pushes_to(bot.api, 303) == []
    again = await bot.services.jobs.run("birthdays")
    assert (again.queued, again.delivery.sent) == (0, 0)
    await ana.send("/rewards")
    assert "15% de descuento" in (await ana.receive_containing("Tus cupones")).text


@pytest.mark.parametrize(
    ("today", "celebrates"),
    [
        ((2028, 2, 29), True),  # leap year: on the day itself
        ((2028, 2, 28), False),  # ... and not the day before
        ((2027, 2, 28), True),  # other years: on 28 February
        ((2027, 3, 1), False),
    ],
)
async def test_29_february_birthdays(
    bot: RunningBot, today: tuple[int, int, int], celebrates: bool
) -> None:
    await join(bot, 304, birthday="29/02")
    at_local(bot.clock, *today, 11)
    result = await bot.services.jobs.run("birthdays")
    assert result.queued == int(celebrates)
    assert len(pushes_to(bot.api, 304)) == int(celebrates)


async def test_a_bot_down_at_send_time_catches_up_and_a_restart_sends_nothing_twice(
    api: FakeTelegram, clock: FakeClock, program: Program, tmp_path: Path
) -> None:
    settings = settings_for(api, tmp_path / "catchup.db")
    async with running(build_application(settings, program, clock, background=False)) as app:
        bot = RunningBot(app, api, clock)
        await join(bot, 305, birthday="24/11")
    at_local(clock, 2026, 11, 24, 15)  # down from 10:00, the birthday hour, back at 15:00
    for _ in range(2):
        async with running(build_application(settings, program, clock)):
            await api.wait_for(lambda call: call.chat_id == 305 and "cumpleaños" in call.text)
    assert len(pushes_to(api, 305)) == 1


async def test_a_push_for_a_channel_still_starting_waits_without_an_attempt(
    bot: RunningBot,
) -> None:
    """At start-up the dispatcher can read the outbox before Telegram has connected: the push
    waits a few seconds, and is not counted as a failed attempt (a minute's back-off)."""
    _, customer = await join(bot, 307)
    async with bot.services.database.transaction() as tx:
        message = {"context": {"shop": "x"}}
        await OutboxRepository(tx).enqueue(
            NewPush(customer.id, "nps", "starting", "pushes/nps", message), bot.clock.now()
        )
    channels = bot.services.channels
    telegram = channels.pop("telegram")
    assert bot.services.health.expects("telegram")
    assert (await bot.services.jobs.deliver()).deferred == 1
    async with bot.services.database.reading() as tx:
        row = await tx.fetch_one("SELECT attempts FROM outbox WHERE dedupe_key = 'starting'")
    assert row is not None and row["attempts"] == 0
    channels["telegram"] = telegram
    bot.clock.advance(timedelta(seconds=5))
    assert (await bot.services.jobs.deliver()).sent == 1
    assert len(pushes_to(bot.api, 307)) == 1


@pytest.mark.sqlite_only
async def test_a_push_caught_mid_send_by_a_crash_is_never_resent(bot: RunningBot) -> None:
    _, customer = await join(bot, 306)
    jobs = bot.services.jobs
    # The crash window: a push was marked `sending` when the process died.
    async with bot.services.database.transaction() as tx:
        outbox = OutboxRepository(tx)
        message = {"context": {"shop": "x"}}
        await outbox.enqueue(
            NewPush(customer.id, "nps", "crash-test", "pushes/nps", message), bot.clock.now()
        )
        row = await tx.fetch_one("SELECT id FROM outbox WHERE dedupe_key = 'crash-test'")
        assert row is not None
        await outbox.set_status(row["id"], OutboxStatus.SENDING, bot.clock.now())
    assert await jobs.catch_up_interrupted() == 1
    report = await jobs.deliver()
    async with bot.services.database.reading() as tx:
        counts = await OutboxRepository(tx).counts()
    assert counts == {"uncertain": 1}
    assert report.sent == 0
    assert pushes_to(bot.api, 306) == []


async def test_an_orderly_stop_finishes_the_push_in_hand_and_sends_no_more(
    bot: RunningBot,
) -> None:
    for user_id in range(307, 312):
        await join(bot, user_id, birthday="24/11")
    jobs = bot.services.jobs
    winding_down: list[asyncio.Task[None]] = []

    def stop_on_the_third(call: ApiCall) -> None:
        if call.method == "sendMessage" and "cumpleaños" in call.text.lower():
            greeted.append(call.chat_id)
            if len(greeted) == 3:  # the process is asked to stop while this one is out
                winding_down.append(asyncio.create_task(jobs.wind_down()))

    greeted: list[int | None] = []
    bot.api.on_record = stop_on_the_third
    result = await jobs.run("birthdays")
    await winding_down[0]
    async with bot.services.database.reading() as tx:
        counts = await OutboxRepository(tx).counts()
    assert result.delivery.sent == 3
    assert counts == {"sent": 3, "pending": 2}  # none left `sending`, to be called uncertain


# --- surveys --------------------------------------------------------------------------------


async def _survey_after_purchase(
    bot: RunningBot, user_id: int, language: str = "es"
) -> tuple[ChatUser, Customer, ApiCall]:
    user, customer = await join(bot, user_id, language=language)
    await buy(bot, customer)
    bot.clock.advance(timedelta(hours=21))  # the next day, 08:00 local: outside the hours
    assert (await bot.services.jobs.run("surveys")).queued == 0
    bot.clock.advance(timedelta(hours=3))  # 11:00 local
    result = await bot.services.jobs.run("surveys")
    assert result.queued == 1
    survey = pushes_to(bot.api, user_id)[-1]
    return user, customer, survey


async def test_satisfaction_survey_with_answer_and_reason(bot: RunningBot) -> None:
    user, customer, survey = await _survey_after_purchase(bot, 310)
    assert "Del 1 (muy mal) al 5" in survey.text
    assert [b["text"] for b in survey.inline_buttons()] == ["1", "2", "3", "4", "5"]
    await user.press(survey, "4")
    ask = await user.receive_containing("motivo principal")
    await user.send("Muy buen vino, gracias")
    assert "lo leemos todo" in (await user.receive_containing("Gracias")).text
    await user.press(survey, "5")  # a second tap
    await _popup_saying(bot.api, "Ya respondiste")
    async with bot.services.database.reading() as tx:
        row = await tx.fetch_one(
            "SELECT score, reason, reason_state FROM surveys WHERE customer_id = ?", (customer.id,)
        )
    assert row is not None
    assert (row["score"], row["reason"], row["reason_state"]) == (
        4,
        "Muy buen vino, gracias",
        "given",
    )
    assert "Saltar" in ask.inline_buttons()[0]["text"]
    # One survey per period: another purchase soon after asks nothing.
    await buy(bot, customer)
    bot.clock.advance(timedelta(days=1))
    assert (await bot.services.jobs.run("surveys")).queued == 0


async def test_the_reason_can_be_skipped(bot: RunningBot) -> None:
    user, _, survey = await _survey_after_purchase(bot, 311, "en")
    await user.press(survey, "5")
    ask = await user.receive_containing("main reason")
    await user.press(ask, "Skip")
    assert "Thank you again" in (await user.receive_containing("Thank you again")).text
    await user.send("hello")  # no reason awaited any more: an ordinary message
    assert "already a member" in (await user.receive_containing("member")).text


async def test_an_expired_survey_is_politely_ignored(bot: RunningBot) -> None:
    user, customer, survey = await _survey_after_purchase(bot, 312)
    bot.clock.advance(timedelta(days=8))
    await user.press(survey, "3")
    await _popup_saying(bot.api, "ya se cerró")
    async with bot.services.database.reading() as tx:
        row = await tx.fetch_one(
            "SELECT answered_at FROM surveys WHERE customer_id = ?", (customer.id,)
        )
    assert row is not None and row["answered_at"] is None


async def test_a_detractor_alerts_owner_and_staff_at_once(bot: RunningBot) -> None:
    await bot.services.staff.accept(
        Identity("telegram", "50"),
        (await invitation(bot.services.staff, Actor(Identity("telegram", "1"), Role.OWNER))).token,
        "Pepe",
        Language.ES,
    )
    owner = bot.api.user(1, "Owner", "en")
    await bot.api.handled(await owner.send("/help"))  # the owner writes in English
    user, customer, survey = await _survey_after_purchase(bot, 313)
    await user.press(survey, "2")
    _, alert = await bot.api.wait_for(_alert_to(50))
    assert "Satisfacción: <b>2</b>" in alert.text
    _, alert = await bot.api.wait_for(lambda call: call.chat_id == 1 and "Unhappy" in call.text)
    assert "Satisfaction: <b>2</b>\n" in alert.text
    await bot.api.handled(await user.send("El vino estaba picado"))
    _, with_comment = await bot.api.wait_for(
        lambda call: call.chat_id == 1 and "El vino estaba picado" in call.text
    )
    assert "Cliente 313" in with_comment.text and "explains" in with_comment.text
    to_owner = [call.text for call in bot.api.calls if call.chat_id == 1]
    assert sum("Unhappy customer" in text for text in to_owner) == 1  # once, not per answer
    flags = await bot.services.churn.flags_of(customer)
    assert [flag.flag for flag in flags] == ["detractor"]


async def test_nps_question_and_flags_raised_and_cleared(bot: RunningBot) -> None:
    user, customer = await join(bot, 314)
    await buy(bot, customer)
    bot.clock.advance(timedelta(days=31))
    at_local(bot.clock, 2026, 12, 25, 12)
    result = await bot.services.jobs.run("surveys")
    assert result.queued == 1
    nps = pushes_to(bot.api, 314)[-1]
    assert [b["text"] for b in nps.inline_buttons()] == [str(n) for n in range(11)]
    await user.press(nps, "3")
    await user.receive_containing("motivo principal")
    assert [f.flag for f in await bot.services.churn.flags_of(customer)] == ["detractor"]
    # 90 days later, after buying again, a better answer clears the flag.
    bot.clock.advance(timedelta(days=91))
    await buy(bot, customer)
    bot.clock.advance(timedelta(days=4))
    at_local(bot.clock, *_local_date(bot.clock), 12)
    await bot.services.jobs.run("surveys")
    again = pushes_to(bot.api, 314)[-1]
    await user.press(again, "9")
    await user.receive_containing("motivo principal")
    assert await bot.services.churn.flags_of(customer) == []
    async with bot.services.database.reading() as tx:
        history = await FlagRepository(tx).history(customer.id)
    assert [(f.flag, f.cleared_at is not None) for f in history][:1] == [("detractor", True)]


async def _popup_saying(api: FakeTelegram, part: str) -> None:
    """Wait for the small notice Telegram shows over a tapped button."""
    await api.wait_for(
        lambda call: call.method == "answerCallbackQuery" and part in call.params.get("text", "")
    )


async def test_unhappy_in_both_surveys_is_one_detractor_flag(bot: RunningBot) -> None:
    """Regression: two detractor answers made the daily recompute fail for everyone."""
    user, customer, satisfaction = await _survey_after_purchase(bot, 319)
    await user.press(satisfaction, "1")
    await user.receive_containing("motivo principal")
    nps_id = await survey_sent(bot.services.database, bot.clock, customer.id, "nps")
    bot.clock.advance(timedelta(minutes=5))
    answer = await bot.services.surveys.answer(Identity("telegram", "319"), nps_id, 3)
    assert isinstance(answer, Answered) and answer.detractor
    await bot.services.jobs.run("churn")
    flags = await bot.services.churn.flags_of(customer)
    # Raised by the first unhappy answer; it stays open, as it was raised, while either holds.
    assert [(flag.flag, flag.details) for flag in flags] == [
        ("detractor", {"survey": "satisfaction", "score": 1})
    ]


def _alert_to(chat_id: int) -> Callable[[ApiCall], bool]:
    return lambda call: call.chat_id == chat_id and "Cliente insatisfecho" in call.text


def _local_date(clock: FakeClock) -> tuple[int, int, int]:
    day = clock.now().astimezone(MADRID).date()
    return day.year, day.month, day.day


async def test_surveys_respect_customers_who_turned_them_off(bot: RunningBot) -> None:
    _, customer = await join(bot, 315)
    await bot.services.membership.set_consent(
        customer,
        ConsentTopic.SURVEYS,
        False,
    )
    await buy(bot, customer)
    bot.clock.advance(timedelta(hours=24))
    assert (await bot.services.jobs.run("surveys")).queued == 0


async def test_lapsing_and_lost_flags_from_purchase_gaps(bot: RunningBot) -> None:
    _, single = await join(bot, 316)
    _, regular = await join(bot, 317)
    await buy(bot, single)
    for _ in range(3):
        await buy(bot, regular)
        bot.clock.advance(timedelta(days=10))
    # regular: bought every 10 days, last one 10 days ago; single: one purchase 30 days ago.
    await bot.services.jobs.run("churn")
    assert await bot.services.churn.flags_of(regular) == []
    bot.clock.advance(timedelta(days=16))  # 26 days since: more than 2.5 x 10
    await bot.services.jobs.run("churn")
    flags = await bot.services.churn.flags_of(regular)
    assert [(f.flag, f.details["typical_gap"]) for f in flags] == [("lapsing", 10)]
    assert await bot.services.churn.flags_of(single) == []  # 46 days: under the 60-day floor
    bot.clock.advance(timedelta(days=15))
    await bot.services.jobs.run("churn")
    assert [f.flag for f in await bot.services.churn.flags_of(single)] == ["lapsing"]
    await buy(bot, regular)  # coming back clears it
    await bot.services.jobs.run("churn")
    assert await bot.services.churn.flags_of(regular) == []
    bot.clock.advance(timedelta(days=200))
    await bot.services.jobs.run("churn")
    assert [f.flag for f in await bot.services.churn.flags_of(single)] == ["lost"]


async def test_churn_lists_customers_at_risk_and_the_owner_sends_a_winback(bot: RunningBot) -> None:
    user, customer = await join(bot, 318)
    await buy(bot, customer, items=5)
    bot.clock.advance(timedelta(days=70))
    await bot.services.jobs.run("churn")
    owner = bot.api.user(1, "Dueña", "es")
    await owner.send("/churn")
    listing = await owner.receive_containing("Clientes en riesgo")
    assert (
        "Cliente 318" in listing.text
        and "70 días sin comprar" in listing.text
        and "50,00 EUR" in listing.text
    )
    await owner.press(listing, "Cliente 318")
    assert (
        "Cupón de vuelta para Cliente 318: 10%"
        in (await owner.receive_containing("Cupón de vuelta")).text
    )
    assert "Te echamos de menos" in (await user.receive_containing("echamos de menos")).text
    await owner.press(listing, "Cliente 318")
    assert "Ya se le envió" in (await owner.receive_containing("Ya se le")).text


# --- delivery under Telegram's limits ----------------------------------------------------------


async def test_a_429_is_honoured_on_the_clock(bot: RunningBot) -> None:
    await join(bot, 320, birthday="24/11")
    refused: list[ApiCall] = []

    def flood_once(call: ApiCall) -> web.Response | None:
        if call.method == "sendMessage" and call.chat_id == 320 and not refused:
            refused.append(call)
            return api_error(429, "Too Many Requests: retry after 7", retry_after=7)
        return None

    bot.api.override = flood_once
    result = await bot.services.jobs.run("birthdays")
    assert (result.delivery.sent, result.delivery.waits_for_retry_after) == (1, 1)
    assert 7 in bot.clock.slept
    assert len(pushes_to(bot.api, 320)) == 2  # the refused attempt and the delivered one


async def test_a_blocked_bot_marks_the_customer_unreachable(bot: RunningBot) -> None:
    _, blocked = await join(bot, 321, birthday="24/11")
    await join(bot, 322, birthday="24/11")
    bot.api.override = lambda call: (
        api_error(403, "Forbidden: bot was blocked by the user") if call.chat_id == 321 else None
    )
    result = await bot.services.jobs.run("birthdays")
    assert (result.delivery.sent, result.delivery.unreachable) == (1, 1)
    await buy(bot, blocked)
    bot.clock.advance(timedelta(hours=24))
    before = len(pushes_to(bot.api, 321))
    assert (await bot.services.jobs.run("surveys")).queued == 0  # skipped from then on
    assert len(pushes_to(bot.api, 321)) == before


async def test_other_errors_are_retried_a_bounded_number_of_times(bot: RunningBot) -> None:
    await join(bot, 323, birthday="24/11")
    await join(bot, 324, birthday="24/11")
    bot.api.override = lambda call: api_error(502, "Bad Gateway") if call.chat_id == 323 else None
    first = await bot.services.jobs.run("birthdays")
    assert (first.delivery.sent, first.delivery.retried) == (1, 1)
    for _ in range(3):
        bot.clock.advance(timedelta(minutes=10))
        await bot.services.jobs.deliver()
    async with bot.services.database.reading() as tx:
        row = await tx.fetch_one(
            "SELECT status, attempts FROM outbox o JOIN customers c ON c.id = o.customer_id"
            " WHERE c.channel_user_id = '323'"
        )
    assert row is not None and (row["status"], row["attempts"]) == ("failed", 3)
    assert len(pushes_to(bot.api, 323)) == 3


async def test_pushes_are_paced_within_the_rate_and_every_customer_is_served_once(
    bot: RunningBot,
) -> None:
    rate = bot.services.settings.push_rate_per_second
    for number in range(60):
        await join(bot, 400 + number, birthday="24/11")
    stamps: list[datetime] = []

    def strict_telegram(call: ApiCall) -> web.Response | None:
        if call.method != "sendMessage":
            return None
        now = bot.clock.now()
        recent = [s for s in stamps if now - s < timedelta(seconds=1)]
        if len(recent) >= 30:
            return api_error(429, "Too Many Requests", retry_after=1)
        stamps.append(now)
        return None

    bot.api.override = strict_telegram
    start = bot.clock.now()
    result = await bot.services.jobs.run("birthdays")
    assert (result.delivery.sent, result.delivery.waits_for_retry_after) == (60, 0)
    served = sorted(call.chat_id or 0 for call in bot.api.calls_to("sendMessage"))
    assert served == list(range(400, 460))
    elapsed = (bot.clock.now() - start).total_seconds()
    assert 59 / rate <= elapsed < 60 / rate + 1


def test_the_timetable_keeps_local_time_across_daylight_saving() -> None:
    trigger = daily_at(10, MADRID)
    before = trigger.get_next_fire_time(None, datetime(2026, 3, 28, 12, tzinfo=MADRID))
    after = trigger.get_next_fire_time(None, datetime(2026, 3, 29, 12, tzinfo=MADRID))
    assert before.astimezone(UTC).hour == 8  # 29 March, summer time: 10:00 is 08:00 UTC
    assert after.astimezone(UTC).hour == 8
    winter = trigger.get_next_fire_time(None, datetime(2026, 3, 27, 12, tzinfo=MADRID))
    assert winter.astimezone(UTC).hour == 9
    assert (before.hour, after.hour, winter.hour) == (10, 10, 10)


@pytest.mark.parametrize("job", ["churn", "expiry", "winback", "nudges", "digest"])
async def test_run_job_from_the_command_line(
    api: FakeTelegram,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    job: str,
) -> None:
    from bot.cli import main

    monkeypatch.chdir(tmp_path)
    for name, value in {
        "BOT_TOKEN": "1:abc",
        "TELEGRAM_API_URL": api.url,
        "DATABASE_PATH": str(tmp_path / "cli.db"),
    }.items():
        monkeypatch.setenv(name, value)
    assert await asyncio.to_thread(main, ["run-job", job]) == 0
    assert f"{job}: 0 queued; delivered 0" in capsys.readouterr().out


@asynccontextmanager
async def bot_running_on(settings: Settings) -> AsyncIterator[None]:
    """What a running `loyalty-bot run` holds: the SQLite file's lock, or on PostgreSQL the
    lead (the timetable and the outbox)."""
    if settings.postgresql_url is None:
        with exclusive_use(settings.database_path):
            yield
        return
    other = await PostgresDatabase.open(settings.postgresql_url)
    try:
        async with other.exclusively(LEADER_LOCK) as held:
            assert held is not None
            yield
    finally:
        await other.close()


async def test_run_job_delivers_only_when_no_bot_does_and_telegram_answers(
    api: FakeTelegram, tmp_path: Path, clock: FakeClock, program: Program
) -> None:
    """Beside a running bot, run-job queues and leaves the sending to it (one pacer per
    sender); with Telegram unreachable it gives up waiting after a few tries, the digest
    queued; the next run that reaches Telegram delivers it, once."""
    program = program.model_copy(update={"digest": Digest(enabled=True)})
    settings = settings_for(api, tmp_path / "jobs.db")
    async with bot_running_on(settings):
        result = await run_job(settings, program, "digest", clock)
    assert (result.queued, result.left_queued) == (1, LeftQueued.BOT_RUNNING)
    assert result.delivery == DeliveryReport() and pushes_to(api, 1) == []

    offline = settings.model_copy(update={"telegram_api_url": f"http://127.0.0.1:{free_port()}"})
    result = await run_job(offline, program, "digest", clock)
    assert (result.queued, result.left_queued) == (0, LeftQueued.CHANNEL_UNREACHABLE)
    assert clock.slept == [1, 2, 4] and pushes_to(api, 1) == []

    result = await run_job(settings, program, "digest", clock)
    assert (result.queued, result.left_queued, result.delivery.sent) == (0, None, 1)
    assert len(pushes_to(api, 1)) == 1


async def test_run_job_says_a_running_bot_delivers(
    api: FakeTelegram,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from bot.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BOT_TOKEN", "1:abc")
    monkeypatch.setenv("TELEGRAM_API_URL", api.url)
    with exclusive_use(tmp_path / "loyalty.db"):
        assert await asyncio.to_thread(main, ["run-job", "churn"]) == 0
    assert "churn: 0 queued; the running bot delivers them" in capsys.readouterr().out
    assert api.calls == []  # not even asked who the bot is
