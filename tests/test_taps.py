"""Acknowledging a tap is a courtesy: Telegram refusing it (a tap too old, as after a restart)
or refusing an edit that changes nothing (a double tap) never stops the work or reads as a
failure."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from aiohttp import web

from bot.domain.models import Refused
from bot.program import Program
from bot.storage.inbox import InboxRepository
from handlers.telegram.app import build_application
from handlers.telegram.context import SERVICES_KEY
from handlers.telegram.standin import ApiCall, FakeTelegram, api_error
from tests.conftest import FakeClock, RunningBot, running, settings_for
from tests.flows import join, register, sell_by_scan
from tests.test_counter import _customer, _team
from tests.test_pushes import _survey_after_purchase

TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are"
    " exactly the same as a current content and reply markup of the message"
)
FAILED = "algo ha fallado"


def _refuse_acknowledgements(call: ApiCall) -> web.Response | None:
    return api_error(400, TOO_OLD) if call.method == "answerCallbackQuery" else None


def _nothing_to_change(call: ApiCall) -> web.Response | None:
    if call.method in {"editMessageText", "editMessageReplyMarkup"}:
        return api_error(400, NOT_MODIFIED)
    return None


def _said_to(bot: RunningBot, chat_id: int) -> str:
    return "\n".join(call.text for call in bot.api.calls if call.chat_id == chat_id)


async def test_a_sale_confirmed_by_a_tap_too_old_to_acknowledge_is_recorded(
    bot: RunningBot,
) -> None:
    _, clerk = await _team(bot)
    _, customer = await _customer(bot, 120)
    await clerk.send(f"/sale {customer.member_code} 20 2")
    prompt = await clerk.receive_with_button("sale:ok:")
    bot.api.override = _refuse_acknowledgements
    await clerk.press(prompt, "✅")
    receipt = await clerk.receive_containing("#")
    assert "registrada" in receipt.text
    assert FAILED not in _said_to(bot, clerk.id)
    async with bot.services.database.reading() as tx:
        row = await tx.fetch_one("SELECT COUNT(*) AS n FROM sales")
    assert row is not None and row["n"] == 1


async def test_consent_tapped_while_the_bot_was_down_still_registers(bot: RunningBot) -> None:
    bot.api.override = _refuse_acknowledgements
    user = bot.api.user(121, "Rosa", "es")
    card = await register(user)  # the last step is the consent tap
    assert card.method == "sendPhoto"
    assert FAILED not in _said_to(bot, user.id)


async def test_a_double_tap_on_a_redemption_is_not_called_a_failure(bot: RunningBot) -> None:
    _, clerk = await _team(bot)
    customer_user, customer = await _customer(bot, 122)
    await sell_by_scan(clerk, customer.member_code, "100 10")
    code = await bot.services.rewards.request_reward(customer, "free_bottle")
    assert not isinstance(code, Refused)
    await clerk.send(f"/redeem {code.code}")
    review = await clerk.receive_with_button("redeem:")
    await clerk.press(review, "Confirmar")
    assert "✅ Canjeado" in (await clerk.receive("sendMessage")).text
    bot.api.override = _nothing_to_change  # the buttons are gone already
    await bot.api.handled(await clerk.press(review, "Confirmar"))
    assert "ya se ha canjeado" in (await clerk.receive("sendMessage")).text
    assert FAILED not in _said_to(bot, clerk.id)
    assert FAILED not in _said_to(bot, customer_user.id)


async def test_a_double_tap_on_a_survey_score_is_not_called_a_failure(bot: RunningBot) -> None:
    user, _, survey = await _survey_after_purchase(bot, 123)
    await user.press(survey, "4")
    await user.receive_containing("motivo principal")
    bot.api.override = _nothing_to_change
    await bot.api.handled(await user.press(survey, "4"))
    assert FAILED not in _said_to(bot, user.id)


async def test_a_flooding_person_is_slowed_down_and_holds_up_nobody(
    api: FakeTelegram, clock: FakeClock, program: Program, tmp_path: Path
) -> None:
    settings = settings_for(api, tmp_path / "flood.db", flood_burst=5, flood_refill_per_second=1)
    async with running(build_application(settings, program, clock, background=False)) as app:
        bot = RunningBot(app, api, clock)
        flooder, _ = await join(bot, 130)
        other, _ = await join(bot, 131)
        for _ in range(30):
            await flooder.send("/card")
        tap = await flooder.press_data(ApiCall("sendMessage", {}, message_id=1), "language:en")
        await api.handled(await other.send("/balance"))
        assert "punto" in (await other.receive("sendMessage")).text
        await api.handled(tap)
        to_flooder = [call for call in api.calls if call.chat_id == flooder.id]
        assert [call.method for call in to_flooder].count("sendPhoto") == 5
        assert sum("muy deprisa" in call.text for call in to_flooder) == 1  # told once
        assert len(api.calls_to("answerCallbackQuery")) == 1  # the dropped tap, acknowledged
        clock.advance(timedelta(seconds=3))
        await api.handled(await flooder.send("/card"))  # the allowance refills with time
        assert [call.method for call in api.calls if call.chat_id == flooder.id].count(
            "sendPhoto"
        ) == 6


async def test_a_flood_found_in_the_inbox_at_start_is_judged_as_it_is_read(
    api: FakeTelegram, clock: FakeClock, program: Program, tmp_path: Path
) -> None:
    """Messages recorded but never judged (by a process that died, or another process) are
    judged as the worker reads them: past the allowance they are marked handled unread."""
    settings = settings_for(api, tmp_path / "backlog.db", flood_burst=3, flood_refill_per_second=1)
    user = {"id": 140, "is_bot": False, "first_name": "Ana", "language_code": "es"}
    sent = int(clock.now().timestamp())
    backlog = [
        (
            str(80_000 + n),
            "140",
            {
                "update_id": 80_000 + n,
                "message": {
                    "message_id": n,
                    "date": sent,
                    "chat": {"id": 140, "type": "private"},
                    "from": user,
                    "text": "hola",
                },
            },
        )
        for n in range(12)
    ]
    first = build_application(settings, program, clock, background=False)
    async with running(first) as app, app.bot_data[SERVICES_KEY].database.transaction() as tx:
        await InboxRepository(tx).record("telegram", backlog, clock.now())  # the worker sleeps
    async with running(build_application(settings, program, clock, background=False)) as app:
        await api.wait_for(lambda call: "muy deprisa" in call.text)
        async with app.bot_data[SERVICES_KEY].database.reading() as tx:
            assert not await InboxRepository(tx).unhandled("telegram", 0, 100)
    told = [call.text for call in api.calls_to("sendMessage") if call.chat_id == 140]
    assert sum("muy deprisa" in text for text in told) == 1
    assert len(told) == 3 + 1  # three answered within the allowance, then "slow down"


async def test_the_team_is_never_flood_limited_and_a_backlog_counts_as_it_was_sent(
    api: FakeTelegram, clock: FakeClock, program: Program, tmp_path: Path
) -> None:
    """A clerk typing fast at the counter is answered every time. A customer's messages that
    queued while the bot was down, a minute apart, are no flood either."""
    settings = settings_for(api, tmp_path / "team.db", flood_burst=3, flood_refill_per_second=0.1)
    async with running(build_application(settings, program, clock, background=False)) as app:
        bot = RunningBot(app, api, clock)
        owner = api.user(1, "Dueña", "es")
        for _ in range(10):
            await owner.send("/help")
        await api.handled(await owner.send("/help"))
        to_owner = [call for call in api.calls if call.chat_id == owner.id]
        assert len(to_owner) == 11 and not any("deprisa" in call.text for call in to_owner)
        patient, _ = await join(bot, 140)
    for _ in range(6):  # the bot is down; she writes a minute apart
        await patient.send("/balance")
        clock.advance(timedelta(minutes=1))
    async with running(build_application(settings, program, clock, background=False)):
        await api.handled(await patient.send("/balance"))
    to_patient = [call for call in api.calls if call.chat_id == patient.id]
    assert sum("punto" in call.text for call in to_patient) == 7
