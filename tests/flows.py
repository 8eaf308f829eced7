"""Whole conversations that several tests need, played through the stand-in like a person would."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import unquote
from zoneinfo import ZoneInfo

from bot.clock import Clock
from bot.domain.campaigns import CampaignService
from bot.domain.fraud import FraudWatch
from bot.domain.models import Actor, Customer, Identity, Language, Refused, Role
from bot.domain.registration import (
    ConsentAnswer,
    Registered,
    RegistrationService,
    SkipAnswer,
    TextAnswer,
)
from bot.domain.sales import SaleDraft, SaleRecorded, SalesService
from bot.domain.staff import Invite, StaffService
from bot.program import Program
from bot.storage.campaigns import Campaign
from bot.storage.database import Database, Transaction, to_sql_time
from handlers.telegram.standin import ApiCall, ChatUser
from handlers.whatsapp.standin import GraphCall, WhatsAppPerson
from tests.conftest import RunningBot

CONSENT_YES = {"es": "Sí", "en": "Yes"}
CONSENT_NO = {"es": "No", "en": "No"}


async def register(
    user: ChatUser,
    *,
    name: str | None = None,
    phone: str | None = "+34 612 345 678",
    birthday: str | None = "24/12/1990",
    consent: bool = True,
    start: str = "/start",
) -> ApiCall:
    """Join with the given answers (None skips a step); returns the member card the bot sent."""
    language = user.language_code if user.language_code in ("es", "en") else "es"
    await user.send(start)
    await user.receive_containing("1/4")
    await user.send(name or user.first_name)
    phone_question = await user.receive_containing("2/4")
    if phone is None:
        await user.send(_skip_label(phone_question))
    else:
        await user.share_contact(phone)
    birthday_question = await user.receive_containing("3/4")
    await user.send(birthday if birthday is not None else _skip_label(birthday_question))
    consent_question = await user.receive_containing("4/4")
    label = CONSENT_YES[language] if consent else CONSENT_NO[language]
    await user.press(consent_question, label)
    return await user.receive("sendPhoto")


async def link_apps(on_telegram: ChatUser, on_whatsapp: WhatsAppPerson) -> GraphCall:
    """A Telegram member writes from WhatsApp with her number and confirms with /link on
    Telegram; returns WhatsApp's "done"."""
    await on_whatsapp.send("hola")
    await on_whatsapp.receive_containing("Telegram")
    await on_telegram.receive_containing("/link")
    await on_telegram.send("/link")
    await on_telegram.receive_containing("WhatsApp")
    return await on_whatsapp.receive_containing("Listo")


async def hire_on_whatsapp(
    owner: WhatsAppPerson, clerk: WhatsAppPerson, welcome: str | None = None
) -> None:
    """The owner asks for an invitation ("empleados", then its option) and `clerk` sends what
    its link types; the welcome names them (`welcome`: what of their name it shows)."""
    link = await invitation_link(owner)
    token = re.search(r"staff_([A-Za-z0-9_-]+)", unquote(link.text))
    assert token is not None
    await clerk.send(f"staff_{token[1]}")
    await clerk.receive_containing(welcome or clerk.name)


async def invitation_link(owner: WhatsAppPerson) -> GraphCall:
    await owner.send("empleados")
    team = await owner.receive_containing("Empleados")
    await owner.tap(team, "Invitar")
    return await owner.receive_containing("wa.me")


async def invitation(staff: StaffService, owner: Actor) -> Invite:
    invite = await staff.invite(owner)
    assert not isinstance(invite, Refused)
    return invite


async def campaign_draft(campaigns: CampaignService, owner: Actor) -> Campaign:
    draft = await campaigns.start(owner)
    assert not isinstance(draft, Refused)
    return draft


def _skip_label(question: ApiCall) -> str:
    labels = [button["text"] for button in question.keyboard_buttons() if "⏭" in button["text"]]
    assert labels, f"no skip button under {question.text!r}"
    return str(labels[0])


async def hire(owner: ChatUser, staff: ChatUser) -> None:
    """The owner creates an invitation in /staff and `staff` opens the link."""
    await owner.send("/staff")
    panel = await owner.receive("sendMessage")
    await owner.press_data(panel, "staff:invite")
    link = await owner.receive_containing("start=staff_")
    token = link.text.split("start=staff_")[1].split()[0]
    await staff.send(f"/start staff_{token}")
    await staff.receive_containing(staff.first_name)  # the welcome names them


async def sell_by_scan(staff: ChatUser, member_code: str, typed: str) -> ApiCall:
    """Scan the card, type the sale, tap confirm; returns the staff member's receipt."""
    await staff.send(f"/start c_{member_code}")
    await staff.receive("sendMessage")  # who the customer is, asking for the amount
    await staff.send(typed)
    confirmation = await staff.receive("sendMessage")
    await staff.press_data(confirmation, confirmation.callback_data("✅"))
    return await staff.receive_containing("#")


CLERK = Actor(Identity("telegram", "50"), Role.STAFF, "Pepe")


async def join(
    bot: RunningBot,
    user_id: int,
    *,
    birthday: str | None = None,
    consent: bool = True,
    language: str = "es",
    referral_code: str | None = None,
) -> tuple[ChatUser, Customer]:
    """A member, registered through the domain (the Telegram flow has its own tests)."""
    customer = await enrol(
        bot.services.registration,
        user_id,
        birthday=birthday,
        consent=consent,
        language=language,
        referral_code=referral_code,
    )
    return bot.api.user(user_id, f"Cliente {user_id}", language), customer


async def enrol(
    registration: RegistrationService,
    user_id: int,
    *,
    birthday: str | None = None,
    consent: bool = True,
    language: str = "es",
    referral_code: str | None = None,
    identity: Identity | None = None,
) -> Customer:
    """A member called "Cliente <user_id>", registered through the domain (on Telegram as
    `user_id`, unless `identity` says who they are)."""
    identity = identity or Identity("telegram", str(user_id))
    await registration.start(identity, Language(language), None, referral_code)
    await registration.answer(identity, TextAnswer(f"Cliente {user_id}"))
    await registration.answer(identity, TextAnswer(f"+3460000{user_id:04d}"))
    await registration.answer(identity, TextAnswer(birthday) if birthday else SkipAnswer())
    done = await registration.answer(identity, ConsentAnswer(consent))
    assert isinstance(done, Registered)
    return done.customer


async def buy(bot: RunningBot, customer: Customer, items: int = 1) -> SaleRecorded:
    return await sell(bot.services.sales, customer, items)


async def sell(sales: SalesService, customer: Customer, items: int = 1) -> SaleRecorded:
    """A sale of `items` bottles at 10 each, typed and confirmed by CLERK."""
    draft = await sales.prepare(CLERK, customer.member_code, str(10 * items), str(items))
    assert isinstance(draft, SaleDraft)
    recorded = await sales.confirm(CLERK, draft.pending.id)
    assert isinstance(recorded, SaleRecorded)
    return recorded


async def _no_owners(_: Transaction) -> dict[Identity, Language]:
    return {}


def sales_service(database: Database, clock: Clock, program: Program) -> SalesService:
    """The counter's service as the bot builds it, for domain tests (no owners to alert)."""
    zone = ZoneInfo("Europe/Madrid")
    return SalesService(database, clock, program, zone, FraudWatch(program, zone, _no_owners))


async def survey_sent(database: Database, clock: Clock, customer_id: int, kind: str) -> int:
    """A survey asked now, open for a week, as the surveys job leaves it (which asks thousands
    at once); its id."""
    async with database.transaction() as tx:
        row = await tx.fetch_one(
            "INSERT INTO surveys (customer_id, kind, created_at, expires_at) VALUES (?, ?, ?, ?)"
            " RETURNING id",
            (customer_id, kind, to_sql_time(clock.now()), to_sql_time(clock.now() + timedelta(7))),
        )
    assert row is not None
    return int(row["id"])
