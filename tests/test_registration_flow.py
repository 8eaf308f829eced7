"""Joining the program through the real Application and the Bot API stand-in."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.domain.models import Birthday, Customer, Identity, Language
from bot.program import Program
from handlers.telegram.app import build_application
from handlers.telegram.standin import FakeTelegram
from tests.conftest import START, FakeClock, RunningBot, running, settings_for
from tests.flows import register


async def _member(bot: RunningBot, user_id: int) -> Customer | None:
    return await bot.services.membership.member(Identity("telegram", str(user_id)))


@pytest.mark.parametrize(
    ("language_code", "expected", "greeting", "name_question"),
    [
        ("es", Language.ES, "Bienvenido", "¿Cómo te llamas?"),
        ("es-AR", Language.ES, "Bienvenido", "¿Cómo te llamas?"),
        ("en", Language.EN, "Welcome", "What is your name?"),
        ("de", Language.ES, "Bienvenido", "¿Cómo te llamas?"),  # unknown: DEFAULT_LANGUAGE
        (None, Language.ES, "Bienvenido", "¿Cómo te llamas?"),
    ],
)
async def test_registration_speaks_the_customers_language(
    bot: RunningBot,
    language_code: str | None,
    expected: Language,
    greeting: str,
    name_question: str,
) -> None:
    user = bot.api.user(2001, "Lucía", language_code)
    await user.send("/start")
    assert greeting in await user.receive_text()
    question = await user.receive("sendMessage")
    assert name_question in question.text
    # The Telegram first name is offered as a one-tap answer.
    assert [button["text"] for button in question.keyboard_buttons()] == ["Lucía"]


@pytest.mark.parametrize("language", ["es", "en"])
async def test_full_registration_stores_every_answer(bot: RunningBot, language: str) -> None:
    user = bot.api.user(2002, "Ana", language)
    card = await register(user, name="Ana García", phone="+34 612 345 678", birthday="29/02")
    member = await _member(bot, 2002)
    assert member is not None
    assert member.name == "Ana García"
    assert member.phone == "+34612345678"
    assert member.birthday == Birthday(29, 2, None)
    assert member.language == Language(language)
    assert member.promotions_consent is True
    assert member.created_at == START
    assert member.member_code in card.text
    assert card.files["photo"].startswith(b"\x89PNG")


async def test_consent_is_stored_with_its_time(bot: RunningBot) -> None:
    user = bot.api.user(2003, "Pau", "es")
    await register(user, consent=False)
    member = await _member(bot, 2003)
    assert member is not None
    assert member.promotions_consent is False
    data = await bot.services.membership.personal_data(member)
    assert data["consent_history"] == [
        {"topic": "promotions", "granted": False, "at": "2026-11-24 10:00:00"}
    ]


async def test_phone_and_birthday_can_be_skipped(bot: RunningBot) -> None:
    user = bot.api.user(2004, "Noa", "en")
    await register(user, phone=None, birthday=None)
    member = await _member(bot, 2004)
    assert member is not None
    assert member.phone is None
    assert member.birthday is None


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("612 34 56 78", "+34612345678"),
        ("0034 612-345-678", "+34612345678"),
        ("+1 212 555 0100", "+12125550100"),
    ],
)
async def test_a_typed_phone_number_is_normalised(bot: RunningBot, typed: str, stored: str) -> None:
    user = bot.api.user(2005, "Eva", "es")
    await user.send("/start")
    await user.send("Eva")
    await user.send(typed)
    await user.send("1990-12-24")
    consent = await user.api.wait_for(lambda call: call.callback_data_or_none("Sí") is not None)
    await user.press(consent[1], "Sí")
    await user.receive("sendPhoto")
    member = await _member(bot, 2005)
    assert member is not None
    assert member.phone == stored
    assert member.birthday == Birthday(24, 12, 1990)


async def test_bad_input_at_every_step_gets_a_hint_and_the_same_question(bot: RunningBot) -> None:
    user = bot.api.user(2006, "Leo", "es")
    await user.send("/start")
    await user.receive("sendMessage")
    await user.receive("sendMessage")

    await user.share_contact("+34612345678")  # a contact where a name is expected
    reply = await user.receive_text()
    assert "Primero necesito tu nombre" in reply and "1/4" in reply
    await user.send("x" * 65)
    reply = await user.receive_text()
    assert "demasiado largo" in reply and "1/4" in reply
    await user.send("Leo")
    assert "2/4" in await user.receive_text()

    await user.send("12ab")
    reply = await user.receive_text()
    assert "No reconozco ese número" in reply and "2/4" in reply
    await user.share_contact("+34699999999", owner_id=999)  # someone else's contact
    reply = await user.receive_text()
    assert "no es el tuyo" in reply and "2/4" in reply
    await user.send("612345678")
    assert "3/4" in await user.receive_text()

    for wrong, hint in [
        ("mañana", "No entiendo esa fecha"),
        ("31/02", "Esa fecha no existe"),
        ("29/02/2023", "Esa fecha no existe"),
        ("24/12/2090", "Ese año no es posible"),
    ]:
        await user.send(wrong)
        reply = await user.receive_text()
        assert hint in reply and "3/4" in reply, reply
    await user.send("24/12")
    assert "Anotado" in await user.receive_text()
    consent = await user.receive("sendMessage")
    assert "4/4" in consent.text

    await user.send("sí")  # typing instead of tapping
    again = await user.receive("sendMessage")
    assert "toca «Sí, quiero»" in again.text and "4/4" in again.text
    assert await _member(bot, 2006) is None
    await user.press(again, "Sí")
    assert "Ya eres socio" in await user.receive_text()


async def test_cancel_leaves_the_flow_and_start_begins_again(bot: RunningBot) -> None:
    user = bot.api.user(2007, "Iker", "es")
    await user.send("/start")
    await user.receive("sendMessage")
    await user.receive("sendMessage")
    await user.send("Iker")
    await user.receive("sendMessage")
    await user.send("/cancel")
    reply = await user.receive("sendMessage")
    assert "Registro cancelado" in reply.text
    assert reply.markup() == {"remove_keyboard": True}
    await user.send("hola")
    assert "Todavía no eres socio" in await user.receive_text()
    await user.send("/cancel")
    assert "No hay nada que cancelar" in await user.receive_text()
    await register(user)
    assert await _member(bot, 2007) is not None


async def test_start_again_shows_the_menu_never_a_second_account(bot: RunningBot) -> None:
    user = bot.api.user(2008, "Marta", "es")
    await register(user)
    first = await _member(bot, 2008)
    await user.send("/start")
    assert "Ya eres socio" in await user.receive_text()
    assert await _member(bot, 2008) == first


async def test_the_same_update_delivered_twice_is_handled_once(bot: RunningBot) -> None:
    user = bot.api.user(2009, "Raúl", "es")
    start = await user.send("/start")
    await user.receive("sendMessage")
    await user.receive("sendMessage")
    name = await user.send("Raúl")
    await user.receive("sendMessage")
    await bot.api.redeliver(start)
    await bot.api.redeliver(name)
    await user.send("/cancel")  # a later update: once it is answered, the replays were handled
    assert "Registro cancelado" in await user.receive_text()
    # welcome, name question, phone question, cancelled: the replays added nothing.
    assert len([c for c in bot.api.calls_to("sendMessage") if c.chat_id == 2009]) == 4


async def test_a_double_tap_on_consent_creates_one_account(bot: RunningBot) -> None:
    user = bot.api.user(2010, "Sara", "en")
    await user.send("/start")
    await user.send("Sara")
    await user.send("612345678")
    await user.send("1/1")
    _, consent = await user.api.wait_for(lambda call: call.callback_data_or_none("Yes") is not None)
    await user.press(consent, "Yes")
    await user.press(consent, "Yes")
    await user.receive("sendPhoto")
    assert "already a member" in (await user.receive("sendMessage")).text
    async with bot.services.database.reading() as tx:
        row = await tx.fetch_one(
            "SELECT COUNT(*) AS n FROM customers WHERE channel_user_id = '2010'"
        )
    assert row is not None and row["n"] == 1


async def test_a_registration_in_progress_survives_a_restart(
    api: FakeTelegram, clock: FakeClock, program: Program, tmp_path: Path
) -> None:
    settings = settings_for(api, tmp_path / "restart.db")
    user = api.user(2011, "Olga", "es")
    async with running(build_application(settings, program, clock)):
        await user.send("/start")
        await user.send("Olga")
        await user.receive("sendMessage")
        await user.receive("sendMessage")
        assert "2/4" in await user.receive_text()
    async with running(build_application(settings, program, clock)) as application:
        await user.send("+34 612 345 678")
        assert "3/4" in await user.receive_text()
        await user.send("/start")  # resuming shows the current question, not the first
        await user.receive("sendMessage")
        assert "3/4" in await user.receive_text()
        assert application.bot_data  # the second process really served these answers
