"""Identities of both channels side by side: each channel writes only to its own people, in
its own id shapes, whoever else the tables hold (issue: a WhatsApp clerk stopped the bot from
starting again, because the Telegram menus took every staff member for a Telegram chat)."""

from __future__ import annotations

import json
import re
import signal
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from telegram import User

from bot.bootstrap import close_services, open_services
from bot.channels import NotAnAddress
from bot.domain.models import Actor, Identity, Language, Role
from bot.messages import Messages
from bot.program import Program
from bot.timetable import JOB_NAMES
from handlers.telegram.addresses import chat_id, identity_of
from handlers.telegram.standin import FakeTelegram
from handlers.whatsapp.addresses import recipient
from handlers.whatsapp.standin import FakeGraph, WhatsAppPerson
from handlers.whatsapp.updates import messages_in
from tests.conftest import SECRET, FakeClock, settings_for
from tests.flows import enrol, hire_on_whatsapp, invitation, link_apps, register, sell
from tests.processes import (
    TELEGRAM_READY,
    WHATSAPP_READY,
    bot_process,
    problems,
    run_command,
)
from tests.test_whatsapp import whatsapp_environment

TELEGRAM_USER_IDS = st.integers(min_value=1, max_value=2**52)
WA_IDS = st.from_regex(r"[1-9][0-9]{5,14}", fullmatch=True)
BUSINESS_SCOPED_IDS = st.from_regex(r"[A-Z]{2}\.(ENT\.)?[0-9]{1,30}", fullmatch=True)
OWNER_ON_TELEGRAM = "1"
OWNER_PHONE, OWNER_WITH_USERNAME_PHONE = "593991110001", "593991110002"


@given(TELEGRAM_USER_IDS)
def test_a_telegram_user_id_round_trips_to_its_chat(user_id: int) -> None:
    identity = identity_of(User(user_id, "Ana", is_bot=False))
    assert chat_id(identity) == user_id


@given(st.one_of(WA_IDS, BUSINESS_SCOPED_IDS))
def test_a_whatsapp_sender_round_trips_from_the_webhook_to_the_recipient(person: str) -> None:
    graph = FakeGraph(SECRET)
    body = WhatsAppPerson(graph, "34612345678", "Ana", person).webhook(
        {"id": "wamid.X", "type": "text", "text": {"body": "hola"}}
    )
    [(_, sender, _)] = messages_in(body)
    assert sender == person
    assert recipient(Identity("whatsapp", sender)) == person


@given(st.one_of(WA_IDS, BUSINESS_SCOPED_IDS))
def test_telegram_refuses_every_whatsapp_id_in_one_sentence(person: str) -> None:
    """Phone digits parse as a number: the channel, not the shape, decides."""
    with pytest.raises(NotAnAddress, match=f"whatsapp id '{re.escape(person)}' is not a telegram"):
        chat_id(Identity("whatsapp", person))


@given(TELEGRAM_USER_IDS)
def test_whatsapp_refuses_every_telegram_id_in_one_sentence(user_id: int) -> None:
    with pytest.raises(NotAnAddress, match=f"telegram id '{user_id}' is not a whatsapp"):
        recipient(Identity("telegram", str(user_id)))


@given(st.text(max_size=40))
def test_any_stored_text_is_an_address_or_refused_never_a_crash(text: str) -> None:
    """pywa would send a string in no person's shape to a *group*: it never gets that far."""
    for channel, address in (("telegram", chat_id), ("whatsapp", recipient)):
        try:
            found = address(Identity(channel, text))
        except NotAnAddress as error:
            assert repr(text) in str(error)
        else:
            assert str(found) == text


async def _a_shop_of_both_channels(
    settings_path: Path, api: FakeTelegram, graph: FakeGraph, program: Program
) -> None:
    """People of both channels in every role, written through the core 100 days ago (so
    that today's jobs find customers drifting away): a clerk on each app, one of them known by
    a business-scoped id as Meta now sends; customers by Telegram id, phone digits and
    business-scoped id."""
    clock = FakeClock()
    clock.advance(-timedelta(days=100))
    settings = settings_for(api, settings_path)
    services = await open_services(
        settings, program, clock, Messages(settings.zone, program.shop.money)
    )
    try:
        owner = Actor(Identity("telegram", OWNER_ON_TELEGRAM), Role.OWNER)
        clerks = [
            Identity("telegram", "50"),
            Identity("whatsapp", "34699000111"),
            Identity("whatsapp", "EC.5931112223334"),
        ]
        for number, clerk in enumerate(clerks):
            invite = await invitation(services.staff, owner)
            await services.staff.accept(clerk, invite.token, f"Clerk {number}", Language.ES)
        people = [None, Identity("whatsapp", "34612000001"), Identity("whatsapp", "ES.7001002003")]
        for number, identity in enumerate(people, start=100):
            customer = await enrol(services.registration, number, identity=identity)
            await sell(services.sales, customer, 2)
    finally:
        await close_services(services, None)


@pytest.mark.sqlite_only
async def test_a_shop_with_people_of_both_channels_in_every_role_restarts_and_runs_everything(
    api: FakeTelegram, program: Program, tmp_path: Path
) -> None:
    graph = FakeGraph(SECRET)
    await graph.start()
    try:
        database = tmp_path / "both.db"
        await _a_shop_of_both_channels(database, api, graph, program)
        env = whatsapp_environment(
            graph,
            database,
            BOT_TOKEN="123456:BOTH",
            TELEGRAM_API_URL=api.url,
            POLLING_TIMEOUT="1",
            LIMIT_OUTGOING_RATE="false",
            OWNER_IDS=OWNER_ON_TELEGRAM,
            OWNER_PHONES=f"+{OWNER_PHONE}, +{OWNER_WITH_USERNAME_PHONE}",
        )
        log: list[str] = []
        ready = (TELEGRAM_READY, WHATSAPP_READY)
        whatsapp_owner = graph.person(OWNER_PHONE, "Dueña")
        async with bot_process(env, tmp_path, log, ready) as first:
            # A Telegram member links her WhatsApp: one customer known on both apps.
            lucia = api.user(42, "Lucía", "es")
            await register(lucia, phone="+34 612 345 678")
            await link_apps(lucia, graph.person("34612345678", "Lucía"))
            # A clerk who joins on WhatsApp, known by a business-scoped id.
            nora = graph.person("34699000222", "Nora", user_id="EC.5930002220001")
            await hire_on_whatsapp(whatsapp_owner, nora)
            await nora.send("exportar")  # the owner's: refused and audited, never logged by id
            await nora.receive_containing("permiso")
            first.send_signal(signal.SIGTERM)
            assert await first.wait() == 0

        menus_before = len(api.calls_to("setMyCommands"))
        async with bot_process(env, tmp_path, log, ready) as second:
            owner = api.user(int(OWNER_ON_TELEGRAM), "Dueña", "es")
            for command in ("/stats", "/churn", "/campaigns"):
                await owner.send(command)
                await owner.receive("sendMessage", timeout=30)
            await owner.send("/export")
            await owner.receive("sendDocument", timeout=30)
            with_username = graph.person(OWNER_WITH_USERNAME_PHONE, "Socia", "EC.5930001110002")
            for person in (whatsapp_owner, with_username):
                for word in ("estadísticas", "riesgo", "campañas", "exportar"):
                    await person.send(word)
                    await person.receive(timeout=30)
            second.send_signal(signal.SIGTERM)
            assert await second.wait() == 0
        menus = api.calls_to("setMyCommands")[menus_before:]
        scopes = {
            json.loads(call.params["scope"])["chat_id"] for call in menus if "scope" in call.params
        }
        assert scopes == {int(OWNER_ON_TELEGRAM), 50}  # the Telegram team only

        for job in JOB_NAMES:
            assert await run_command(env, tmp_path, log, "run-job", job) == 0, log[-5:]
        assert problems(log) == []
        people = [
            *("Lucía", "Nora", "Dueña", "Socia", "Clerk 0", "Cliente 100"),
            *("34612345678", "34699000222", "34699000111", "34612000001", "612 345 678"),
            *("EC.5930002220001", "EC.5931112223334", "ES.7001002003", OWNER_PHONE),
        ]
        assert [line for line in log if any(person in line for person in people)] == []
    finally:
        await graph.stop()
