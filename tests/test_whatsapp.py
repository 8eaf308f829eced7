"""The WhatsApp channel end to end: the real webhook server and worker, pywa's client on a
loopback stand-in for the Graph API, people writing through signed webhooks."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st
from markupsafe import escape

from bench.common import free_port
from bot.bootstrap import Services, close_services, open_services
from bot.channels import Delivered
from bot.config import Settings
from bot.domain.erasures import JOB as ERASURES
from bot.domain.models import Actor, Customer, Identity, Role
from bot.messages import Messages
from bot.program import ApprovedTemplate, Program
from bot.storage.inbox import InboxRepository
from bot.storage.surveys import SurveyRepository
from handlers.telegram.app import build_application, serving
from handlers.telegram.standin import FakeTelegram
from handlers.whatsapp.app import graph_session, serving_whatsapp, whatsapp_client
from handlers.whatsapp.channel import Option, WhatsAppChannel, template_parameter
from handlers.whatsapp.formatting import to_whatsapp
from handlers.whatsapp.standin import FakeGraph, GraphCall, WhatsAppPerson
from handlers.whatsapp.updates import messages_in
from tests import processes
from tests.conftest import SECRET, VERIFY, FakeClock
from tests.flows import (
    campaign_draft,
    enrol,
    hire_on_whatsapp,
    invitation_link,
    link_apps,
    register,
    sell,
    survey_sent,
)
from tests.postgres import every_test_on_postgresql, stored_bytes
from tests.processes import WHATSAPP_READY, environment

ROOT = Path(__file__).resolve().parent.parent
CODE = re.compile(r"\b([A-Z0-9]{6,16})\b")
SHOP = "593991110000"
OWNER = "593991110001"


@dataclass
class WhatsAppBot:
    graph: FakeGraph
    services: Services
    clock: FakeClock
    settings: Settings

    @property
    def webhook(self) -> str:
        return self.graph.webhook_url


def whatsapp_settings(graph: FakeGraph, database: Path, port: int, **overrides: object) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        whatsapp_token="EAAtoken",  # type: ignore[arg-type]
        whatsapp_phone_number_id="1001",
        whatsapp_business_number=f"+{SHOP}",
        whatsapp_app_secret=SECRET,  # type: ignore[arg-type]
        whatsapp_verify_token=VERIFY,  # type: ignore[arg-type]
        whatsapp_api_url=graph.url,
        webhook_listen=f"127.0.0.1:{port}",
        owner_phones=f"+{OWNER}",  # type: ignore[arg-type]
        database_path=database,
        **{  # type: ignore[arg-type]
            "timezone": "Europe/Madrid",
            "flood_burst": 10_000,
            **({"database_url": url} if (url := every_test_on_postgresql(database)) else {}),
            **overrides,
        },
    )


@asynccontextmanager
async def running(
    graph: FakeGraph, clock: FakeClock, program: Program, database: Path, **overrides: object
) -> AsyncIterator[WhatsAppBot]:
    port = free_port()
    settings = whatsapp_settings(graph, database, port, **overrides)
    services = await open_services(
        settings, program, clock, Messages(settings.zone, program.shop.money)
    )
    graph.now = clock.now  # people write on the tests' clock
    try:
        async with serving_whatsapp(services):
            graph.webhook_url = f"http://127.0.0.1:{port}/whatsapp"
            yield WhatsAppBot(graph, services, clock, settings)
    finally:
        await close_services(services, None)


@pytest.fixture
async def bot(
    graph: FakeGraph, clock: FakeClock, program: Program, tmp_path: Path
) -> AsyncIterator[WhatsAppBot]:
    async with running(graph, clock, program, tmp_path / "whatsapp.db") as started:
        yield started


async def join(person: WhatsAppPerson, *, consent: bool = True) -> GraphCall:
    """Say hello, take the profile name, skip the birthday, answer consent; the card."""
    await person.send("hola")
    await person.receive_containing("Bienvenido")
    name = await person.receive()
    await person.tap(name, person.name)
    birthday = await person.receive()
    await person.tap(birthday, "Saltar")
    question = await person.receive()
    await person.tap(question, "Sí" if consent else "No")
    await person.receive_containing("Ya eres socio")
    card = await person.receive()
    assert card.kind == "image"
    return card


async def member_of(bot: WhatsAppBot, person: WhatsAppPerson) -> Customer:
    """The member a person on WhatsApp is, once they have joined."""
    member = await bot.services.membership.member(Identity("whatsapp", person.wa_id))
    assert member is not None
    return member


async def test_a_newcomer_joins_with_a_hello_and_the_phone_whatsapp_knows(bot: WhatsAppBot) -> None:
    ana = bot.graph.person("34612345678", "Ana")
    await ana.send("hola")
    welcome = await ana.receive()
    assert "Bodega Familia Ruiz" in welcome.text  # which shop's club this is, first
    name = await ana.receive()
    assert "¿Cómo te llamas?" in name.text and name.options() == [("say:Ana", "Ana")]
    await ana.tap(name, "Ana")
    birthday = await ana.receive()
    assert "cumpleaños" in birthday.text  # the phone is not asked: WhatsApp gave it
    await ana.tap(birthday, "Saltar")
    consent = await ana.receive()
    assert consent.kind == "interactive/button" and len(consent.options()) == 2
    await ana.tap(consent, "Sí")
    done = await ana.receive_containing("Ya eres socio")
    assert "<b>" not in done.text
    card = await ana.receive()
    assert card.kind == "image" and "Ana" in card.text
    member = await bot.services.membership.member(Identity("whatsapp", "34612345678"))
    assert member is not None and member.phone == "+34612345678" and member.promotions_consent


async def _inbox(bot: WhatsAppBot) -> int:
    async with bot.services.database.reading() as tx:
        row = await tx.fetch_one("SELECT COUNT(*) AS n FROM inbox")
    assert row is not None
    return int(row["n"])


async def test_meta_verifies_the_webhook_with_our_token_only(bot: WhatsAppBot) -> None:
    async with aiohttp.ClientSession() as session:
        query = {"hub.mode": "subscribe", "hub.challenge": "1158201444"}
        async with session.get(bot.webhook, params={**query, "hub.verify_token": VERIFY}) as ok:
            assert (ok.status, await ok.text()) == (200, "1158201444")
        async with session.get(bot.webhook, params={**query, "hub.verify_token": "x"}) as bad:
            assert bad.status == 403


async def test_a_webhook_not_signed_with_the_app_secret_is_refused_and_not_recorded(
    bot: WhatsAppBot,
) -> None:
    mallory = bot.graph.person("34600000666", "Mallory")
    body = json.dumps(mallory.webhook({"id": "wamid.X", "type": "text", "text": {"body": "hola"}}))
    forged = bot.graph.sign(body.encode(), secret="not-the-secret")
    assert await bot.graph.post_webhook(body.encode(), signature=forged) == 403
    assert await bot.graph.post_webhook(body.encode(), signed=False) == 401
    assert await _inbox(bot) == 0 and not bot.graph.calls


async def test_a_webhook_delivered_twice_in_other_bytes_is_handled_once(bot: WhatsAppBot) -> None:
    """Meta retries what it did not see acknowledged; pywa's own check hashes the bytes."""
    ana = bot.graph.person("34612345670", "Ana")
    first = await ana.send("hola")
    again = json.dumps(first, indent=2, sort_keys=True).encode()  # the same message, other bytes
    assert await bot.graph.post_webhook(again) == 200
    await ana.receive()
    probe = await ana.send("hola otra vez")
    await ana.receive()  # the answer to the probe: the retry was handled (or dropped) before it
    asked = [call for call in bot.graph.calls if call.to == ana.wa_id]
    assert len(asked) == 2 and probe
    assert await _inbox(bot) == 2


async def test_staff_scan_a_card_and_the_customer_is_told_on_whatsapp(bot: WhatsAppBot) -> None:
    """The owner (OWNER_PHONES) scans the customer's card: its QR opens a chat with the
    prefilled member code. Amount and bottles, a tap, and the customer's receipt."""
    ana = bot.graph.person("34612345671", "Ana")
    await join(ana)
    member = await member_of(bot, ana)
    owner = bot.graph.person(OWNER, "Dueña")
    await owner.send(f"c_{member.member_code}")
    ask = await owner.receive()
    assert "Ana" in ask.text and ask.options()[0][1] == "Cancelar"
    await owner.send("30 3")
    confirm = await owner.receive()
    assert confirm.kind == "interactive/button"
    await owner.tap(confirm, "Confirmar")
    receipt = await owner.receive()
    assert "#" in receipt.text
    told = await ana.receive_containing("Has sumado")
    assert "*3 puntos*" in told.text and "<b>" not in told.text
    assert len([call for call in bot.graph.calls if "Has sumado" in call.text]) == 1


async def test_a_member_types_words_in_either_language_and_can_opt_out(bot: WhatsAppBot) -> None:
    ana = bot.graph.person("34612345672", "Ana")
    await join(ana)
    for word in ("saldo", "BALANCE", "/balance"):
        await ana.send(word)
        assert "punto" in (await ana.receive()).text
    await ana.send("qué tal")  # anything else: the menu, as a list
    menu = await ana.receive()
    assert menu.kind == "interactive/list" and ("menu:balance", "Saldo") in menu.options()
    await ana.tap(menu, "Tarjeta")
    assert (await ana.receive()).kind == "image"
    await ana.send("BAJA")
    await ana.receive_containing("ya no te enviaremos ofertas")
    member = await bot.services.membership.member(Identity("whatsapp", ana.wa_id))
    assert member is not None and not member.promotions_consent


async def _bought_yesterday(bot: WhatsAppBot, person: WhatsAppPerson) -> None:
    """A member with a purchase 23 hours old: the satisfaction survey is due."""
    await join(person)
    member = await member_of(bot, person)
    await sell(bot.services.sales, member, 2)  # through the domain: the next run tells them
    await bot.services.jobs.deliver()
    await person.receive_containing("Has sumado")
    bot.clock.advance(timedelta(hours=23))  # the survey is due, her 24 hours are not over


async def test_a_survey_is_answered_with_a_tap_and_the_nps_by_typing(bot: WhatsAppBot) -> None:
    ana = bot.graph.person("34612345673", "Ana")
    await _bought_yesterday(bot, ana)
    assert (await bot.services.jobs.run("surveys")).delivery.sent == 1
    question = await ana.receive()
    assert question.kind == "interactive/list"  # five answers: more than three buttons hold
    assert [title for _, title in question.options()] == ["1", "2", "3", "4", "5"]
    await ana.tap(question, "4")
    reason = await ana.receive_containing("motivo")
    await ana.tap(reason, "Saltar")
    await ana.receive_containing("Gracias")
    member = await member_of(bot, ana)
    nps = await survey_sent(bot.services.database, bot.clock, member.id, "nps")
    await ana.send("9")  # eleven answers fit no list: the question asks for a number
    await ana.receive_containing("motivo")
    async with bot.services.database.reading() as tx:
        answered = await SurveyRepository(tx).by_id(nps)
    assert answered is not None and answered.score == 9


async def test_meta_refusing_a_message_outside_the_window_is_recorded_and_not_retried(
    bot: WhatsAppBot,
) -> None:
    """Meta answers 131047 when the person's 24 hours are over (by its clock)."""
    ana = bot.graph.person("34612345674", "Ana")
    await _bought_yesterday(bot, ana)
    bot.graph.outside_window.add(ana.wa_id)
    report = (await bot.services.jobs.run("surveys")).delivery
    assert (report.sent, report.failed, report.retried) == (0, 1, 0)
    bot.clock.advance(timedelta(hours=1))
    assert (await bot.services.jobs.deliver()).failed == 0  # not tried again
    assert await _survey_push(bot) == ("failed", 1, True)


async def _survey_push(bot: WhatsAppBot) -> tuple[str, int, bool]:
    """The survey's outbox row: its status, attempts, and whether Meta's 131047 is noted."""
    async with bot.services.database.reading() as tx:
        row = await tx.fetch_one(
            "SELECT status, last_error, attempts FROM outbox WHERE kind = 'survey:satisfaction'"
        )
    assert row is not None
    return row["status"], row["attempts"], "131047" in (row["last_error"] or "")


@pytest.mark.parametrize("approved", [True, False])
async def test_after_24_silent_hours_a_push_goes_as_its_approved_template_or_not_at_all(
    graph: FakeGraph, clock: FakeClock, program: Program, tmp_path: Path, approved: bool
) -> None:
    templates = [
        ApprovedTemplate(message="pushes/satisfaction", name="how_was_it", parameters=["shop"])
    ]
    rules = program.model_copy(update={"whatsapp_templates": templates if approved else []})
    async with running(graph, clock, rules, tmp_path / "t.db") as bot:
        ana = graph.person("34612345682", "Ana")
        await _bought_yesterday(bot, ana)
        bot.clock.advance(timedelta(hours=2))  # 25 hours since she last wrote
        sent_before = len(graph.calls)
        report = (await bot.services.jobs.run("surveys")).delivery
        if approved:
            assert report.sent == 1
            template = graph.calls[-1]
            assert template.kind == "template" and template.to == ana.wa_id
            assert template.body["template"]["name"] == "how_was_it"
            assert template.body["template"]["language"]["code"] == "es"
            parameters = template.body["template"]["components"][0]["parameters"]
            assert parameters == [{"type": "text", "text": program.shop.name}]
        else:
            assert (report.sent, report.failed) == (0, 1)
            assert len(graph.calls) == sent_before  # never as free text
            assert await _survey_push(bot) == ("failed", 1, False)


async def test_what_was_recorded_but_not_handled_is_handled_once_at_the_next_start(
    graph: FakeGraph, clock: FakeClock, program: Program, tmp_path: Path
) -> None:
    """As after a crash: one message recorded and never handled, one handled (marked so in
    the commit of its change). The next start handles the first, once, and not the second."""
    database = tmp_path / "restart.db"
    ana, bruno = graph.person("34612345675", "Ana"), graph.person("34612345676", "Bruno")
    async with running(graph, clock, program, database) as bot:
        await bruno.send("hola")
        await bruno.receive_containing("¿Cómo te llamas?")  # the last of his replies
        async with bot.services.database.transaction() as tx:
            body = ana.webhook({"id": "wamid.LOST", "type": "text", "text": {"body": "hola"}})
            await InboxRepository(tx).record("whatsapp", messages_in(body), clock.now())
        before = len(graph.calls)
    async with running(graph, clock, program, database):
        await ana.receive_containing("¿Cómo te llamas?")
        await graph.wait_for(lambda _: True, start=before)
    assert {call.to for call in graph.calls[before:]} == {ana.wa_id}


async def test_a_person_with_a_business_scoped_id_is_known_by_it(bot: WhatsAppBot) -> None:
    """WhatsApp usernames: the webhook carries a user id, and the bot writes to it."""
    carla = bot.graph.person("34612345677", "Carla", user_id="ES.1234567890")
    await carla.send("hola")
    await carla.receive()
    async with bot.services.database.reading() as tx:
        row = await tx.fetch_one("SELECT person FROM inbox")
    assert row is not None and row["person"] == "ES.1234567890"


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("es", ("Elige qué quieres hacer", "ya no te enviaremos", "escanea la tarjeta")),
        ("en", ("Choose what you would like", "will not send you offers", "scan the customer")),
    ],
)
async def test_the_whatsapp_words_are_said_in_both_languages(
    graph: FakeGraph,
    clock: FakeClock,
    program: Program,
    tmp_path: Path,
    language: str,
    words: tuple[str, str, str],
) -> None:
    menu, stopped, staff_menu = words
    async with running(graph, clock, program, tmp_path / "t.db", default_language=language):
        ana = graph.person("34612345678", "Ana")
        await ana.send("hello")
        await ana.receive()  # the welcome
        await ana.tap(await ana.receive(), "Ana")
        await ana.tap(await ana.receive(), "⏭")
        await ana.tap(await ana.receive(), "No")
        await ana.receive()
        await ana.receive()  # the card
        await ana.send("?")
        await ana.receive_containing(menu)
        await ana.send("stop")
        await ana.receive_containing(stopped)
        owner = graph.person(OWNER, "Dueña")
        await owner.send("hi")
        await owner.receive_containing(staff_menu)


async def test_whatsapp_limits_are_kept_whatever_the_message(graph: FakeGraph) -> None:
    """The stand-in answers 400 as Meta does to a broken limit: every send here must pass."""
    settings = whatsapp_settings(graph, Path("unused.db"), 0)
    async with graph_session(settings) as session:
        channel = WhatsAppChannel(whatsapp_client(settings, session), 250, "34910000000")
        ana = Identity("whatsapp", "34612345679")
        four = [Option(f"o{n}", f"Opción número {n} de cuatro, larga") for n in range(4)]
        twelve = [Option(f"o{n}", f"Opción {n}") for n in range(12)]
        outcomes = [
            await channel.send_options(ana, "<b>Elige</b> &amp; ya", four, "Un título muy largo"),
            await channel.send_options(ana, "Elige", twelve),
            await channel.send_options(ana, "párrafo\n\n" * 1500, []),
            await channel.send_options(ana, "x" * 2000, [Option("a", "Sí")]),
        ]
    assert all(isinstance(outcome, Delivered) for outcome in outcomes), outcomes
    listed, numbered, *split = graph.calls
    assert listed.kind == "interactive/list" and listed.text == "*Elige* & ya"
    rows = listed.body["interactive"]["action"]["sections"][0]["rows"]
    assert all(len(row["title"]) <= 24 and len(row["description"]) <= 72 for row in rows)
    assert numbered.kind == "text" and "12. Opción 11" in numbered.text
    assert len(split) == 5 and all(len(call.text) <= 4096 for call in split)
    assert split[-1].kind == "interactive/list"  # 2,000 characters are too many for buttons


async def test_a_member_picks_a_reward_and_staff_redeem_its_code(bot: WhatsAppBot) -> None:
    ana = bot.graph.person("34612345681", "Ana")
    await join(ana)
    member = await member_of(bot, ana)
    await sell(bot.services.sales, member, 10)  # ten bottles: a free one
    await ana.send("premios")
    catalogue = await ana.receive()
    await ana.tap(catalogue, "botella gratis")
    code = await ana.receive()
    assert code.kind == "image" and "Código" in code.text
    redemption = CODE.search(code.text)
    assert redemption is not None
    owner = bot.graph.person(OWNER, "Dueña")
    await owner.send(f"r_{redemption[1]}")  # what scanning the code's QR types in
    review = await owner.receive()
    await owner.tap(review, "Confirmar")
    await owner.receive_containing("Canjeado")
    await ana.receive_containing("Disfrútalo")
    assert (await bot.services.membership.standing(member)).balance == 0


def whatsapp_environment(graph: FakeGraph, database: Path, **more: str) -> dict[str, str]:
    """The settings of `python -m bot` serving WhatsApp on a free port, the stand-in told."""
    port = free_port()
    graph.webhook_url = f"http://127.0.0.1:{port}/whatsapp"
    return environment(
        WHATSAPP_TOKEN="EAAtoken",
        WHATSAPP_PHONE_NUMBER_ID="1001",
        WHATSAPP_BUSINESS_NUMBER=SHOP,
        WHATSAPP_APP_SECRET=SECRET,
        WHATSAPP_VERIFY_TOKEN=VERIFY,
        WHATSAPP_API_URL=graph.url,
        WEBHOOK_LISTEN=f"127.0.0.1:{port}",
        DATABASE_PATH=str(database),
        **more,
    )


@asynccontextmanager
async def bot_process(
    graph: FakeGraph, database: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    """`python -m bot` serving WhatsApp only, ready once its webhook listens."""
    env = whatsapp_environment(graph, database)
    async with processes.bot_process(env, database.parent, [], [WHATSAPP_READY]) as process:
        yield process


async def test_a_bot_killed_with_messages_acknowledged_and_not_handled_handles_each_once(
    graph: FakeGraph, tmp_path: Path
) -> None:
    """SIGKILL while WhatsApp's webhooks have been answered 200 but not handled (the first
    one's reply is held, and a person's messages are handled in order). Meta will not send
    them again; after the restart each is handled once."""
    database = tmp_path / "drill.db"
    ana = graph.person("34612345680", "Ana")

    def balance(call: GraphCall) -> bool:
        return call.to == ana.wa_id and ", tienes *" in call.text

    async with bot_process(graph, database) as process:
        await join(ana)
        graph.hold = lambda call: call.to == ana.wa_id
        for _ in range(3):
            await ana.send("saldo")  # each answered 200: recorded
        process.send_signal(signal.SIGKILL)
        await process.wait()
    graph.hold = None
    assert not any(map(balance, graph.calls))
    async with bot_process(graph, database):
        await graph.wait_for(lambda _: sum(map(balance, graph.calls)) == 3, timeout=30)
        await ana.send("saldo")  # a fourth, after them
        await graph.wait_for(lambda _: sum(map(balance, graph.calls)) == 4, timeout=30)
    assert sum(map(balance, graph.calls)) == 4


async def test_the_back_office_works_typed_on_whatsapp(bot: WhatsAppBot) -> None:
    """The owner invites a clerk with a one-time link; the clerk looks a customer up, voids
    a sale and reads /stats (with its charts as images); the owner exports documents."""
    owner = bot.graph.person(OWNER, "Dueña")
    pepe = bot.graph.person("34699000111", "Pepe")
    await hire_on_whatsapp(owner, pepe)
    ana = bot.graph.person("34612345683", "Ana")
    await join(ana)
    member = await member_of(bot, ana)
    sale = (await sell(bot.services.sales, member, 3)).sale
    await pepe.send(f"cliente {member.member_code}")
    assert "Ana" in (await pepe.receive()).text
    await owner.send(f"anular #{sale.id} error al teclear")
    await owner.receive_containing(f"#{sale.id}")
    await pepe.send("/stats")
    report = await pepe.receive()
    assert "EUR" not in report.text  # staff see no money
    charts = [await pepe.receive() for _ in range(3)]
    assert all(chart.kind == "image" or "gráfico" in chart.text.lower() for chart in charts)
    await pepe.send("/export")
    await pepe.receive_containing("permiso")
    await owner.send("/export")
    documents = [await owner.receive(), await owner.receive()]
    assert [document.kind for document in documents] == ["document", "document"]


async def test_a_member_reads_changes_and_erases_their_data_on_whatsapp(bot: WhatsAppBot) -> None:
    ana = bot.graph.person("34612345684", "Ana")
    await join(ana)
    await ana.send("datos")
    assert (await ana.receive()).kind == "document"
    await ana.send("idioma")
    await ana.tap(await ana.receive(), "English")
    await ana.receive_containing("English")
    await ana.send("forget")
    await ana.tap(await ana.receive(), "Yes")
    await ana.receive()
    assert await bot.services.membership.member(Identity("whatsapp", ana.wa_id)) is None


async def test_first_contacts_over_the_daily_limit_wait_for_the_next_day(
    graph: FakeGraph, clock: FakeClock, program: Program, tmp_path: Path
) -> None:
    """A number in its first tier may start conversations with so many people a day; the
    rest of a run stays pending, not failed, and goes once a place frees up."""
    templates = [ApprovedTemplate(message="pushes/satisfaction", name="how_was_it")]
    rules = program.model_copy(update={"whatsapp_templates": templates})
    async with running(graph, clock, rules, tmp_path / "t.db", whatsapp_daily_limit=1) as bot:
        ana, bruno = graph.person("34612345685", "Ana"), graph.person("34612345686", "Bruno")
        for person in (ana, bruno):
            await join(person)
            member = await member_of(bot, person)
            await sell(bot.services.sales, member, 1)
        await bot.services.jobs.deliver()  # their receipts, inside their 24 hours
        bot.clock.advance(timedelta(hours=25))
        first = (await bot.services.jobs.run("surveys")).delivery
        assert (first.sent, first.deferred, first.failed) == (1, 1, 0)
        bot.clock.advance(timedelta(hours=23))
        assert (await bot.services.jobs.deliver()).sent == 0  # still within the day
        bot.clock.advance(timedelta(hours=2))
        assert (await bot.services.jobs.deliver()).sent == 1
    templates_sent = [call.to or "" for call in graph.calls if call.kind == "template"]
    assert sorted(templates_sent) == sorted([ana.wa_id, bruno.wa_id])


async def test_the_owner_sends_a_winback_coupon_from_the_churn_list(bot: WhatsAppBot) -> None:
    ana = bot.graph.person("34612345687", "Ana")
    await join(ana)
    member = await member_of(bot, ana)
    await sell(bot.services.sales, member, 1)
    await bot.services.jobs.deliver()
    await ana.receive_containing("Has sumado")
    bot.clock.advance(timedelta(days=70))  # one purchase, then silence: lapsing
    await ana.send("saldo")  # she writes: her 24 hours are open again
    await ana.receive()
    await bot.services.jobs.run("churn")
    owner = bot.graph.person(OWNER, "Dueña")
    await owner.send("/churn")
    at_risk = await owner.receive()
    await owner.tap(at_risk, "Ana")
    await owner.receive_containing("Ana")
    await ana.receive_containing("Te echamos de menos")


async def test_an_unhappy_answer_opens_a_follow_up_the_owner_closes_with_a_tap(
    bot: WhatsAppBot,
) -> None:
    ana = bot.graph.person("34612345688", "Ana")
    await join(ana)
    member = await member_of(bot, ana)
    await sell(bot.services.sales, member, 1)
    bot.clock.advance(timedelta(days=4))  # past the satisfaction question: the NPS one
    await ana.send("saldo")
    await ana.receive()
    await bot.services.jobs.run("surveys")
    await ana.receive_containing("del 0 al 10")
    await ana.send("2")
    await ana.receive_containing("Gracias por tu respuesta")
    owner = bot.graph.person(OWNER, "Dueña")
    await owner.send("/churn")
    follow_ups = await owner.receive_containing("Seguimientos pendientes")
    assert "NPS 2" in (follow_ups.text or "")
    await owner.tap(follow_ups, "Le llamé")
    await owner.receive_containing("le llamaste")
    await owner.tap_id(follow_ups, "followup:7")  # forged, with no outcome: no error
    await owner.receive_containing("ya no es válido")
    assert await bot.services.follow_ups.open_ones() == []


async def test_the_owner_sends_a_campaign_from_whatsapp(bot: WhatsAppBot) -> None:
    ana = bot.graph.person("34612345689", "Ana")
    await join(ana)
    owner = bot.graph.person(OWNER, "Dueña")
    await owner.send("difundir")
    await owner.receive_containing("Nueva campaña")
    await owner.send("¡Vino nuevo este sábado!")
    kinds = await owner.receive_containing("¿Quién lo recibe?")
    await owner.tap(kinds, "Por nivel")
    tiers = await owner.receive_containing("¿Quién lo recibe?")
    await owner.tap(tiers, "Nivel Bronce")
    coupons = await owner.receive_containing("cupón")
    await owner.tap(coupons, "15%")
    preview = await owner.receive_containing("Lo recibir")
    assert "*1 cliente*" in (preview.text or "") and "15% de descuento" in (preview.text or "")
    await owner.tap(preview, "Enviar")
    await owner.receive_containing("En marcha")
    await bot.services.jobs.deliver()
    offer = await ana.receive_containing("Vino nuevo")
    await ana.tap(offer, "No más ofertas")  # the one-tap opt-out
    await ana.receive_containing("Ofertas")
    member = await bot.services.membership.member(Identity("whatsapp", ana.wa_id))
    assert member is not None and not member.promotions_consent
    await owner.send("campañas")
    listing = (await owner.receive_containing("Últimas campañas")).text or ""
    assert "Destinatarios: 1 · enviados: 1" in listing


async def test_a_campaign_as_the_owner_writes_it_reaches_a_silent_member_as_its_template(
    graph: FakeGraph, clock: FakeClock, program: Program, tmp_path: Path
) -> None:
    """New lines, a tab, runs of spaces, emoji and length, as owners write: Meta refuses all
    but the last in a template parameter (132018), so the bot makes each one valid."""
    campaign = ApprovedTemplate.model_validate(
        {"message": "campaigns/message", "name": "campana", "parameters": ["shop", "text"]}
    )
    rules = program.model_copy(update={"whatsapp_templates": [campaign]})
    text = "¡Vino nuevo! 🍷\n\nEste sábado:\tcata      gratis\n" + "x" * 900  # 1,000 at most
    async with running(graph, clock, rules, tmp_path / "c.db") as bot:
        ana = graph.person("34612345696", "Ana")
        await join(ana)
        clock.advance(timedelta(days=2))  # she has been silent: only a template may go
        owner = graph.person(OWNER, "Dueña")
        await owner.send("difundir")
        await owner.receive_containing("Nueva campaña")
        await owner.send(text)
        await owner.tap(await owner.receive_containing("¿Quién lo recibe?"), "Todos")
        await owner.tap(await owner.receive_containing("cupón"), "Sin cupón")
        await owner.tap(await owner.receive_containing("Lo recibir"), "Enviar")
        await owner.receive_containing("En marcha")
        assert (await bot.services.jobs.deliver()).sent == 1
    sent = graph.calls[-1]
    assert sent.kind == "template" and sent.message_id is not None
    [_, written] = [p["text"] for p in sent.body["template"]["components"][0]["parameters"]]
    assert written.startswith("¡Vino nuevo! 🍷 · Este sábado: cata gratis · xxx")
    assert len(written) <= 1024


@given(st.text())
def test_any_text_becomes_a_template_parameter_meta_accepts(text: str) -> None:
    value = template_parameter(text)
    assert "\n" not in value and "\t" not in value and "     " not in value
    assert len(value) <= 1024


PHOTO = b"\xff\xd8\xff\xe0 a photo"


async def test_a_campaign_photo_reaches_a_whatsapp_member_with_its_opt_out(
    bot: WhatsAppBot,
) -> None:
    ana, bea = bot.graph.person("34612345690", "Ana"), bot.graph.person("34612345691", "Bea")
    await join(ana)
    await join(bea)
    owner = Actor(Identity("telegram", "1"), Role.OWNER)  # written on Telegram, with a photo
    campaigns = bot.services.campaigns
    draft = await campaign_draft(campaigns, owner)
    await campaigns.write(owner, "Mirad el vino nuevo", PHOTO)
    await campaigns.choose_audience(owner, draft.id, "everyone")
    await campaigns.choose_coupon(owner, draft.id, None)
    await campaigns.send(owner, draft.id)
    await bot.services.jobs.deliver()
    photo = await ana.receive_containing("Mirad el vino nuevo")
    assert photo.kind == "interactive/button"
    assert photo.body["interactive"]["header"]["type"] == "image"
    await bea.receive_containing("Mirad el vino nuevo")
    uploads = [call for call in bot.graph.calls if call.files.get("file") == PHOTO]
    assert len(uploads) == 1  # then sent by its media id
    await ana.tap(photo, "No más ofertas")
    await ana.receive_containing("Ofertas")
    assert not (await member_of(bot, ana)).promotions_consent


@given(st.text())
def test_any_text_the_templates_escape_reads_back_unchanged_on_whatsapp(text: str) -> None:
    """A customer's name with "<b>" or "&" in it: escaped by the template, shown as typed."""
    assert to_whatsapp(str(escape(text))) == text


def test_the_bot_markup_becomes_whatsapp_formatting() -> None:
    markup = '<b>Ana</b> tiene <i>3</i> <code>M0001</code> <a href="https://x.y">aquí</a> &lt;b&gt;'
    assert to_whatsapp(markup) == "*Ana* tiene _3_ ```M0001``` aquí (https://x.y) <b>"


async def test_an_owner_known_by_a_business_scoped_id_is_still_the_owner(bot: WhatsAppBot) -> None:
    """OWNER_PHONES names numbers; WhatsApp may key the owner on a user id instead."""
    owner = bot.graph.person(OWNER, "Dueña", user_id="EC.5930000000001")
    await invitation_link(owner)


@asynccontextmanager
async def both_channels(
    graph: FakeGraph,
    api: FakeTelegram,
    clock: FakeClock,
    program: Program,
    database: Path,
    database_url: str | None = None,
) -> AsyncIterator[Services]:
    """One core serving Telegram and WhatsApp, as `loyalty-bot run` with both set up; on
    PostgreSQL when `database_url` is given."""
    port = free_port()
    settings = whatsapp_settings(
        graph,
        database,
        port,
        bot_token="123456:TEST-TOKEN",
        telegram_api_url=api.url,
        polling_timeout=1,
        owner_ids="1",
        **({"database_url": database_url} if database_url else {}),
    )
    services = await open_services(
        settings, program, clock, Messages(settings.zone, program.shop.money)
    )
    telegram = build_application(
        settings, program, clock, services.messages, background=False, core=services
    )
    graph.now = clock.now
    try:
        async with serving(telegram), serving_whatsapp(services):
            graph.webhook_url = f"http://127.0.0.1:{port}/whatsapp"
            yield services
    finally:
        await close_services(services, None)


async def test_a_telegram_member_links_their_whatsapp_and_keeps_one_balance(
    graph: FakeGraph, api: FakeTelegram, clock: FakeClock, program: Program, tmp_path: Path
) -> None:
    """One program on both apps: a member on Telegram writes from WhatsApp with the same
    number, confirms on Telegram (which knows the number is theirs), and from then on is one
    customer with one ledger; pushes go to the app they wrote from last."""
    async with both_channels(graph, api, clock, program, tmp_path / "both.db") as services:
        on_telegram = api.user(42, "Lucía", "es")
        await register(on_telegram, phone="+34 612 345 678")
        member = await services.membership.member(Identity("telegram", "42"))
        assert member is not None
        await sell(services.sales, member, 3)
        on_whatsapp = graph.person("34612345678", "Lucía")
        linked = await link_apps(on_telegram, on_whatsapp)
        assert "*3 puntos*" in linked.text
        await on_whatsapp.send("saldo")
        assert "*3 puntos*" in (await on_whatsapp.receive()).text
        async with services.database.reading() as tx:
            rows = await tx.fetch_all("SELECT channel FROM customers")
    assert [row["channel"] for row in rows] == ["whatsapp"]  # one customer, written to last


async def test_forget_on_one_app_erases_the_person_on_every_app_down_to_the_bytes(
    engine_url: str | None,
    graph: FakeGraph,
    api: FakeTelegram,
    clock: FakeClock,
    program: Program,
    tmp_path: Path,
) -> None:
    """Linked, she wrote from WhatsApp (her texts, profile name and number were received)
    and the owner corrected her points with a reason naming her; /forget on Telegram leaves
    none of it in the database's files (SQLite's write-ahead log included), and /mydata
    listed it all before. What anyone wrote is forgotten once handled, so /mydata shows no
    message of hers. On PostgreSQL that takes the night's rewrite: a plain VACUUM left her
    name and number in the free space of four tables' and four indexes' pages."""
    database = tmp_path / "forget.db"
    async with both_channels(graph, api, clock, program, database, engine_url) as services:
        on_telegram = api.user(43, "Lucía", "es")
        # ASCII throughout: the inbox keeps bodies as escaped JSON, where "í" would hide.
        await register(on_telegram, name="Lucia Perez", phone="+34 612 345 679")
        on_whatsapp = graph.person("34612345679", "Lucia Perez WA")
        await link_apps(on_telegram, on_whatsapp)
        secret = "my neighbour Carmen Ruiz wants to come too"
        await on_whatsapp.send(secret)
        await on_whatsapp.receive()
        owner = api.user(1, "Dueña", "es")
        member = await services.membership.member(Identity("whatsapp", "34612345679"))
        assert member is not None
        await owner.send(f"/adjust {member.member_code} +5 a gift for Lucia Perez")
        await owner.receive_containing("+5")
        mydata = await services.membership.personal_data(member)
        assert mydata["messages_received"] == []
        assert any("a gift for" in (row["details"] or "") for row in mydata["audit_log"])
        await on_telegram.send("/forget")
        await on_telegram.press(await on_telegram.receive("sendMessage"), "Sí")
        await on_telegram.receive_containing("hemos borrado")
        await services.jobs.run(ERASURES)  # that night
        settings = services.settings  # TEST_ENGINE=postgresql puts SQLite's half there too
    stored = stored_bytes(settings.database_path, settings.postgresql_url)
    assert member.member_code.encode() in stored  # the files read are the shop's
    for trace in ("Lucia Perez", "34612345679", "+34612345679", secret, "a gift for"):
        assert trace.encode() not in stored, trace


def _changes(value: dict[str, object]) -> bytes:
    body = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": value}]}],
    }
    return json.dumps(body).encode()


async def test_a_failure_reported_later_by_status_is_recorded_on_the_outbox_row(
    bot: WhatsAppBot,
) -> None:
    ana = bot.graph.person("34612345688", "Ana")
    await join(ana)
    member = await member_of(bot, ana)
    await sell(bot.services.sales, member, 1)
    await bot.services.jobs.deliver()
    receipt = await ana.receive_containing("Has sumado")
    status = {
        "id": receipt.message_id,
        "status": "failed",
        "recipient_id": ana.wa_id,
        "errors": [{"code": 131047, "title": "Re-engagement message"}],
    }
    assert await bot.graph.post_webhook(_changes({"statuses": [status]})) == 200
    async with bot.services.database.reading() as tx:
        row = await tx.fetch_one("SELECT status, last_error FROM outbox WHERE kind = 'notice'")
    assert row is not None and row["status"] == "failed" and "131047" in row["last_error"]


async def test_offers_stopped_in_whatsapps_settings_stop_at_once(bot: WhatsAppBot) -> None:
    ana = bot.graph.person("34612345689", "Ana")
    await join(ana)
    identity = Identity("whatsapp", ana.wa_id)
    for value, consented in (("stop", False), ("resume", True)):
        preference = {
            "wa_id": ana.wa_id,
            "detail": "User requested to stop marketing messages",
            "category": "marketing_messages",
            "value": value,
            "timestamp": str(int(bot.clock.now().timestamp())),
        }
        assert await bot.graph.post_webhook(_changes({"user_preferences": [preference]})) == 200
        await ana.send("saldo")  # answered after the preference: it was handled first
        await ana.receive()
        member = await bot.services.membership.member(identity)
        assert member is not None and member.promotions_consent is consented


async def test_a_marketing_stop_naming_the_number_reaches_a_member_known_by_her_username(
    bot: WhatsAppBot,
) -> None:
    """Meta keys Carla on her business-scoped id, but her stop names only her number."""
    carla = bot.graph.person("34612345692", "Carla", user_id="ES.5550001")
    await join(carla)
    preference = {
        "wa_id": carla.wa_id,
        "category": "marketing_messages",
        "value": "stop",
        "timestamp": str(int(bot.clock.now().timestamp())),
    }
    assert await bot.graph.post_webhook(_changes({"user_preferences": [preference]})) == 200
    await carla.send("saldo")  # answered after the preference: it was handled first
    await carla.receive()
    member = await bot.services.membership.member(Identity("whatsapp", "ES.5550001"))
    assert member is not None and member.promotions_consent is False


async def test_the_owner_gives_coupons_corrects_points_and_removes_staff_on_whatsapp(
    bot: WhatsAppBot,
) -> None:
    owner = bot.graph.person(OWNER, "Dueña")
    pepe = bot.graph.person("34699000112", "Pepe")
    await hire_on_whatsapp(owner, pepe)
    ana = bot.graph.person("34612345690", "Ana")
    await join(ana)
    member = await member_of(bot, ana)
    await owner.send(f"cupon {member.member_code} 20")
    await owner.receive_containing("20%")
    await ana.receive_containing("20%")  # she accepted offers: she is told
    await owner.send(f"ajustar {member.member_code} +5 regalo de bienvenida")
    await owner.receive_containing("+5")
    await ana.receive_containing("+5")
    await pepe.send(f"cupon {member.member_code} 20")
    await pepe.receive_containing("permiso")  # coupons are the owner's
    await owner.send("empleados")
    team = await owner.receive_containing("Empleados")
    await owner.tap(team, "Pepe")
    await owner.receive_containing("Pepe")
    await pepe.receive_containing("Ya no tienes acceso")


async def test_a_birthday_greeting_to_a_silent_customer_goes_as_its_template(
    graph: FakeGraph, clock: FakeClock, program: Program, tmp_path: Path
) -> None:
    birthday_gift = ApprovedTemplate.model_validate(
        {
            "message": "pushes/birthday",
            "name": {"es": "regalo_cumple", "en": "birthday_gift"},  # a name per language
            "parameters": ["name", "percent_off", "valid_until"],
        }
    )
    rules = program.model_copy(update={"whatsapp_templates": [birthday_gift]})
    async with running(graph, clock, rules, tmp_path / "b.db") as bot:
        ana = graph.person("34612345691", "Ana")
        await ana.send("hola")
        await ana.receive_containing("Bienvenido")
        await ana.tap(await ana.receive(), "Ana")
        await ana.receive()
        await ana.send("25/11")  # tomorrow
        await ana.tap(await ana.receive(), "Sí")
        await ana.receive_containing("Ya eres socio")
        assert (await ana.receive()).kind == "image"  # her card
        bot.clock.advance(timedelta(hours=25))  # her birthday, and a day of silence
        assert (await bot.services.jobs.run("birthdays")).delivery.sent == 1
    greeting = graph.calls[-1]
    assert greeting.kind == "template" and greeting.body["template"]["name"] == "regalo_cumple"
    values = [p["text"] for p in greeting.body["template"]["components"][0]["parameters"]]
    assert values == ["Ana", "15", "09/12/2026"]


async def test_a_number_typed_on_telegram_links_nothing(bot: WhatsAppBot) -> None:
    """Only a number known to be the member's (a shared contact) may link another app: one
    typed could be anybody's, and would hand its owner the typist's account."""
    typed = await enrol(bot.services.registration, 1234)  # typed +34600001234 on Telegram
    assert typed.phone == "+34600001234"
    stranger = bot.graph.person("34600001234", "Desconocida")
    await stranger.send("hola")
    assert "¿Cómo te llamas?" in (await stranger.receive_containing("llamas")).text  # joins
    async with bot.services.database.reading() as tx:
        offers = await tx.fetch_one("SELECT COUNT(*) AS n FROM link_offers")
    assert offers is not None and offers["n"] == 0


async def test_a_flood_from_one_person_is_told_to_slow_down_once_and_dropped(
    graph: FakeGraph, clock: FakeClock, program: Program, tmp_path: Path
) -> None:
    async with running(graph, clock, program, tmp_path / "f.db", flood_burst=3):
        ana = graph.person("34612345692", "Ana")
        for _ in range(8):  # time stands still: her allowance does not refill
            await ana.send("hola")
        bruno = graph.person("34612345693", "Bruno")
        await bruno.send("hola")
        await bruno.receive()  # the others are answered meanwhile
        await ana.receive_containing("muy deprisa")
    told = [call.text for call in graph.calls if call.to == ana.wa_id]
    # Three messages answered (the first with the welcome too), one warning.
    assert len(told) == 5 and "muy deprisa" in told[-1]


async def test_hostile_webhooks_get_a_4xx_or_are_ignored_never_a_500(
    bot: WhatsAppBot, caplog: pytest.LogCaptureFixture
) -> None:
    ana = bot.graph.person("34612345693", "Ana")
    odd_id = ana.webhook({"id": {"$gt": ""}, "type": "text", "text": {"body": "hola"}})
    list_text = ana.webhook({"id": "wamid.L", "type": "text", "text": ["hola"]})
    deep = ("[" * 100_000 + "]" * 100_000).encode()
    body = json.dumps(odd_id).encode()
    assert await bot.graph.post_webhook(body) == 200  # signed, not understood: ignored
    assert await bot.graph.post_webhook(json.dumps(list_text).encode()) == 200
    assert await bot.graph.post_webhook(deep) == 400
    assert await bot.graph.post_webhook(body, signature="sha256=ñandú") == 401
    await ana.send("hola")  # the bot still answers, and answered nothing else
    assert "Bienvenido" in (await ana.receive()).text
    assert "llamas" in (await ana.receive()).text
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


async def test_a_replay_after_its_id_was_forgotten_is_ignored_and_ids_are_never_reused(
    bot: WhatsAppBot,
) -> None:
    """A captured webhook sent again byte for byte after its inbox row was pruned: the time
    it says it was sent is past the window, so it is ignored. New messages after the prune
    get new ids, and are answered."""
    owner = bot.graph.person(OWNER, "Dueña")
    ana = bot.graph.person("34612345694", "Ana")
    await join(ana)
    member = await member_of(bot, ana)
    captured = owner.webhook(
        {"id": "wamid.ADJ", "type": "text", "text": {"body": f"ajustar {member.member_code} +50 x"}}
    )
    raw = json.dumps(captured).encode()
    assert await bot.graph.post_webhook(raw) == 200
    await owner.receive_containing("+50")
    before = await _inbox_ids(bot)
    bot.clock.advance(timedelta(days=9))
    await owner.send("ayuda")  # the worker's daily prune forgets the old rows
    await owner.receive()
    assert await bot.graph.post_webhook(raw) == 200  # the replay
    await owner.send("ayuda")
    await owner.receive()
    assert (await bot.services.membership.standing(member)).balance == 50  # credited once
    after = await _inbox_ids(bot)
    assert min(after) > max(before)  # the ids after the prune are new ones


async def _inbox_ids(bot: WhatsAppBot) -> list[int]:
    async with bot.services.database.reading() as tx:
        return [row["id"] for row in await tx.fetch_all("SELECT id FROM inbox")]


async def test_a_reaction_is_ignored_and_a_sticker_or_location_gets_one_line(
    bot: WhatsAppBot,
) -> None:
    ana = bot.graph.person("34612345695", "Ana")
    await join(ana)
    kinds: list[dict[str, Any]] = [
        {"type": "reaction", "reaction": {"message_id": "wamid.X", "emoji": "👍"}},
        {"type": "sticker", "sticker": {"id": "1", "mime_type": "image/webp"}},
        {"type": "location", "location": {"latitude": 0.1, "longitude": 0.2}},
        {"type": "unsupported", "errors": [{"code": 131051}]},
    ]
    for number, content in enumerate(kinds):
        body = ana.webhook({"id": f"wamid.K{number}", **content})
        assert await bot.graph.post_webhook(json.dumps(body).encode()) == 200
    await ana.send("saldo")
    answers = [await ana.receive() for _ in range(4)]
    assert [answer.text.startswith("Solo leo") for answer in answers] == [True, True, True, False]
    assert "tienes" in answers[3].text  # the reaction got nothing, not even the menu


async def test_a_clerks_hostile_profile_name_reaches_the_owner_plain(bot: WhatsAppBot) -> None:
    owner = bot.graph.person(OWNER, "Dueña")
    clerk = bot.graph.person("34699000113", "Pepe\u202e" + "x" * 300)
    await hire_on_whatsapp(owner, clerk, welcome="Pepexxx")
    await owner.send("empleados")
    team = await owner.receive_containing("Empleados")
    assert "\u202e" not in team.text and "Pepe" + "x" * 60 in team.text
    assert "x" * 61 not in team.text


async def test_a_clerk_is_refused_the_owners_taps_by_the_core(bot: WhatsAppBot) -> None:
    """WhatsApp holds no role check for these: the core's table refuses them, and audits."""
    owner = bot.graph.person(OWNER, "Dueña")
    pepe = bot.graph.person("34699000114", "Pepe")
    await hire_on_whatsapp(owner, pepe)
    await pepe.send("menu")
    menu = await pepe.receive()
    for tap in ("winback:1", "followup:1:called", "staff:remove:1"):
        await pepe.tap_id(menu, tap)
        await pepe.receive_containing("permiso")
    await pepe.send("ajustar ABCD2345 +5 why")
    await pepe.receive_containing("permiso")
    async with bot.services.database.reading() as tx:
        rows = await tx.fetch_all("SELECT subject FROM audit_log WHERE action = 'refused'")
    assert [row["subject"] for row in rows] == ["winback", "follow_up", "staff", "adjust"]
