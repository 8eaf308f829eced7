"""Each update takes effect once: recorded in the same commit as its change, confirmed to
Telegram only once handled, and polling that rides out Bot API trouble on the test clock."""

from __future__ import annotations

from datetime import timedelta

import pytest
from aiohttp import web

from bot.incoming import REDELIVERY_WINDOW, IncomingUpdates
from bot.storage.database import Database
from bot.storage.updates import ProcessedUpdates
from handlers.telegram.standin import ApiCall, api_error
from tests.conftest import FakeClock, RunningBot
from tests.flows import join


async def test_an_update_is_recorded_in_the_same_commit_as_its_change(
    database: Database, clock: FakeClock
) -> None:
    incoming = await _opened(database, clock, ids_only_grow=True)
    async with incoming.handling(41):
        with pytest.raises(RuntimeError):
            async with database.transaction():
                raise RuntimeError("the change failed")
        assert not await _recorded(database, 41)  # rolled back together: handle it again
        async with database.transaction():
            pass
        # Were the process to die here, before handling ends, the record is in with the change.
        assert await _recorded(database, 41)
    assert not await incoming.is_new(41)


async def _opened(database: Database, clock: FakeClock, *, ids_only_grow: bool) -> IncomingUpdates:
    incoming = IncomingUpdates(database, clock, "telegram", ids_only_grow=ids_only_grow)
    await incoming.open()
    return incoming


async def _recorded(database: Database, update_id: int) -> bool:
    async with database.reading() as tx:
        return await ProcessedUpdates(tx).handled("telegram", update_id)


async def test_an_update_that_changes_nothing_is_recorded_when_handled(
    database: Database, clock: FakeClock
) -> None:
    incoming = await _opened(database, clock, ids_only_grow=True)
    with pytest.raises(RuntimeError):
        async with incoming.handling(7):
            raise RuntimeError("even a failed one: the person was told, retrying fails again")
    async with incoming.handling(8):
        pass
    assert not await incoming.is_new(7)
    assert not await incoming.is_new(8)
    assert await incoming.is_new(9)
    # Telegram picks a fresh, random start after a week without updates: a lower id than
    # any recorded is looked up, not assumed to be old.
    assert await incoming.is_new(3)


async def test_records_are_forgotten_after_the_redelivery_window(
    database: Database, clock: FakeClock
) -> None:
    incoming = await _opened(database, clock, ids_only_grow=False)
    async with incoming.handling(5):
        pass
    clock.advance(REDELIVERY_WINDOW + timedelta(minutes=1))
    async with incoming.handling(6):  # a day has passed since the last pruning: prune now
        pass
    assert await incoming.is_new(5)
    assert not await incoming.is_new(6)


async def test_a_redelivered_update_is_dropped_and_handled_ones_are_confirmed(
    bot: RunningBot,
) -> None:
    ana = bot.api.user(600, "Ana", "es")
    balance = await ana.send("/balance")
    await ana.receive_containing("Todavía no eres socio")
    await bot.api.redeliver(balance)  # as Telegram may, after a crash
    await ana.send("/help")
    await ana.receive_containing("Aún no eres socio")
    told = [call.text for call in bot.api.calls_to("sendMessage") if call.chat_id == ana.id]
    assert sum("Todavía no eres socio" in text for text in told) == 1
    assert bot.api.confirmed_below > balance["update_id"]


async def test_polling_rides_out_bot_api_trouble_on_the_clock(bot: RunningBot) -> None:
    """Two 502s and a 429 from getUpdates: the bot waits 1 s, 2 s, then the time it was
    told, and then answers the customer who wrote meanwhile."""
    await join(bot, 601)
    troubles = [
        api_error(502, "Bad Gateway"),
        api_error(502, "Bad Gateway"),
        api_error(429, "Too Many Requests: retry after 9", retry_after=9),
    ]

    def flaky_updates(call: ApiCall) -> web.Response | None:
        if call.method == "getUpdates" and troubles:
            return troubles.pop(0)
        return None

    bot.api.override = flaky_updates
    ana = bot.api.user(601)
    await ana.send("/balance")  # answered by the poll already waiting; the trouble comes next
    await ana.receive_text()
    await ana.send("/rewards")
    assert "10 puntos" in await ana.receive_text()
    assert not troubles
    assert bot.clock.slept == [1.0, 2.0, 9.0]


async def test_forgetting_old_ids_on_a_full_disk_does_not_fail_the_update(
    database: Database, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    incoming = await _opened(database, clock, ids_only_grow=True)
    clock.advance(REDELIVERY_WINDOW)
    async with database.reading() as tx:
        await tx.execute("PRAGMA query_only = ON")  # every write now fails, as on a full disk
    async with incoming.handling(9):  # no error escapes: the person was already answered
        pass
    assert any("could not forget old update ids" in record.message for record in caplog.records)
