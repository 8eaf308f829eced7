"""Staff at the counter, end to end through the real Application and the Bot API stand-in."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import timedelta

import pytest

from bot.domain.models import Customer, Identity
from handlers.telegram.standin import ChatUser
from tests.conftest import RunningBot
from tests.flows import hire, join, register, sell_by_scan

OWNER_ID = 1  # settings_for() makes user 1 the owner


async def _customer(
    bot: RunningBot, user_id: int, language: str = "es", **answers: object
) -> tuple[ChatUser, Customer]:
    user = bot.api.user(user_id, f"Cliente{user_id}", language)
    await register(user, **answers)  # type: ignore[arg-type]
    member = await bot.services.membership.member(Identity("telegram", str(user_id)))
    assert member is not None
    return user, member


async def _team(bot: RunningBot, language: str = "es") -> tuple[ChatUser, ChatUser]:
    owner = bot.api.user(OWNER_ID, "Dueña", language)
    clerk = bot.api.user(50, "Pepe", language)
    await hire(owner, clerk)
    return owner, clerk


async def _balance(bot: RunningBot, customer: Customer) -> int:
    async with bot.services.database.reading() as tx:
        row = await tx.fetch_one(
            "SELECT COALESCE(SUM(delta), 0) AS total FROM points_ledger WHERE customer_id = ?",
            (customer.id,),
        )
    assert row is not None
    return int(row["total"])


def _sale_id(receipt: str) -> int:
    match = re.search(r"#(\d+)", receipt)
    assert match, receipt
    return int(match.group(1))


async def test_owner_invites_staff_who_records_a_sale_by_scanning_the_card(bot: RunningBot) -> None:
    owner, clerk = await _team(bot)
    assert "Pepe ha aceptado la invitación" in (await owner.receive_containing("Pepe")).text
    customer_user, customer = await _customer(bot, 100)

    await clerk.send(f"/start c_{customer.member_code}")
    card = await clerk.receive("sendMessage")
    assert "Cliente100" in card.text and "Bronce" in card.text and "0 puntos" in card.text
    await clerk.send("24,50 3")
    confirmation = await clerk.receive("sendMessage")
    assert (
        "24,50 EUR" in confirmation.text
        and "3 unidades" in confirmation.text
        and "Sumará <b>3 puntos</b>" in confirmation.text
    )
    await clerk.press(confirmation, "Confirmar")
    receipt = await clerk.receive_containing("registrada")
    assert "Cliente100 suma 3 puntos y tiene 3 puntos" in receipt.text
    # The prompt itself became the receipt, its buttons gone.
    assert (receipt.method, receipt.message_id) == ("editMessageText", confirmation.message_id)
    assert not receipt.inline_buttons()

    earned = await customer_user.receive_containing("Gracias por tu compra")
    assert "Has sumado <b>3 puntos</b>" in earned.text
    assert "Ahora tienes <b>3 puntos</b>" in earned.text
    assert "Te faltan 7 puntos para una botella gratis" in earned.text
    assert await _balance(bot, customer) == 3
    async with bot.services.database.reading() as tx:
        sale = await tx.fetch_one(
            "SELECT amount_minor, items, points, recorded_by FROM sales WHERE id = ?",
            (_sale_id(receipt.text),),
        )
        audit = await tx.fetch_all("SELECT actor, action FROM audit_log ORDER BY id")
    assert sale is not None
    assert (sale["amount_minor"], sale["items"], sale["points"], sale["recorded_by"]) == (
        2450,
        3,
        3,
        "staff:telegram:50",
    )
    assert [(row["actor"], row["action"]) for row in audit] == [
        ("owner:telegram:1", "staff_invite"),
        ("staff:telegram:50", "staff_joined"),
        ("staff:telegram:50", "sale"),
    ]


async def test_a_sale_that_brings_a_reward_within_reach_says_so_first(bot: RunningBot) -> None:
    """At 12 points the free bottle (10) is news and the receipt leads with how to claim it,
    before the next reward; /rewards lists what can be had now first."""
    customer, member = await join(bot, 140)
    clerk = bot.api.user(51, "Pepe")
    await hire(bot.api.user(1, "Dueña"), clerk)
    await sell_by_scan(clerk, member.member_code, "70 7")
    await customer.receive_containing("Gracias por tu compra")
    await sell_by_scan(clerk, member.member_code, "50 5")
    earned = await customer.receive_containing("Gracias por tu compra")
    reached = earned.text.index("¡Ya puedes canjear una botella gratis!")
    assert reached < earned.text.index("Te faltan 13 puntos para una cata para dos")
    assert "Pídelo en caja" in earned.text
    await sell_by_scan(clerk, member.member_code, "10 1")
    plain = await customer.receive_containing("Gracias por tu compra")
    assert "Ya puedes canjear" not in plain.text  # no longer news
    await customer.send("/rewards")
    catalogue = (await customer.receive("sendMessage")).text
    assert catalogue.index("una botella gratis") < catalogue.index("una cata para dos")


async def test_sale_in_one_line_in_english(bot: RunningBot) -> None:
    _, clerk = await _team(bot, "en")
    customer_user, customer = await _customer(bot, 101, "en")
    await clerk.send(f"/sale {customer.member_code} $1.250,00 12")
    confirmation = await clerk.receive("sendMessage")
    assert "1.250,00 EUR" in confirmation.text and "12 items" in confirmation.text
    await clerk.press(confirmation, "Confirm")
    assert "recorded" in (await clerk.receive_containing("#")).text
    assert (
        "You earned <b>12 points</b>" in (await customer_user.receive_containing("Thank you")).text
    )
    # By phone number too, written without spaces.
    await clerk.send("/sale +34612345678 12.50 1")
    confirmation = await clerk.receive("sendMessage")
    assert "12,50 EUR" in confirmation.text


@pytest.mark.parametrize(
    ("typed", "hint"),
    [
        ("0 1", "mayor que cero"),
        ("-5 1", "mayor que cero"),
        ("doce 1", "No entiendo ese importe"),
        ("12,505 1", "demasiados decimales"),
        ("12,5,0 1", "No entiendo ese importe"),
        ("999999 1", "demasiado alto"),
        ("12,50", "Faltan las unidades"),
        ("12,50 tres", "No entiendo las unidades"),
        ("12,50 0", "no es posible"),
        ("12,50 100000", "no es posible"),
    ],
)
async def test_bad_amounts_are_refused_clearly_and_the_sale_stays_open(
    bot: RunningBot, typed: str, hint: str
) -> None:
    _, clerk = await _team(bot)
    _, customer = await _customer(bot, 102)
    await clerk.send(f"/start c_{customer.member_code}")
    await clerk.receive("sendMessage")
    await clerk.send(typed)
    refusal = await clerk.receive("sendMessage")
    assert hint in refusal.text
    assert "Escribe el importe y las unidades" in refusal.text
    await clerk.send("10 1")
    assert "Sumará <b>1 punto</b>" in (await clerk.receive("sendMessage")).text
    assert await _balance(bot, customer) == 0


async def test_a_double_tap_or_a_redelivered_update_adds_nothing(bot: RunningBot) -> None:
    _, clerk = await _team(bot)
    customer_user, customer = await _customer(bot, 103)
    await clerk.send(f"/start c_{customer.member_code}")
    await clerk.receive("sendMessage")
    await clerk.send("30 2")
    confirmation = await clerk.receive("sendMessage")
    tap = await clerk.press(confirmation, "Confirmar")
    await clerk.receive_containing("registrada")
    await clerk.press(confirmation, "Confirmar")  # the second tap
    assert "ya estaba registrada" in (await clerk.receive_containing("registrada")).text
    await bot.api.redeliver(tap)  # Telegram hands the first tap out again
    await clerk.send(f"/customer {customer.member_code}")
    profile = await clerk.receive_containing("Visitas")
    assert "Visitas: 1" in profile.text and "Saldo: 2 puntos" in profile.text
    assert await _balance(bot, customer) == 2
    notices = [
        c
        for c in bot.api.calls_to("sendMessage")
        if c.chat_id == customer_user.id and "Gracias por tu compra" in c.text
    ]
    assert len(notices) == 1


async def test_void_reverses_and_tells_the_customer(bot: RunningBot) -> None:
    owner, clerk = await _team(bot)
    customer_user, customer = await _customer(bot, 104)
    receipt = await sell_by_scan(clerk, customer.member_code, "40 4")
    sale_id = _sale_id(receipt.text)
    await clerk.send(f"/void {sale_id}")
    assert "Indica el motivo" in (await clerk.receive("sendMessage")).text
    await clerk.send("/void el-42 error")
    assert "/void NÚMERO MOTIVO" in (await clerk.receive("sendMessage")).text
    await clerk.send(f"/void {sale_id} importe equivocado")
    assert "anulada" in (await clerk.receive("sendMessage")).text
    told = await customer_user.receive_containing("anulado")
    assert "4 puntos" in told.text and "Ahora tienes 0 puntos" in told.text
    assert await _balance(bot, customer) == 0
    await clerk.send(f"/void {sale_id} otra vez")
    assert "ya estaba anulada" in (await clerk.receive("sendMessage")).text
    await owner.send("/void 999 nada")
    assert "No existe ninguna venta" in (await owner.receive_containing("venta")).text


async def test_staff_void_only_their_own_sales_within_a_day_owners_any(bot: RunningBot) -> None:
    owner, clerk = await _team(bot)
    other = bot.api.user(51, "Lola", "es")
    await hire(owner, other)
    _, customer = await _customer(bot, 105)
    mine = _sale_id((await sell_by_scan(clerk, customer.member_code, "10 1")).text)
    theirs = _sale_id((await sell_by_scan(other, customer.member_code, "10 1")).text)
    await clerk.send(f"/void {theirs} error")
    assert (
        "Solo puedes anular tus propias ventas" in (await clerk.receive_containing("anular")).text
    )
    bot.clock.advance(timedelta(hours=25))
    await clerk.send(f"/void {mine} error")
    assert (
        "Solo puedes anular tus propias ventas" in (await clerk.receive_containing("anular")).text
    )
    await owner.send(f"/void {mine} error de caja")
    assert "anulada" in (await owner.receive_containing("anulada")).text
    assert await _balance(bot, customer) == 1


async def test_a_reward_is_redeemed_once_even_when_two_staff_confirm_at_once(
    bot: RunningBot,
) -> None:
    owner, clerk = await _team(bot)
    customer_user, customer = await _customer(bot, 106)
    await sell_by_scan(clerk, customer.member_code, "100 10")
    await customer_user.receive_containing("Gracias por tu compra")
    await customer_user.send("/rewards")
    catalogue = await customer_user.receive("sendMessage")
    await customer_user.press(catalogue, "Canjear una botella gratis")
    code_card = await customer_user.receive("sendPhoto")
    code = re.search(r"<code>([A-Z0-9]+)</code>", code_card.text)
    assert code is not None
    assert "15 minutos" in code_card.text

    await clerk.send(f"/start r_{code.group(1)}")
    await owner.send(f"/redeem {code.group(1).lower()}")
    clerk_review = await clerk.receive_containing("¿Lo entregas?")
    owner_review = await owner.receive_containing("¿Lo entregas?")
    assert "una botella gratis" in clerk_review.text and "tiene 10 puntos" in clerk_review.text
    await asyncio.gather(
        clerk.press(clerk_review, "Confirmar"), owner.press(owner_review, "Confirmar")
    )
    outcomes = [
        (await clerk.receive_containing("anjea")).text,
        (await owner.receive_containing("anjea")).text,
    ]
    assert sum("✅ Canjeado" in text for text in outcomes) == 1
    assert sum("ya se ha canjeado" in text for text in outcomes) == 1
    assert "Te quedan 0 puntos" in (await customer_user.receive_containing("Disfrútalo")).text
    assert await _balance(bot, customer) == 0


async def test_two_codes_cannot_spend_the_same_points_twice(bot: RunningBot) -> None:
    _, clerk = await _team(bot)
    customer_user, customer = await _customer(bot, 107)
    await sell_by_scan(clerk, customer.member_code, "250 25")
    await customer_user.send("/rewards")
    catalogue = await customer_user.receive_containing("Premios")
    for reward in ("tasting_for_two", "tasting_for_two", "free_bottle"):
        await customer_user.press_data(catalogue, f"reward:{reward}")
    cards = [await customer_user.receive("sendPhoto") for _ in range(3)]
    codes = [re.findall(r"<code>([A-Z0-9]+)</code>", card.text)[0] for card in cards]
    assert codes[0] == codes[1] != codes[2]  # a second tap shows the same open code
    del codes[1]
    reviews = []
    for code in codes:
        await clerk.send(f"/redeem {code}")
        reviews.append(await clerk.receive_containing("¿Lo entregas?"))
    await clerk.press(reviews[0], "Confirmar")
    assert "✅ Canjeado" in (await clerk.receive("sendMessage")).text
    await clerk.press(reviews[1], "Confirmar")
    assert "ya no tiene puntos suficientes" in (await clerk.receive("sendMessage")).text
    await clerk.send(f"/redeem {codes[1]}")
    assert "ya no tiene puntos suficientes" in (await clerk.receive("sendMessage")).text
    assert await _balance(bot, customer) == 0


async def test_a_referral_pays_both_sides_once_at_the_first_purchase(bot: RunningBot) -> None:
    _, clerk = await _team(bot)
    referrer_user, referrer = await _customer(bot, 108)
    friend = bot.api.user(109, "Amiga", "es")
    await register(friend, start=f"/start ref_{referrer.referral_code}")
    friend_member = await bot.services.membership.member(Identity("telegram", "109"))
    assert friend_member is not None and friend_member.referred_by == referrer.id

    await sell_by_scan(clerk, friend_member.member_code, "10 1")
    earned = await friend.receive_containing("Gracias por tu compra")
    assert "1 punto</b> y 1 punto de bienvenida" in earned.text
    bonus = await referrer_user.receive_containing("primera compra")
    assert "Amiga" in bonus.text and "<b>2 puntos</b>" in bonus.text
    await sell_by_scan(clerk, friend_member.member_code, "10 1")
    assert await _balance(bot, referrer) == 2
    assert await _balance(bot, friend_member) == 3  # 1 + 1 bonus + 1


async def test_the_referrer_bonus_respects_the_monthly_cap(bot: RunningBot, program) -> None:  # type: ignore[no-untyped-def]
    _, clerk = await _team(bot)
    _, referrer = await _customer(bot, 110)
    cap = program.referral.monthly_cap_per_referrer
    for number in range(cap + 1):
        friend = bot.api.user(200 + number, f"Amigo{number}", "es")
        await register(friend, start=f"/start ref_{referrer.referral_code}")
        member = await bot.services.membership.member(Identity("telegram", str(200 + number)))
        assert member is not None
        await clerk.send(f"/sale {member.member_code} 10 1")
        confirmation = await clerk.receive("sendMessage")
        await clerk.press(confirmation, "Confirmar")
        await clerk.receive_containing("registrada")
    assert await _balance(bot, referrer) == cap * program.referral.referrer_points


async def test_tier_up_is_announced(bot: RunningBot) -> None:
    _, clerk = await _team(bot)
    customer_user, customer = await _customer(bot, 111, "en")
    await sell_by_scan(clerk, customer.member_code, "300 30")
    assert (
        "You are now <b>Silver</b>"
        in (await customer_user.receive_containing("Congratulations")).text
    )
    await sell_by_scan(clerk, customer.member_code, "40 4")
    earned = await customer_user.receive_containing(
        "You earned <b>5 points"
    )  # 4 x 1.25, rounded down
    assert "35 points" in earned.text


async def test_a_customer_opening_someone_elses_card_learns_nothing(bot: RunningBot) -> None:
    _, owner_of_card = await _customer(bot, 112)
    nosy = bot.api.user(113, "Curioso", "es")
    await nosy.send(f"/start c_{owner_of_card.member_code}")
    text = await nosy.receive_text()
    assert "Cliente112" not in text and owner_of_card.member_code not in text
    assert "Bienvenido" in text  # just the ordinary welcome for a newcomer


@pytest.mark.parametrize(
    "command",
    [
        "/sale ABCD2345 10 1",
        "/void 1 x",
        "/redeem ABCD2345",
        "/customer Ana",
        "/staff",
        "/coupon ABCD2345 10",
    ],
)
async def test_customers_cannot_use_staff_commands_and_the_attempt_is_logged(
    bot: RunningBot, command: str
) -> None:
    intruder, customer = await _customer(bot, 114)
    await intruder.send(command)
    assert "No tienes permiso" in await intruder.receive_text()
    async with bot.services.database.reading() as tx:
        rows = await tx.fetch_all(
            "SELECT actor, action, subject FROM audit_log WHERE action = 'refused'"
        )
    assert [(row["actor"], row["action"]) for row in rows] == [("customer:telegram:114", "refused")]
    assert await _balance(bot, customer) == 0


async def test_staff_cannot_use_owner_commands(bot: RunningBot) -> None:
    _, clerk = await _team(bot)
    await clerk.send("/staff")
    assert "No tienes permiso" in (await clerk.receive_containing("permiso")).text
    await clerk.send("/coupon ABCD2345 10")
    assert "No tienes permiso" in (await clerk.receive_containing("permiso")).text


async def test_forged_sale_buttons_change_nothing(bot: RunningBot) -> None:
    _, clerk = await _team(bot)
    customer_user, customer = await _customer(bot, 115)
    await clerk.send(f"/sale {customer.member_code} 10 1")
    confirmation = await clerk.receive("sendMessage")
    await customer_user.press_data(
        confirmation, confirmation.callback_data("Confirmar")
    )  # not staff
    assert "No tienes permiso" in (await customer_user.receive_containing("permiso")).text
    other = bot.api.user(OWNER_ID, "Dueña", "es")
    await other.press_data(confirmation, confirmation.callback_data("Confirmar"))  # not their sale
    assert "ya no está abierta" in (await other.receive_containing("abierta")).text
    assert await _balance(bot, customer) == 0


async def test_invitations_work_once_and_expire(bot: RunningBot) -> None:
    owner = bot.api.user(OWNER_ID, "Dueña", "es")
    await owner.send("/staff")
    panel = await owner.receive("sendMessage")
    await owner.press_data(panel, "staff:invite")
    token = (
        (await owner.receive_containing("start=staff_")).text.split("start=staff_")[1].split()[0]
    )
    first, second = bot.api.user(60, "Uno", "es"), bot.api.user(61, "Dos", "es")
    await first.send(f"/start staff_{token}")
    assert "Bienvenido al equipo" in await first.receive_text()
    await second.send(f"/start staff_{token}")
    assert "ya se ha usado" in await second.receive_text()
    await first.send(f"/start staff_{token}")
    assert "ya se ha usado" in await first.receive_text()
    await owner.press_data(panel, "staff:invite")
    late = (await owner.receive_containing("start=staff_")).text.split("start=staff_")[1].split()[0]
    bot.clock.advance(timedelta(hours=24, seconds=1))
    await second.send(f"/start staff_{late}")
    assert "ha caducado" in await second.receive_text()
    await second.send("/start staff_nonsense")
    assert "no es válida" in await second.receive_text()
    assert (await bot.services.staff.actor(Identity("telegram", "61"))).is_staff is False


async def test_removed_staff_lose_access(bot: RunningBot) -> None:
    owner, clerk = await _team(bot)
    await owner.send("/staff")
    panel = await owner.receive_containing("Empleados")
    assert "Pepe" in panel.text
    await owner.press(panel, "Quitar a Pepe")
    assert "Pepe ya no es empleado" in (await owner.receive_containing("ya no es")).text
    assert "Ya no tienes acceso" in (await clerk.receive_containing("acceso")).text
    await clerk.send("/sale ABCD2345 10 1")
    assert "No tienes permiso" in (await clerk.receive_containing("permiso")).text


async def test_customer_lookup_by_code_phone_and_name(bot: RunningBot) -> None:
    _, clerk = await _team(bot, "en")
    _, customer = await _customer(bot, 116, "en", name="Rocío Márquez", phone="+34 611 111 111")
    await _customer(bot, 117, "en", name="Rocío Pérez", phone="+34 622 222 222")
    await sell_by_scan(clerk, customer.member_code, "20 2")
    for query in (customer.member_code, "611111111", "Márquez"):
        await clerk.send(f"/customer {query}")
        profile = await clerk.receive_containing("Rocío")
        assert (
            "Rocío Márquez" in profile.text
            and "Visits: 1" in profile.text
            and "Balance: 2 points" in profile.text
        )
    await clerk.send("/customer Rocío")
    assert "Several customers match" in (await clerk.receive_containing("match")).text
    await clerk.send("/customer Nadie")
    assert "can't find that customer" in (await clerk.receive_containing("find")).text


async def test_an_owner_coupon_is_redeemed_through_the_same_flow(bot: RunningBot) -> None:
    owner, clerk = await _team(bot, "en")
    customer_user, customer = await _customer(bot, 118, "en")
    await owner.send(f"/coupon {customer.member_code} 20% 7")
    assert "20% off" in (await owner.receive_containing("Coupon created")).text
    assert "A gift for you" in (await customer_user.receive_containing("gift")).text
    await customer_user.send("/rewards")
    catalogue = await customer_user.receive_containing("Your coupons")
    await customer_user.press(catalogue, "Use coupon")
    code = re.findall(r"<code>([A-Z0-9]+)</code>", (await customer_user.receive("sendPhoto")).text)[
        0
    ]
    await clerk.send(f"/redeem {code}")
    review = await clerk.receive_containing("Hand it over?")
    assert "Coupon: <b>20% off</b>" in review.text
    await clerk.press(review, "Confirm")
    assert "Redeemed for" in (await clerk.receive_containing("Redeemed")).text
    await customer_user.send("/rewards")
    assert "Your coupons" not in (await customer_user.receive_containing("Rewards")).text
    await clerk.send(f"/redeem {code}")
    assert "already been redeemed" in (await clerk.receive_containing("redeemed")).text


async def test_an_expired_redemption_code_is_refused(bot: RunningBot) -> None:
    _, clerk = await _team(bot, "en")
    customer_user, customer = await _customer(bot, 119, "en")
    await sell_by_scan(clerk, customer.member_code, "100 10")
    await customer_user.send("/rewards")
    catalogue = await customer_user.receive_containing("Rewards")
    await customer_user.press(catalogue, "Redeem")
    code = re.findall(r"<code>([A-Z0-9]+)</code>", (await customer_user.receive("sendPhoto")).text)[
        0
    ]
    bot.clock.advance(timedelta(minutes=16))
    await clerk.send(f"/redeem {code}")
    assert "has expired" in (await clerk.receive_containing("expired")).text
    assert await _balance(bot, customer) == 10


async def test_owner_adjustments_are_signed_reasoned_and_applied_once(bot: RunningBot) -> None:
    owner = bot.api.user(OWNER_ID, "Dueña", "en")
    customer_user, customer = await _customer(bot, 120, "en")
    grant = await owner.send(f"/adjust {customer.member_code} +5 bottles from the fair")
    assert "Adjusted: +5" in (await owner.receive_containing("+5")).text
    assert (
        "corrected your balance by +5" in (await customer_user.receive_containing("corrected")).text
    )
    await bot.api.redeliver(grant)
    await owner.send(f"/adjust {customer.member_code} -6 typo")
    assert "cannot take away more points" in (await owner.receive_containing("points")).text
    await owner.send(f"/adjust {customer.member_code} -2")
    assert "give a reason" in (await owner.receive_containing("reason")).text
    await owner.send(f"/adjust {customer.member_code} 0 nothing")
    assert "not possible" in (await owner.receive_containing("possible")).text
    await owner.send(f"/adjust {customer.member_code} five bottles")
    assert "/adjust CUSTOMER" in (await owner.receive_containing("/adjust")).text
    assert await _balance(bot, customer) == 5
    async with bot.services.database.reading() as tx:
        rows = await tx.fetch_all(
            "SELECT actor, details FROM audit_log WHERE action = 'adjustment'"
        )
    assert [row["actor"] for row in rows] == ["owner:telegram:1"]


async def test_help_shows_staff_and_owner_their_commands(bot: RunningBot) -> None:
    owner, clerk = await _team(bot, "en")
    await clerk.send("/help")
    text = (await clerk.receive_containing("/sale")).text
    assert "/redeem" in text and "/customer" in text and "/void" in text and "/staff" not in text
    await owner.send("/help")
    text = (await owner.receive_containing("/staff")).text
    assert "/coupon" in text and "/adjust" in text and "/sale" in text
    menus = [call for call in bot.api.calls_to("setMyCommands") if "scope" in call.params]
    assert {json.loads(call.params["scope"])["chat_id"] for call in menus} == {OWNER_ID, 50}
