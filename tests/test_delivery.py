"""Each update takes effect once: recorded as handled in the same commit as its change, kept
once however often it is delivered, and polling that rides out Bot API trouble on the test
clock."""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from telegram import Bot, Update

from bot.inbox import Found, RecordedTogether
from bot.incoming import IncomingUpdates
from bot.program import Program
from bot.storage.database import Database, Transaction
from bot.storage.inbox import InboxRepository
from handlers.telegram.app import build_application
from handlers.telegram.polling import person_of
from handlers.telegram.standin import ApiCall, FakeTelegram, api_error
from tests.conftest import FakeClock, RunningBot, running, settings_for
from tests.flows import join


async def test_a_message_is_recorded_as_handled_in_the_same_commit_as_its_change(
    database: Database, clock: FakeClock
) -> None:
    incoming = IncomingUpdates(database, clock, "telegram")
    item = await _received(database, "41")
    async with incoming.handling(item):
        with pytest.raises(RuntimeError):
            async with database.transaction():
                raise RuntimeError("the change failed")
        assert not await _handled(database, "41")  # rolled back together: handle it again
        async with database.transaction():
            pass
        # Were the process to die here, before handling ends, the record is in with the change.
        assert await _handled(database, "41")


async def _received(database: Database, message_id: str) -> int:
    async with database.transaction() as tx:
        inbox = InboxRepository(tx)
        await inbox.record("telegram", [(message_id, "5", {})], datetime.now(UTC))
        return max(received.id for received in await inbox.unhandled("telegram", 0, 100))


async def _handled(database: Database, message_id: str) -> bool:
    async with database.reading() as tx:
        return await InboxRepository(tx).handled_through("telegram", message_id) is not None


async def test_a_message_that_changes_nothing_is_recorded_when_handled(
    database: Database, clock: FakeClock
) -> None:
    incoming = IncomingUpdates(database, clock, "telegram")
    failing, quiet = await _received(database, "7"), await _received(database, "8")
    with pytest.raises(RuntimeError):
        async with incoming.handling(failing):
            raise RuntimeError("even a failed one: the person was told, retrying fails again")
    async with incoming.handling(quiet):
        pass
    assert await _handled(database, "7") and await _handled(database, "8")
    async with database.transaction() as tx:  # delivered again: kept once, as handled
        await InboxRepository(tx).record("telegram", [("8", "5", {})], datetime.now(UTC))
        assert not await InboxRepository(tx).unhandled("telegram", 0, 100)


async def test_webhooks_arriving_together_share_one_insert_and_each_learns_what_was_new(
    database: Database, clock: FakeClock
) -> None:
    """40 updates posted at once, one of them twice: each webhook learns whether its own
    update was new (the second copy of one is not). On PostgreSQL, where a write waits for the
    server, the first goes in alone and the rest, arriving meanwhile, together in the next
    INSERT; SQLite's write runs on the loop without waiting, one at a time."""
    together = RecordedTogether(database, clock, "telegram")
    writes: list[bool] = []
    write = database.single_write

    def counted(*, alone: bool = True) -> AbstractAsyncContextManager[Transaction]:
        writes.append(alone)
        return write(alone=alone)

    database.single_write = counted  # type: ignore[method-assign]  # counts the real writes
    posts = [[(str(n), str(n), {"update_id": n})] for n in range(1, 41)]
    posts.append([("7", "7", {"update_id": 7})])
    news = await asyncio.gather(*(together.record(post) for post in posts))
    assert news == [1] * 40 + [0]
    assert not any(writes)  # through the intake, never behind the writers
    assert len(writes) == (2 if database.shared else len(posts))
    async with database.reading() as tx:
        recorded = await InboxRepository(tx).unhandled("telegram", 0, 100)
    assert sorted(int(received.message_id) for received in recorded) == list(range(1, 41))


async def test_an_insert_that_fails_fails_every_webhook_it_carried_and_records_none(
    database: Database, clock: FakeClock
) -> None:
    """No webhook is told its update was recorded unless it was (the others answer 500 and
    are posted again): on PostgreSQL the two posted with the failing one, in the same INSERT,
    fail with it. A post after it goes in."""
    together = RecordedTogether(database, clock, "telegram")
    unstorable: dict[str, Any] = {"update_id": 2, "text": object()}  # not JSON
    posts: list[Found] = [
        [("1", "1", {})],
        [("2", "2", unstorable)],
        [("3", "3", {})],
        [("4", "4", {})],
    ]
    outcomes = await asyncio.gather(
        *(together.record(post) for post in posts), return_exceptions=True
    )
    assert outcomes[0] == 1 and isinstance(outcomes[1], TypeError)
    failed = [str(n) for n, outcome in enumerate(outcomes, 1) if isinstance(outcome, Exception)]
    assert failed == (["2", "3", "4"] if database.shared else ["2"])
    assert await together.record([("5", "5", {})]) == 1
    async with database.reading() as tx:
        recorded = await InboxRepository(tx).unhandled("telegram", 0, 100)
    assert {received.message_id for received in recorded} == {"1", "2", "3", "4", "5"} - set(failed)


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


async def test_what_was_recorded_but_not_handled_is_handled_once_at_the_next_start(
    api: FakeTelegram, clock: FakeClock, program: Program, tmp_path: Path
) -> None:
    """As after a crash: Ana's update recorded and never handled, Bruno's handled. The next
    start answers Ana, once, and not Bruno again."""
    settings = settings_for(api, tmp_path / "restart.db")
    bruno = api.user(611, "Bruno", "es")
    user = {"id": 610, "is_bot": False, "first_name": "Ana", "language_code": "es"}
    message = {
        "message_id": 1,
        "date": int(clock.now().timestamp()),
        "chat": {"id": 610, "type": "private"},
        "from": user,
        "text": "/balance",
        "entities": [{"type": "bot_command", "offset": 0, "length": 8}],
    }
    async with running(build_application(settings, program, clock, background=False)) as app:
        bot = RunningBot(app, api, clock)
        await bruno.send("/balance")
        await bruno.receive_containing("Todavía no eres socio")
        async with bot.services.database.transaction() as tx:  # the worker is not woken
            lost = [("77000", "610", {"update_id": 77000, "message": message})]
            await InboxRepository(tx).record("telegram", lost, clock.now())
        assert not [call for call in api.calls if call.chat_id == 610]
    async with running(build_application(settings, program, clock, background=False)):
        await api.wait_for(lambda call: call.chat_id == 610)
    assert [call.chat_id for call in api.calls_to("sendMessage")].count(610) == 1
    assert [call.chat_id for call in api.calls_to("sendMessage")].count(611) == 1


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


USER = {"id": 7, "is_bot": False, "first_name": "Ana"}
CHAT = {"id": -100, "type": "supergroup", "title": "Bodega"}
MESSAGE = {"message_id": 1, "date": 1_700_000_000, "chat": CHAT, "from": USER, "text": "hola"}


@pytest.mark.parametrize(
    "kind",
    [
        {"message": MESSAGE},
        {"edited_message": {**MESSAGE, "edit_date": 1_700_000_001}},
        {"channel_post": {key: value for key, value in MESSAGE.items() if key != "from"}},
        {"callback_query": {"id": "q", "from": USER, "chat_instance": "c", "message": MESSAGE}},
        {
            "my_chat_member": {
                "chat": CHAT,
                "from": USER,
                "date": 1_700_000_000,
                "old_chat_member": {"status": "member", "user": USER},
                "new_chat_member": {"status": "kicked", "user": USER, "until_date": 0},
            }
        },
        {
            "poll_answer": {
                "poll_id": "p",
                "user": USER,
                "option_ids": [0],
                "option_persistent_ids": ["a"],
            }
        },
        {"inline_query": {"id": "i", "from": USER, "query": "", "offset": ""}},
        {
            "poll": {
                "id": "p",
                "question": "?",
                "options": [],
                "total_voter_count": 0,
                "is_closed": False,
                "is_anonymous": True,
                "type": "regular",
                "allows_multiple_answers": False,
                "allows_revoting": False,
                "members_only": False,
            }
        },
    ],
    ids=lambda kind: next(iter(kind)),
)
def test_whose_update_it_is_is_read_from_the_json_as_ptb_reads_it(kind: dict[str, object]) -> None:
    """Updates are recorded unparsed: the person read from the JSON is PTB's effective user,
    else its effective chat (each person's updates are handled in order)."""
    raw = {"update_id": 9, **kind}
    update = Update.de_json(raw, Bot("1:x"))
    who = update.effective_user or update.effective_chat
    assert person_of(raw) == (str(who.id) if who else "update 9")
