"""Bad input, fuzzed: whatever people type or whatever callback data arrives, the bot answers,
never fails with an unhandled error, and never moves a point it should not.

Each example starts a fresh bot on the stand-in and plays a customer, a stranger, a staff
member and the owner sending drawn messages, then the customer and the stranger tapping forged
buttons.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from bot.domain.models import Actor, Identity, Language, Role
from bot.domain.parsing import whole_number
from bot.program import load_program
from handlers.telegram.app import build_application
from handlers.telegram.standin import FakeTelegram
from tests.conftest import FakeClock, RunningBot, running, settings_for
from tests.flows import invitation, join

APOLOGY = "algo ha fallado"
COMMANDS = ("sale", "void", "redeem", "customer", "stats", "adjust", "coupon", "churn", "start")
CALLBACK_PREFIXES = (
    "sale:ok:",
    "sale:no:",
    "redeem:",
    "reward:",
    "coupon:",
    "survey:",
    "winback:",
    "staff:remove:",
    "notify:",
    "language:",
    "consent:",
)

words = st.text(max_size=40)
# What a number typed on a phone can look like: huge ones, signed ones, other scripts' digits.
numbers = st.one_of(
    st.integers().map(str),
    st.integers().map(lambda n: f"{n:+d}"),
    st.text(alphabet=st.characters(categories=("Nd", "No")) | st.sampled_from("+-#%"), max_size=25),
)
messages = st.one_of(
    # MEMBER stands for the customer's real member code, filled in when sent.
    st.builds(
        lambda name, number, rest: f"/{name} MEMBER {number} {rest}",
        st.sampled_from(("coupon", "sale")),
        numbers,
        words,
    ),
    # Only numbers that are not numbers: a real one would move points, as the owner meant.
    st.builds(
        lambda number: f"/adjust MEMBER {number} fuzz",
        numbers.filter(lambda text: whole_number(text, signed=True) is None),
    ),
    st.builds(lambda name, number: f"/{name} {number} x", st.sampled_from(COMMANDS), numbers),
    st.text(min_size=1, max_size=300),  # Telegram delivers no empty message
    st.text(min_size=3000, max_size=4096),  # Telegram's longest message
    st.builds(lambda name, args: f"/{name} {args}", st.sampled_from(COMMANDS), words),
    st.builds(lambda code: f"/start c_{code}", words),
    st.builds(lambda code: f"/start r_{code}", words),
    st.builds(lambda code: f"/start staff_{code}", words),
    st.sampled_from(["/sale M0000001 -5 1", "/sale M0000001 1e9 1", "/void 1", "/adjust"]),
)
callbacks = st.one_of(
    st.text(min_size=1, max_size=64),
    st.builds(lambda prefix, tail: prefix + tail, st.sampled_from(CALLBACK_PREFIXES), words),
    st.builds(lambda prefix, n: f"{prefix}{n}", st.sampled_from(CALLBACK_PREFIXES), st.integers()),
).filter(lambda data: 1 <= len(data.encode()) <= 64)  # what Telegram can deliver


@settings(
    max_examples=20,
    deadline=None,
    # Each example starts a bot: shrinking would take minutes. A failure is shown as drawn.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    # Telegram's longest messages are drawn on purpose: large inputs are the point.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(
    typed=st.lists(messages, min_size=12, max_size=12),
    tapped=st.lists(callbacks, min_size=8, max_size=8),
)
def test_no_input_breaks_the_bot_or_moves_a_point(
    tmp_path_factory: pytest.TempPathFactory, typed: list[str], tapped: list[str]
) -> None:
    asyncio.run(_fuzz(tmp_path_factory.mktemp("fuzz") / "fuzz.db", typed, tapped))


async def _fuzz(database: Path, typed: list[str], tapped: list[str]) -> None:
    api = FakeTelegram()
    await api.start()
    clock = FakeClock()
    try:
        application = build_application(
            settings_for(api, database), load_program(None), clock, background=False
        )
        async with running(application):
            bot = RunningBot(application, api, clock)
            customer, member = await join(bot, 60)
            owner = Actor(Identity("telegram", "1"), Role.OWNER)
            invite = await invitation(bot.services.staff, owner)
            await bot.services.staff.accept(
                Identity("telegram", "61"), invite.token, "P", Language.ES
            )
            await bot.services.adjustments.adjust(owner, member.member_code, 7, "fuzz", "fuzz:1")
            await customer.send("/balance")  # a message of the bot's to tap buttons under
            on = await customer.receive("sendMessage")
            ledger_before = await _ledger(bot)
            stranger, clerk = api.user(62, "Extraño", "es"), api.user(61, "Pepe", "es")
            senders = (customer, stranger, clerk, api.user(1, "Dueña", "es"))
            for index, text in enumerate(typed):
                await senders[index % 4].send(text.replace("MEMBER", member.member_code))
            for index, data in enumerate(tapped):
                last = await (customer, stranger)[index % 2].press_data(on, data)
            await api.handled(last)  # and so every update before it
            assert not [call for call in api.calls if APOLOGY in call.text]
            answered_taps = api.calls_to("answerCallbackQuery")
            assert len(answered_taps) >= len(tapped)
            assert await _ledger(bot) == ledger_before
    finally:
        await api.stop()


async def _ledger(bot: RunningBot) -> list[tuple[int, int, str]]:
    async with bot.services.database.reading() as tx:
        rows = await tx.fetch_all(
            "SELECT customer_id, delta, reason FROM points_ledger ORDER BY id"
        )
    return [(row[0], row[1], row[2]) for row in rows]


@pytest.mark.parametrize(
    "data",
    [f"{prefix}{'9' * 20}" for prefix in ("sale:ok:", "coupon:", "winback:", "staff:remove:")]
    + ["survey:99999999999999999999:7", "survey:1:٣"],
)
async def test_a_forged_button_with_a_number_too_large_is_an_old_button(
    bot: RunningBot, data: str
) -> None:
    customer, _ = await join(bot, 64)
    await customer.send("/balance")
    on = await customer.receive("sendMessage")
    await bot.api.handled(await customer.press_data(on, data))
    answers = bot.api.calls_to("answerCallbackQuery")
    assert answers and answers[-1].params.get("show_alert") == "true"
    assert not [call for call in bot.api.calls if APOLOGY in call.text]
