"""The program acting on its own: the automatic win-back, nudges, birthday greetings ahead,
the contact cap and quiet hours. Each on the injected clock, each message once, nothing to
those who did not accept offers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.domain.birthdays import BirthdayJob
from bot.domain.digest import DigestJob
from bot.domain.models import Actor, CouponKind, Customer, Identity, Refused, Role
from bot.domain.promotions import Promotion, promote
from bot.domain.pushes import PushMessage
from bot.program import Contact, Digest, Program, load_program
from handlers.telegram.app import build_application
from handlers.telegram.standin import ApiCall, FakeTelegram
from tests.conftest import FakeClock, RunningBot, running, settings_for
from tests.flows import CLERK, buy, join

MADRID = ZoneInfo("Europe/Madrid")
OWNER = Actor(Identity("telegram", "1"), Role.OWNER)


@pytest.fixture
def program() -> Program:
    sample = load_program(None)
    churn = sample.churn.model_copy(update={"automatic_winback": True})
    return sample.model_copy(update={"churn": churn})


def at_local(clock: FakeClock, day: date, hour: int) -> None:
    clock.advance(
        datetime(day.year, day.month, day.day, hour, tzinfo=MADRID).astimezone(UTC) - clock.now()
    )


def local_day(clock: FakeClock, days_on: int = 0) -> date:
    return clock.now().astimezone(MADRID).date() + timedelta(days=days_on)


async def offers_to(bot: RunningBot, customer: Customer) -> list[tuple[str, str, str]]:
    """(kind, template, status) of each offer queued for the customer, oldest first."""
    async with bot.services.database.reading() as tx:
        rows = await tx.fetch_all(
            "SELECT kind, template, status FROM outbox WHERE customer_id = ?"
            " AND kind IN ('birthday', 'winback', 'nudge', 'map', 'campaign') ORDER BY id",
            (customer.id,),
        )
    return [(row["kind"], row["template"], row["status"]) for row in rows]


async def lapse(bot: RunningBot, *customers: Customer) -> None:
    """Each buys, then 70 days pass without a purchase: past the 60-day floor, flagged."""
    for customer in customers:
        await buy(bot, customer)
    at_local(bot.clock, local_day(bot.clock, 70), 11)


# --- automatic win-back -------------------------------------------------------------------------


async def test_a_lapsing_customer_gets_one_winback_coupon_per_lapse(bot: RunningBot) -> None:
    user, ana = await join(bot, 501)
    _, bea = await join(bot, 502, consent=False)
    await lapse(bot, ana, bea)
    assert (await bot.services.jobs.run("winback")).queued == 1
    assert "10% de descuento" in (await user.receive_containing("echamos de menos")).text
    assert await offers_to(bot, bea) == []  # no consent, no offer
    for _ in range(2):  # the next days, and when she is "lost" at 180 days: still once
        at_local(bot.clock, local_day(bot.clock, 120), 11)
        assert (await bot.services.jobs.run("winback")).queued == 0
    assert len(await offers_to(bot, ana)) == 1
    await buy(bot, ana)  # back: the automation stops, and a new lapse is a new one
    await bot.services.jobs.run("churn")  # the nightly recompute clears her flag
    at_local(bot.clock, local_day(bot.clock, 181), 11)  # lost (her own gap is long now)
    assert (await bot.services.jobs.run("winback")).queued == 1


async def test_a_start_catches_up_only_jobs_whose_hour_passed_and_that_did_not_run_today(
    api: FakeTelegram, clock: FakeClock, program: Program, tmp_path: Path
) -> None:
    """The win-back due at 20:00: a restart at noon sends nothing; a start after 20:00 runs
    it once; a second restart that evening runs nothing again."""
    evening = program.churn.model_copy(update={"recompute_hour": 20})
    rules = program.model_copy(update={"churn": evening})
    settings = settings_for(api, tmp_path / "restarts.db")
    async with running(build_application(settings, rules, clock, background=False)) as app:
        bot = RunningBot(app, api, clock)
        _, ana = await join(bot, 101)
        await lapse(bot, ana)
        day = local_day(clock)
        runs = []
        for hour in (12, 21, 22):  # three starts that day
            at_local(clock, day, hour)
            await bot.services.jobs.catch_up()
            runs.append([kind for kind, _, _ in await offers_to(bot, ana)])
    assert runs == [[], ["winback"], ["winback"]]


async def test_the_owner_cannot_send_a_second_winback_in_the_same_lapse(bot: RunningBot) -> None:
    _, ana = await join(bot, 503)
    await lapse(bot, ana)
    await bot.services.jobs.run("winback")
    await bot.services.jobs.run("churn")
    refused = await bot.services.churn.send_winback(OWNER, ana.id)
    assert refused == Refused("winback_already_sent")


async def test_customers_flagged_before_it_was_turned_on_are_left_to_the_owner(
    bot: RunningBot,
) -> None:
    _, ana = await join(bot, 504)
    await buy(bot, ana)
    at_local(bot.clock, local_day(bot.clock, 61), 11)
    await bot.services.jobs.run("churn")  # flagged on day 61 ...
    at_local(bot.clock, local_day(bot.clock, 10), 11)
    assert (await bot.services.jobs.run("winback")).queued == 0  # ... over a week ago


# --- nudges -------------------------------------------------------------------------------------


async def test_a_customer_close_to_a_reward_and_idle_is_nudged_once(bot: RunningBot) -> None:
    user, ana = await join(bot, 511)
    _, bea = await join(bot, 512)  # 7 of 10 points: not close enough
    _, cris = await join(bot, 513, consent=False)
    await buy(bot, ana, 8)
    await buy(bot, bea, 7)
    await buy(bot, cris, 9)
    at_local(bot.clock, local_day(bot.clock, 20), 11)
    assert (await bot.services.jobs.run("nudges")).queued == 0  # 20 days: not idle yet
    at_local(bot.clock, local_day(bot.clock, 2), 11)
    assert (await bot.services.jobs.run("nudges")).queued == 1
    nudge = await user.receive_containing("muy cerca")
    assert "te faltan solo <b>2 puntos</b> para una botella gratis" in nudge.text
    at_local(bot.clock, local_day(bot.clock, 1), 11)
    assert (await bot.services.jobs.run("nudges")).queued == 0
    assert await offers_to(bot, bea) == [] and await offers_to(bot, cris) == []


# --- birthdays ahead ----------------------------------------------------------------------------


async def test_the_birthday_greeting_can_go_days_ahead(bot: RunningBot) -> None:
    services = bot.services
    rules = services.program.birthday.model_copy(update={"days_ahead": 7})
    program = services.program.model_copy(update={"birthday": rules})
    birthday = local_day(bot.clock, 7)
    user, _ana = await join(bot, 521, birthday=f"{birthday.day}/{birthday.month}")
    job = BirthdayJob(services.database, bot.clock, program, MADRID)
    assert await job.run() == 1
    assert await job.run() == 0
    await services.jobs.deliver()
    greeting = await user.receive_containing("cumpleaños está al caer")
    assert "15% de descuento" in greeting.text


# --- the contact cap and quiet hours ------------------------------------------------------------


def _offer(customer: Customer, key: str) -> Promotion:
    return Promotion(customer, "nudge", key, PushMessage("pushes/nudge", {}), "near_reward")


async def test_no_customer_gets_more_offers_a_week_than_the_cap(bot: RunningBot) -> None:
    _, ana = await join(bot, 531)
    contact = bot.services.program.contact
    assert contact.promotions_per_week == 2
    outcomes = []
    for day in range(8):
        async with bot.services.database.transaction() as tx:
            done = await promote(tx, [_offer(ana, f"test:{day}")], bot.clock.now(), contact)
        outcomes.append((done.queued, done.capped))
        bot.clock.advance(timedelta(days=1))
    # Days 0 and 1 fill the week; days 2-6 are held back; day 7 is a new week for day 0's.
    assert outcomes == [(1, 0), (1, 0), *[(0, 1)] * 5, (1, 0)]
    async with bot.services.database.transaction() as tx:  # the same keys again: nothing new
        again = await promote(
            tx, [_offer(ana, "test:0"), _offer(ana, "test:2")], bot.clock.now(), contact
        )
    assert (again.queued, again.capped) == (0, 0)
    bot.clock.advance(timedelta(days=8))  # a week with nothing sent: three new offers at once
    async with bot.services.database.transaction() as tx:
        batch = await promote(
            tx, [_offer(ana, f"batch:{n}") for n in range(3)], bot.clock.now(), contact
        )
    assert (batch.queued, batch.capped) == (2, 1)


async def test_the_cap_counts_every_kind_of_offer_together(bot: RunningBot) -> None:
    birthday = local_day(bot.clock)
    _user, ana = await join(bot, 532, birthday=f"{birthday.day}/{birthday.month}")
    await buy(bot, ana, 9)
    async with bot.services.database.transaction() as tx:
        await promote(tx, [_offer(ana, "earlier")], bot.clock.now(), bot.services.program.contact)
    assert (await bot.services.jobs.run("birthdays")).queued == 1  # the second this week
    at_local(bot.clock, local_day(bot.clock, 22), 11)
    assert (await bot.services.jobs.run("nudges")).queued == 1  # the first week is over
    owner = bot.api.user(1, "Dueña", "es")
    await owner.send(f"/customer {ana.member_code}")
    profile = await owner.receive_containing("Últimas ofertas")
    assert "aviso de premio cerca (cerca de un premio)" in profile.text
    assert "cumpleaños (su cumpleaños): enviada" in profile.text


async def test_offers_wait_for_the_quiet_hours_to_end(bot: RunningBot) -> None:
    user, ana = await join(bot, 541)
    await lapse(bot, ana)
    at_local(bot.clock, local_day(bot.clock, 1), 4)  # the nightly run, at 04:00
    result = await bot.services.jobs.run("winback")
    assert (result.queued, result.delivery.quiet) == (1, 1)
    assert await offers_to(bot, ana) == [("winback", "coupons/winback", "pending")]
    at_local(bot.clock, local_day(bot.clock), 8)
    assert (await bot.services.jobs.deliver()).sent == 0
    at_local(bot.clock, local_day(bot.clock), 9)
    assert (await bot.services.jobs.deliver()).sent == 1
    await user.receive_containing("echamos de menos")


async def test_the_automatic_winback_keeps_to_the_cap_and_leaves_the_coupon(
    bot: RunningBot,
) -> None:
    """The win-back decides in SQL, all lapsed customers at once: the same cap holds there,
    and a capped customer still has the coupon in /rewards."""
    _, ana = await join(bot, 552)
    _, bea = await join(bot, 553)
    await lapse(bot, ana, bea)
    reward = {"es": "una botella", "en": "a bottle"}
    nudge = PushMessage(
        "pushes/nudge", {"name": ana.name, "balance": 8, "missing": 2, "reward": reward}
    )
    async with bot.services.database.transaction() as tx:
        offers = [Promotion(ana, "nudge", f"week:{n}", nudge, "near_reward") for n in (1, 2)]
        await promote(tx, offers, bot.clock.now(), bot.services.program.contact)
    assert (await bot.services.jobs.run("winback")).queued == 1  # Bea's; Ana had her two
    assert [kind for kind, _, _ in await offers_to(bot, ana)] == ["nudge", "nudge"]
    assert [kind for kind, _, _ in await offers_to(bot, bea)] == ["winback"]
    async with bot.services.database.reading() as tx:
        row = await tx.fetch_one(
            "SELECT outcome FROM promotions WHERE customer_id = ? AND kind = 'winback'", (ana.id,)
        )
    assert row is not None and row["outcome"] == "capped"
    [coupon] = await bot.services.rewards.open_coupons(ana)
    assert coupon.kind is CouponKind.WINBACK
    assert (await bot.services.jobs.run("winback")).queued == 0  # decided once, either way


async def test_a_cap_of_one_holds_back_the_second_offer_of_a_run(bot: RunningBot) -> None:
    _, ana = await join(bot, 551)
    contact = Contact(promotions_per_week=1)
    async with bot.services.database.transaction() as tx:
        done = await promote(tx, [_offer(ana, "a"), _offer(ana, "b")], bot.clock.now(), contact)
        rows = await tx.fetch_all(
            "SELECT dedupe_key, outcome FROM promotions WHERE customer_id = ? ORDER BY id",
            (ana.id,),
        )
    assert (done.queued, done.capped) == (1, 1)
    assert [(row["dedupe_key"], row["outcome"]) for row in rows] == [
        ("a", "queued"),
        ("b", "capped"),
    ]


async def test_stats_count_the_winbacks_redeemed_and_the_revenue_they_brought(
    bot: RunningBot,
) -> None:
    _, ana = await join(bot, 561)
    await lapse(bot, ana)
    await bot.services.jobs.run("winback")
    [coupon] = await bot.services.rewards.open_coupons(ana)
    code = await bot.services.rewards.request_coupon(ana, coupon.id)
    assert not isinstance(code, Refused)
    await bot.services.rewards.confirm(CLERK, code.code)
    await buy(bot, ana, 3)  # the purchase the coupon was used on: 30,00
    bot.clock.advance(timedelta(days=10))
    await buy(bot, ana, 2)  # and she keeps coming
    bot.clock.advance(timedelta(days=40))
    await buy(bot, ana, 5)  # past the 30 days counted
    automations = (await bot.services.insights.report(90)).automations
    assert (automations.winbacks_sent, automations.winbacks_redeemed) == (1, 1)
    assert automations.winback_revenue_minor == 5000
    owner = bot.api.user(1, "Dueña", "es")
    await owner.send("/stats 90")
    report = await owner.receive_containing("Lo que hizo el programa solo")
    assert "1 enviados · 1 usados · trajeron 50,00 EUR en los 30 días siguientes" in report.text


# --- fraud alerts -------------------------------------------------------------------------------


def alerts_to_owner(bot: RunningBot) -> list[str]:
    return [
        call.text
        for call in bot.api.calls_to("sendMessage")
        if call.chat_id == 1 and "🚨" in call.text
    ]


async def test_five_sales_in_a_day_for_one_customer_alert_the_owner_once(bot: RunningBot) -> None:
    _, ana = await join(bot, 571)
    for _ in range(6):
        await buy(bot, ana)
    await bot.services.jobs.deliver()
    alerts = alerts_to_owner(bot)
    assert len(alerts) == 1 and "Cliente 571" in alerts[0] and "5 compras hoy" in alerts[0]
    at_local(bot.clock, local_day(bot.clock, 1), 11)
    for _ in range(5):
        await buy(bot, ana)
    await bot.services.jobs.deliver()
    assert len(alerts_to_owner(bot)) == 2  # a new day, a new alert


async def test_a_sale_far_above_the_usual_ticket_alerts_the_owner(bot: RunningBot) -> None:
    _, ana = await join(bot, 572)
    for _ in range(30):
        await buy(bot, ana, 1)  # 10,00 each
        bot.clock.advance(timedelta(days=1))
    await buy(bot, ana, 5)  # 50,00: five times the usual, not above it
    await buy(bot, ana, 6)
    await bot.services.jobs.deliver()
    [alert] = alerts_to_owner(bot)
    assert "60,00 EUR" in alert and "ticket habitual (10,00 EUR)" in alert


async def test_a_clerk_voiding_more_than_three_sales_a_day_alerts_the_owner(
    bot: RunningBot,
) -> None:
    _, ana = await join(bot, 573)
    sales = [(await buy(bot, ana)).sale for _ in range(4)]
    for sale in sales:
        assert not isinstance(await bot.services.sales.void(CLERK, sale.id, "mistake"), Refused)
    await bot.services.jobs.deliver()
    [alert] = alerts_to_owner(bot)
    assert "Pepe ha anulado <b>4 ventas hoy</b>" in alert


# --- the owner's digest -------------------------------------------------------------------------


async def test_the_digest_tells_each_owner_about_yesterday_once(bot: RunningBot) -> None:
    services = bot.services
    program = services.program.model_copy(update={"digest": Digest(enabled=True, send_hour=8)})
    job = DigestJob(services.database, bot.clock, program, MADRID, services.staff)
    _, ana = await join(bot, 581)
    for _ in range(5):
        await buy(bot, ana, 2)  # 20,00 each, and a fraud alert at the fifth
    at_local(bot.clock, local_day(bot.clock, 1), 8)
    assert await job.run() == 1
    assert await job.run() == 0
    await services.jobs.deliver()
    [digest] = [c.text for c in bot.api.calls_to("sendMessage") if c.chat_id == 1 and "☀️" in c.text]
    assert "ayer, 24/11/2026" in digest
    assert "Ventas: <b>5</b> (un día normal: 0)" in digest and "<b>100,00 EUR</b>" in digest
    assert "Socios nuevos: 1" in digest and "alertas: 1" in digest


async def test_the_digest_is_off_unless_the_owner_turns_it_on(bot: RunningBot) -> None:
    assert bot.services.program.digest.enabled is False
    assert (await bot.services.jobs.run("digest")).queued == 0


# --- the satisfaction x relationship map, acted on ----------------------------------------------


async def answer_nps(
    bot: RunningBot, user_id: int, score: int, *, regular: bool
) -> tuple[Customer, ApiCall]:
    """A member asked the NPS question (four days after buying, so not the satisfaction one)
    who answers `score` by tapping; a regular has 4 visits over more than 90 days. The
    customer, and the bot's reply to the answer."""
    user, customer = await join(bot, user_id)
    for _ in range(4 if regular else 1):
        await buy(bot, customer)
        bot.clock.advance(timedelta(days=31 if regular else 0))
    at_local(bot.clock, local_day(bot.clock, 4), 11)
    await bot.services.jobs.run("surveys")
    question = await user.receive_containing("del 0 al 10")
    await user.press(question, str(score))
    return customer, await user.receive_containing("Gracias por tu respuesta")


async def test_an_apostle_who_promotes_us_is_asked_to_share_the_link(bot: RunningBot) -> None:
    ana, _ = await answer_nps(bot, 591, 10, regular=True)
    await bot.services.jobs.deliver()
    ask = await bot.api.user(591, "", "es").receive_containing("gracias por recomendarnos")
    assert f"https://t.me/{bot.application.bot.username}?start=ref_{ana.referral_code}" in ask.text
    assert await offers_to(bot, ana) == [("map", "pushes/share_link", "sent")]


async def test_a_mercenary_hears_what_the_next_tier_gives(bot: RunningBot) -> None:
    ana, _ = await answer_nps(bot, 592, 9, regular=False)
    await bot.services.jobs.deliver()
    told = await bot.api.user(592, "", "es").receive_containing("nivel Plata")
    assert "Te faltan solo <b>29 puntos</b> para el nivel Plata" in told.text
    assert "x1,25" in told.text
    assert await offers_to(bot, ana) == [("map", "pushes/tier_incentive", "sent")]


async def test_a_hostage_is_asked_what_would_make_them_happier(bot: RunningBot) -> None:
    _, reply = await answer_nps(bot, 593, 5, regular=True)
    assert "¿qué haría que estuvieras más contento con nosotros?" in reply.text


async def test_a_detractor_opens_a_follow_up_the_owner_closes_with_a_tap(bot: RunningBot) -> None:
    await answer_nps(bot, 594, 2, regular=False)  # a terrorist
    bea, _ = await answer_nps(bot, 595, 6, regular=False)
    owner = bot.api.user(1, "Dueña", "es")
    await owner.send("/churn")
    listing = await owner.receive_containing("Seguimientos pendientes")
    assert (
        "Cliente 594" in listing.text and "NPS 2" in listing.text and "Cliente 595" in listing.text
    )
    await owner.press_data(listing, listing.callback_data("📞 Le llamé"))
    assert "le llamaste" in (await owner.receive_containing("Anotado")).text
    await owner.press_data(listing, listing.callback_data("📞 Le llamé"))
    await owner.receive_containing("ya estaba cerrado")
    datas = [button["callback_data"] for button in listing.inline_buttons()]
    coupon_for_bea = [data for data in datas if data.endswith(":coupon")][1]
    await owner.press_data(listing, coupon_for_bea)
    await owner.receive_containing("cupón")
    [coupon] = await bot.services.rewards.open_coupons(bea)
    assert coupon.percent_off == 10
    assert await bot.services.follow_ups.open_ones() == []
    bot.clock.advance(timedelta(seconds=1))
    report = await bot.services.insights.report(30)
    assert report.map_actions == 2  # both follow-ups closed
