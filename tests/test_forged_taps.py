"""Forged taps, the same corpus through both channels: one decoding of taps for both (the
core's codecs, bot/taps.py), and for anything that does not decode one polite "this button
no longer works", never an error."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from bot.program import Program
from handlers.telegram.standin import ApiCall
from handlers.whatsapp.standin import FakeGraph
from tests.conftest import FakeClock, RunningBot
from tests.test_whatsapp import OWNER, running

FORGED = [
    "survey:abc:1",
    "survey:1:2:3",
    "survey:12345678901234567890123:1",
    "coupon:abc",
    "language:xx",
    "notify:zzz",
    "sale:ok:x",
    "staff:remove:x",
    "winback:x",
    "followup:1:nonsense",
    "campaign:1:launch",
    "reward:NOT A KEY",
    "🍷",
]
STALE = "ya no es válido"

# One tap by the owner, answered by what the channel says back to them.
Tap = Callable[[str], Awaitable[str]]


@pytest.fixture(params=["telegram", "whatsapp"])
async def owner_taps(
    request: pytest.FixtureRequest,
    bot: RunningBot,
    graph: FakeGraph,
    clock: FakeClock,
    program: Program,
    tmp_path: Path,
) -> AsyncIterator[Tap]:
    if request.param == "telegram":
        owner = bot.api.user(1, "Dueña", "es")

        async def tap_on_telegram(data: str) -> str:
            mark = len(bot.api.calls)
            await bot.api.handled(
                await owner.press_data(ApiCall("sendMessage", {}, message_id=1), data)
            )
            return " ".join(
                call.params.get("text", "")
                for call in bot.api.calls[mark:]
                if call.method == "answerCallbackQuery"
            )

        yield tap_on_telegram
        return
    async with running(graph, clock, program, tmp_path / "taps.db"):
        on_whatsapp = graph.person(OWNER, "Dueña")
        await on_whatsapp.send("menu")
        menu = await on_whatsapp.receive()

        async def tap_on_whatsapp(data: str) -> str:
            await on_whatsapp.tap_id(menu, data)
            return (await on_whatsapp.receive()).text

        yield tap_on_whatsapp


@pytest.mark.parametrize("forged", FORGED)
async def test_a_forged_tap_is_told_the_button_no_longer_works(
    owner_taps: Tap, forged: str, caplog: pytest.LogCaptureFixture
) -> None:
    assert STALE in await owner_taps(forged)
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
