"""Flows both apps share, written once against what a person does (say, open a link, tap) and
run through the Telegram stand-in and through the WhatsApp stand-in, one core serving both.
What only one app has (Telegram's HTML and deep links, WhatsApp's window, templates, lists
and signatures) is tested in that channel's own tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pytest

from bot.bootstrap import Services
from bot.domain.models import Actor, Customer, Identity, Language, Refused, Role
from bot.program import Program
from handlers.telegram.standin import ApiCall, ChatUser, FakeTelegram
from handlers.whatsapp.standin import FakeGraph, GraphCall, WhatsAppPerson
from tests.conftest import FakeClock
from tests.flows import enrol, invitation
from tests.test_whatsapp import both_channels

Heard = ApiCall | GraphCall


class Person(Protocol):
    @property
    def identity(self) -> Identity: ...

    async def say(self, text: str) -> None: ...
    async def open_link(self, payload: str) -> None: ...
    async def hears(self, part: str) -> Heard: ...
    async def tap(self, on: Heard, label_part: str) -> None: ...


@dataclass
class OnTelegram:
    user: ChatUser

    @property
    def identity(self) -> Identity:
        return Identity("telegram", str(self.user.id))

    async def say(self, text: str) -> None:
        await self.user.send(text)

    async def open_link(self, payload: str) -> None:  # a t.me deep link
        await self.user.send(f"/start {payload}")

    async def hears(self, part: str) -> Heard:
        return await self.user.receive_containing(part)

    async def tap(self, on: Heard, label_part: str) -> None:
        assert isinstance(on, ApiCall)
        await self.user.press(on, label_part)


@dataclass
class OnWhatsApp:
    person: WhatsAppPerson

    @property
    def identity(self) -> Identity:
        return Identity("whatsapp", self.person.wa_id)

    async def say(self, text: str) -> None:
        await self.person.send(text)

    async def open_link(self, payload: str) -> None:  # a wa.me link types it
        await self.person.send(payload)

    async def hears(self, part: str) -> Heard:
        return await self.person.receive_containing(part)

    async def tap(self, on: Heard, label_part: str) -> None:
        assert isinstance(on, GraphCall)
        await self.person.tap(on, label_part)


@dataclass
class Shop:
    services: Services
    api: FakeTelegram
    graph: FakeGraph
    channel: str

    def person(self, number: int, name: str) -> Person:
        if self.channel == "telegram":
            return OnTelegram(self.api.user(number, name, "es"))
        return OnWhatsApp(self.graph.person(f"3461{number:07d}", name))

    async def member(self, number: int, name: str) -> tuple[Person, Customer]:
        person = self.person(number, name)
        customer = await enrol(self.services.registration, number, identity=person.identity)
        return person, customer

    async def clerk(self, number: int, name: str) -> Person:
        person = self.person(number, name)
        owner = Actor(Identity("telegram", "1"), Role.OWNER)
        token = (await invitation(self.services.staff, owner)).token
        joined = await self.services.staff.accept(person.identity, token, name, Language.ES)
        assert not isinstance(joined, Refused)
        return person


@pytest.fixture(params=["telegram", "whatsapp"])
async def shop(
    request: pytest.FixtureRequest,
    graph: FakeGraph,
    api: FakeTelegram,
    clock: FakeClock,
    program: Program,
    tmp_path: Path,
    engine_url: str | None,
) -> AsyncIterator[Shop]:
    async with both_channels(
        graph, api, clock, program, tmp_path / "shop.db", engine_url
    ) as services:
        yield Shop(services, api, graph, request.param)


async def test_a_sale_at_the_counter_reaches_the_customer_once(shop: Shop) -> None:
    customer, member = await shop.member(701, "Ana")
    await customer.say("/balance")  # she wrote today: WhatsApp lets the shop write back
    await customer.hears("punto")
    clerk = await shop.clerk(702, "Pepe")
    await clerk.open_link(f"c_{member.member_code}")  # the card, scanned
    await clerk.hears("importe")
    await clerk.say("24,50 3")
    confirm = await clerk.hears("¿Confirmas?")
    await clerk.tap(confirm, "Confirmar")
    await clerk.hears("registrada")
    await customer.hears("Has sumado")
    assert (await shop.services.membership.standing(member)).balance == 3
    heard = shop.api.calls if shop.channel == "telegram" else shop.graph.calls
    assert len([call for call in heard if "Has sumado" in call.text]) == 1


async def test_a_member_switches_language_and_erases_their_data(shop: Shop) -> None:
    customer, _ = await shop.member(711, "Ana")
    await customer.say("/balance")
    await customer.hears("punto")
    await customer.say("/language")
    await customer.tap(await customer.hears("idioma"), "English")
    await customer.hears("English")
    await customer.say("/forget")
    await customer.tap(await customer.hears("erase"), "Yes")
    await customer.hears("erased")
    assert await shop.services.membership.member(customer.identity) is None


async def test_a_clerk_is_refused_what_only_the_owner_may_do(shop: Shop) -> None:
    clerk = await shop.clerk(721, "Pepe")
    for command in ("/export", "/adjust C0001 +5 regalo", "/broadcast", "/staff"):
        await clerk.say(command)
        await clerk.hears("permiso")
    async with shop.services.database.reading() as tx:
        refused = await tx.fetch_all("SELECT subject FROM audit_log WHERE action = 'refused'")
    assert [row["subject"] for row in refused] == ["export", "adjust", "campaign", "staff"]
