"""What a member does after joining, through the real Application and the Bot API stand-in."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
import zxingcpp
from PIL import Image

from bot.domain.erasures import JOB as ERASURES
from bot.domain.models import Customer, Identity, LedgerReason
from bot.storage.ledger import LedgerRepository
from handlers.telegram.standin import BOT_USERNAME, ChatUser
from tests.conftest import RunningBot
from tests.flows import register
from tests.postgres import stored_bytes
from tests.test_pushes import _survey_after_purchase


async def _join(
    bot: RunningBot, user_id: int, language: str = "es", **answers: object
) -> tuple[ChatUser, Customer]:
    user = bot.api.user(user_id, f"User{user_id}", language)
    await register(user, **answers)  # type: ignore[arg-type]
    member = await bot.services.membership.member(Identity("telegram", str(user_id)))
    assert member is not None
    return user, member


async def _give_points(
    bot: RunningBot, customer: Customer, *deltas: tuple[int, LedgerReason]
) -> None:
    async with bot.services.database.transaction() as tx:
        ledger = LedgerRepository(tx)
        for index, (delta, reason) in enumerate(deltas):
            await ledger.append(
                customer.id,
                delta,
                reason,
                actor="test",
                idempotency_key=f"t{customer.id}-{index}",
                at=bot.clock.now(),
            )


def _decode_qr(png: bytes) -> str:
    results = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert len(results) == 1
    return str(results[0].text)


@pytest.mark.parametrize("language", ["es", "en"])
async def test_card_is_a_qr_of_the_staff_deep_link(bot: RunningBot, language: str) -> None:
    user, member = await _join(bot, 3001, language)
    first = next(call for call in bot.api.calls_to("sendPhoto") if call.chat_id == user.id)
    assert (
        _decode_qr(first.files["photo"])
        == f"https://t.me/{BOT_USERNAME}?start=c_{member.member_code}"
    )
    await user.send("/card")
    card = await user.receive("sendPhoto")
    # Asked again, the same photo goes by Telegram's id for it: nothing drawn or uploaded.
    assert card.files == {} and card.params["photo"] == f"photo{first.message_id}"
    assert member.member_code in card.text
    assert ("Tarjeta de socio" if language == "es" else "Member card") in card.text


async def test_balance_in_spanish_shows_points_tier_progress_and_movements(bot: RunningBot) -> None:
    user, member = await _join(bot, 3002, "es")
    await _give_points(bot, member, (5, LedgerReason.PURCHASE), (2, LedgerReason.REFERRAL))
    await user.send("/balance")
    text = await user.receive_text()
    assert "tienes <b>7 puntos</b>" in text
    assert "Nivel: <b>Bronce</b> (te faltan 25 para Plata)" in text  # referral points do not count
    assert "Te faltan 3 puntos para una botella gratis" in text
    assert "24/11/2026  +2  amigo invitado" in text
    assert "24/11/2026  +5  compra" in text


async def test_balance_in_english_when_a_reward_is_affordable(bot: RunningBot) -> None:
    user, member = await _join(bot, 3003, "en")
    await _give_points(bot, member, (24, LedgerReason.PURCHASE), (6, LedgerReason.PURCHASE))
    await user.send("/balance")
    text = await user.receive_text()
    assert "you have <b>30 points</b>" in text
    assert "Tier: <b>Silver</b> (50 more to Gold)" in text
    assert "You can already redeem a free bottle" in text
    assert "You can already redeem a wine tasting for two" in text


async def test_tier_counts_only_the_last_twelve_months(bot: RunningBot) -> None:
    user, member = await _join(bot, 3004, "en")
    await _give_points(bot, member, (40, LedgerReason.PURCHASE))
    bot.clock.advance(timedelta(days=366))
    await user.send("/balance")
    text = await user.receive_text()
    assert "<b>40 points</b>" in text
    assert "Tier: <b>Bronze</b>" in text


async def test_balance_of_a_new_member_has_no_movements(bot: RunningBot) -> None:
    user, _ = await _join(bot, 3005, "es")
    await user.send("/balance")
    text = await user.receive_text()
    assert "tienes <b>0 puntos</b>" in text
    assert "Aún no tienes movimientos" in text


@pytest.mark.parametrize(("language", "marker"), [("es", "te faltan 15"), ("en", "15 to go")])
async def test_rewards_mark_what_the_member_can_afford(
    bot: RunningBot, language: str, marker: str
) -> None:
    user, member = await _join(bot, 3006, language)
    await _give_points(bot, member, (10, LedgerReason.PURCHASE))
    await user.send("/rewards")
    text = await user.receive_text()
    lines = text.splitlines()
    bottle = next(
        line for line in lines if "10 " in line and ("botella" in line or "bottle" in line)
    )
    tasting = next(line for line in lines if "25 " in line)
    assert bottle.startswith("✅")
    assert tasting.startswith("▫️") and marker in tasting


async def test_invite_gives_the_referral_link_and_counts_friends(bot: RunningBot) -> None:
    user, member = await _join(bot, 3007, "es")
    await user.send("/invite")
    text = await user.receive_text()
    link = f"https://t.me/{BOT_USERNAME}?start=ref_{member.referral_code}"
    assert link in text
    assert "Todavía no se ha unido ningún amigo" in text

    friend = bot.api.user(3008, "Amiga", "es")
    await friend.send(f"/start ref_{member.referral_code}")
    assert "Vienes invitado por un amigo" in await friend.receive_text()
    await friend.receive("sendMessage")  # the name question; register() starts over with /start
    await register(friend, start="/start")  # resumes the same draft, referrer remembered
    joined = await bot.services.membership.member(Identity("telegram", "3008"))
    assert joined is not None and joined.referred_by == member.id

    await user.send("/invite")
    assert "Ya se ha unido 1 amigo" in await user.receive_text()


async def test_the_referrer_is_named_in_the_new_members_welcome(bot: RunningBot) -> None:
    _, member = await _join(bot, 3009, "en", name="Carmen")
    friend = bot.api.user(3010, "Jon", "en")
    await friend.send(f"/start ref_{member.referral_code}")
    await friend.send("Jon")
    await friend.send("612345678")
    await friend.send("3/3")
    _, consent = await bot.api.wait_for(
        lambda call: call.chat_id == 3010 and call.callback_data_or_none("Yes") is not None
    )
    await friend.press(consent, "Yes")
    welcome = await bot.api.wait_for(
        lambda call: call.chat_id == 3010 and "member now" in call.text
    )
    assert "Carmen invited you" in welcome[1].text


async def test_referral_links_that_do_not_apply(bot: RunningBot) -> None:
    user, member = await _join(bot, 3011, "en")
    await user.send(f"/start ref_{member.referral_code}")
    assert "your own invitation link" in await user.receive_text()
    other_user, other = await _join(bot, 3012, "en")
    await user.send(f"/start ref_{other.referral_code}")
    assert "already a member" in await user.receive_text()
    stranger = bot.api.user(3013, "Kim", "en")
    await stranger.send("/start ref_NOSUCHCODE")
    assert "don't recognise that invitation link" in await stranger.receive_text()
    reloaded = await bot.services.membership.member(Identity("telegram", "3011"))
    assert reloaded is not None and reloaded.referred_by is None
    assert other_user.id == 3012


async def test_language_can_be_switched(bot: RunningBot) -> None:
    user, _ = await _join(bot, 3014, "es")
    await user.send("/language")
    choose = await user.receive("sendMessage")
    await user.press(choose, "English")
    edited = await user.receive("editMessageText")
    assert "in English from now on" in edited.text
    await user.send("/balance")
    assert "you have" in await user.receive_text()


async def test_notifications_toggle_consent_and_log_it(bot: RunningBot) -> None:
    user, member = await _join(bot, 3015, "en", consent=True)
    await user.send("/notifications")
    panel = await user.receive("sendMessage")
    assert "Offers and news: on" in panel.text
    bot.clock.advance(timedelta(hours=1))
    await user.press(panel, "Turn offers and news off")
    edited = await user.receive("editMessageText")
    assert "Offers and news: off" in edited.text
    await user.press(edited, "Turn surveys off")
    edited = await user.receive("editMessageText")
    assert "Satisfaction surveys: off" in edited.text
    reloaded = await bot.services.membership.member(Identity("telegram", "3015"))
    assert reloaded is not None
    assert (reloaded.promotions_consent, reloaded.surveys_enabled) == (False, False)
    history = (await bot.services.membership.personal_data(reloaded))["consent_history"]
    assert history == [
        {"topic": "promotions", "granted": True, "at": "2026-11-24 10:00:00"},
        {"topic": "promotions", "granted": False, "at": "2026-11-24 11:00:00"},
        {"topic": "surveys", "granted": False, "at": "2026-11-24 11:00:00"},
    ]
    assert member.promotions_consent is True


@pytest.mark.parametrize("language", ["es", "en"])
async def test_mydata_sends_everything_stored_as_json(bot: RunningBot, language: str) -> None:
    user, member = await _join(bot, 3016, language, name="Nuria", birthday="24/12/1990")
    await _give_points(bot, member, (3, LedgerReason.PURCHASE))
    await user.send("/mydata")
    document = await user.receive("sendDocument")
    data = json.loads(document.files["document"].decode("utf-8"))
    assert data["profile"]["name"] == "Nuria"
    assert data["profile"]["phone"] == "+34612345678"
    assert data["profile"]["birthday"] == "1990-12-24"
    assert data["profile"]["member_code"] == member.member_code
    assert data["points_balance"] == 3
    assert data["points_ledger"] == [
        {"at": "2026-11-24 10:00:00", "points": 3, "reason": "purchase", "note": None}
    ]
    assert data["consent_history"][0]["granted"] is True
    assert "programa" in document.text or "program" in document.text


@pytest.mark.parametrize(("language", "done"), [("es", "hemos borrado"), ("en", "has been erased")])
async def test_forget_erases_personal_data_and_keeps_the_ledger(
    bot: RunningBot, language: str, done: str
) -> None:
    user, member = await _join(bot, 3017, language)
    await _give_points(bot, member, (4, LedgerReason.PURCHASE))
    await user.send("/forget")
    confirm = await user.receive("sendMessage")
    await user.press(confirm, "Sí" if language == "es" else "Yes")
    assert done in await user.receive_text()
    assert await bot.services.membership.member(Identity("telegram", "3017")) is None
    async with bot.services.database.reading() as tx:
        row = await tx.fetch_one(
            "SELECT name, phone, birthday_day, channel_user_id, erased_at"
            " FROM customers WHERE id = ?",
            (member.id,),
        )
        ledger = await LedgerRepository(tx).balance(member.id)
    assert row is not None
    assert (row["name"], row["phone"], row["birthday_day"], row["channel_user_id"]) == (
        None,
        None,
        None,
        None,
    )
    assert row["erased_at"] is not None
    assert ledger == 4
    # A second tap on the old button finds nobody to erase, and the person can join afresh.
    await user.press(confirm, "Sí" if language == "es" else "Yes")
    assert "/start" in await user.receive_text()
    await register(user)
    again = await bot.services.membership.member(Identity("telegram", "3017"))
    assert again is not None and again.id != member.id


async def test_forget_can_be_declined(bot: RunningBot) -> None:
    user, _ = await _join(bot, 3018, "en")
    await user.send("/forget")
    confirm = await user.receive("sendMessage")
    await user.press(confirm, "No, keep")
    assert "nothing was erased" in await user.receive_text()
    assert await bot.services.membership.member(Identity("telegram", "3018")) is not None


@pytest.mark.parametrize(
    "command",
    [
        "/balance",
        "/card",
        "/invite",
        "/rewards",
        "/language",
        "/notifications",
        "/mydata",
        "/forget",
    ],
)
async def test_member_commands_ask_strangers_to_join(bot: RunningBot, command: str) -> None:
    stranger = bot.api.user(3019, "Zoe", "en")
    await stranger.send(command)
    assert "You are not a member yet. Send /start" in await stranger.receive_text()


async def test_help_lists_the_commands_each_person_may_use(bot: RunningBot) -> None:
    stranger = bot.api.user(3020, "Zoe", "en")
    await stranger.send("/help")
    text = await stranger.receive_text()
    assert "/start" in text and "/balance" not in text
    user, _ = await _join(bot, 3021, "es")
    await user.send("/help")
    text = await user.receive_text()
    for command in (
        "/balance",
        "/card",
        "/rewards",
        "/invite",
        "/notifications",
        "/language",
        "/mydata",
        "/forget",
    ):
        assert command in text
    assert "/start" not in text


async def test_forged_or_stale_buttons_get_a_clear_answer(bot: RunningBot) -> None:
    user, _ = await _join(bot, 3022, "en")
    await user.send("/language")
    choose = await user.receive("sendMessage")
    for data in ("language:fr", "forget:maybe", "x" * 64, "consent:yes"):
        await user.press_data(choose, data)
    await user.send("/balance")
    await user.receive("sendMessage")
    first_press = bot.api.calls.index(choose)
    answers = [call for call in bot.api.calls[first_press:] if call.method == "answerCallbackQuery"]
    assert len(answers) == 4
    assert all("no longer valid" in call.params.get("text", "") for call in answers[:3])


async def test_unknown_commands_are_answered(bot: RunningBot) -> None:
    user = bot.api.user(3023, "Ada", "en")
    await user.send("/sell 12")
    assert "I don't know that command" in await user.receive_text()


async def test_command_menu_is_published_per_language(bot: RunningBot) -> None:
    menus = {
        call.params.get("language_code"): json.loads(call.params["commands"])
        for call in bot.api.calls_to("setMyCommands")
        if "scope" not in call.params  # the default scope: everyone's menu
    }
    assert set(menus) == {"es", "en", None}
    assert menus[None] == menus["es"]
    assert {"command": "balance", "description": "My points, tier and latest movements"} in menus[
        "en"
    ]
    assert {
        "command": "balance",
        "description": "Mis puntos, mi nivel y mis últimos movimientos",
    } in menus["es"]


async def test_forget_leaves_no_personal_data_in_the_database_files(bot: RunningBot) -> None:
    """Survey comments, rendered pushes and audit rows included, and not in the bytes of the
    database or its write-ahead log either."""
    user, customer, survey = await _survey_after_purchase(bot, 3020)
    await user.press(survey, "2")
    await user.receive_containing("motivo principal")
    comment = "llamadme al +593 99 111 0001"
    await user.send(comment)
    await user.receive_containing("Gracias")
    await user.send("/stats")  # refused, and written to the audit log
    await user.receive_containing("permiso")
    phone = customer.phone
    assert phone is not None
    everything = await bot.services.membership.personal_data(customer, "terrorist")
    assert everything["surveys"][0]["reason"] == comment
    assert everything["sales"] and everything["outbox"] and everything["risk_flags"]
    assert everything["relationship_map_quadrant"] == "terrorist"
    await user.send("/forget")
    await user.press(await user.receive("sendMessage"), "Sí")
    await user.receive_containing("hemos borrado")
    await bot.services.jobs.run(ERASURES)  # that night (PostgreSQL's tables written anew)
    settings = bot.services.settings
    stored = stored_bytes(settings.database_path, settings.postgresql_url)
    assert customer.member_code.encode() in stored  # the files read are the shop's
    for trace in (customer.name, phone, comment, f"customer:telegram:{user.id}"):
        assert trace.encode() not in stored, trace


async def test_asking_for_the_invite_link_again_is_counted_not_stored_again(
    bot: RunningBot,
) -> None:
    user, member = await _join(bot, 3021, "es")
    for _ in range(5):
        await user.send("/invite")
        await user.receive_containing("ref_")
    async with bot.services.database.reading() as tx:
        rows = await tx.fetch_all(
            "SELECT times FROM invite_requests WHERE customer_id = ?", (member.id,)
        )
    assert [row["times"] for row in rows] == [5]


async def test_help_starts_with_who_you_are_to_the_shop(bot: RunningBot) -> None:
    owner = bot.api.user(1, "Dueña", "es")
    await owner.send("/help")
    assert (await owner.receive_text()).startswith("Diriges Bodega Familia Ruiz")
    stranger = bot.api.user(3199, "Ana", "en")
    await stranger.send("/help")
    assert (await stranger.receive_text()).startswith("You are not a member yet")
