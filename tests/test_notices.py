"""Who is told what, as rules: each change queues its messages to others in the outbox (the
template and its variables, in the same commit), whatever channel later carries them. The
wording itself is checked by the end-to-end tours (tests/test_every_template.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.domain.churn import ChurnService
from bot.domain.models import Actor, CouponKind, Customer, Identity, Language, Role
from bot.domain.notices import tell_customer
from bot.domain.registration import (
    RegistrationService,
)
from bot.domain.rewards import RewardsService
from bot.domain.sales import SalesService
from bot.domain.staff import StaffService
from bot.domain.surveys import SurveyService
from bot.program import Program
from bot.storage.database import Database
from tests.conftest import FakeClock
from tests.flows import enrol, invitation, sales_service, sell, survey_sent

MADRID = ZoneInfo("Europe/Madrid")
OWNER = Identity("telegram", "1")
OWNER_ACTOR = Actor(OWNER, Role.OWNER)
CLERK = Actor(Identity("telegram", "50"), Role.STAFF, "Pepe")


@dataclass(frozen=True)
class Told:
    to: int | str  # a customer's id, or "channel:user id" for staff and owners
    language: str | None
    template: str
    context: dict[str, Any]


async def _told(database: Database) -> list[Told]:
    async with database.reading() as tx:
        rows = await tx.fetch_all(
            "SELECT customer_id, channel, channel_user_id, language, template, payload"
            " FROM outbox WHERE kind = 'notice' ORDER BY id"
        )
    return [
        Told(
            row["customer_id"] or f"{row['channel']}:{row['channel_user_id']}",
            row["language"],
            row["template"],
            json.loads(row["payload"])["context"],
        )
        for row in rows
    ]


async def _member(
    database: Database,
    clock: FakeClock,
    program: Program,
    user_id: str,
    *,
    consent: bool = True,
    referral_code: str | None = None,
) -> Customer:
    registration = RegistrationService(database, clock, program)
    return await enrol(registration, int(user_id), consent=consent, referral_code=referral_code)


@pytest.fixture
def sales(database: Database, clock: FakeClock, program: Program) -> SalesService:
    return sales_service(database, clock, program)


async def test_a_sale_tells_the_customer_what_it_earned_once(
    database: Database, clock: FakeClock, program: Program, sales: SalesService
) -> None:
    ana = await _member(database, clock, program, "101")
    recorded = await sell(sales, ana, 3)
    assert (await sales.confirm(CLERK, recorded.sale.id)) is not None  # a second tap
    assert await _told(database) == [
        Told(
            ana.id,
            None,
            "points/earned",
            {
                "points": 3,
                "welcome_bonus": 0,
                "balance": 3,
                "reward_reached": None,
                "next_reward": {
                    "name": {"es": "una botella gratis", "en": "a free bottle"},
                    "missing_points": 7,
                },
                "affordable_reward": None,
            },
        )
    ]


async def test_a_first_purchase_rewards_the_friend_who_invited_and_a_tier_is_announced(
    database: Database, clock: FakeClock, program: Program, sales: SalesService
) -> None:
    referrer = await _member(database, clock, program, "102")
    friend = await _member(database, clock, program, "103", referral_code=referrer.referral_code)
    recorded = await sell(sales, friend, 35)  # 35 points: Silver from 30
    told = {(notice.to, notice.template): notice.context for notice in await _told(database)}
    assert told[(friend.id, "points/earned")]["welcome_bonus"] == 1
    assert told[(friend.id, "points/tier_up")] == {"tier": {"es": "Plata", "en": "Silver"}}
    assert told[(referrer.id, "points/referral_bonus")] == {"friend": friend.name, "points": 2}
    assert recorded.standing.balance == 36


async def test_a_void_tells_the_customer_the_points_taken_back(
    database: Database, clock: FakeClock, program: Program, sales: SalesService
) -> None:
    ana = await _member(database, clock, program, "104")
    recorded = await sell(sales, ana, 4)
    await sales.void(OWNER_ACTOR, recorded.sale.id, "typo")
    voided = (await _told(database))[-1]
    assert (voided.to, voided.template) == (ana.id, "points/sale_voided")
    assert voided.context == {
        "bought_at": recorded.sale.created_at.isoformat(),
        "points": 4,
        "balance": 0,
    }


async def test_a_coupon_is_announced_only_to_a_customer_who_accepted_offers(
    database: Database, clock: FakeClock, program: Program
) -> None:
    rewards = RewardsService(database, clock, program)
    keen = await _member(database, clock, program, "105")
    unwilling = await _member(database, clock, program, "106", consent=False)
    for customer in (keen, unwilling):
        await rewards.grant(
            OWNER_ACTOR,
            customer,
            CouponKind.GRANTED,
            percent_off=10,
            valid_days=7,
            idempotency_key=f"coupon:{customer.id}",
        )
    assert [(n.to, n.template) for n in await _told(database)] == [(keen.id, "coupons/received")]


async def test_an_unhappy_answer_alerts_the_whole_team_each_in_their_language(
    database: Database, clock: FakeClock, program: Program
) -> None:
    staff = StaffService(database, clock, frozenset({OWNER}), Language.ES)
    await staff.actor(OWNER, Language.EN)  # the owner writes in English
    invite = await invitation(staff, OWNER_ACTOR)
    await staff.accept(CLERK.identity, invite.token, "Pepe", Language.ES)
    surveys = SurveyService(
        database, clock, program, MADRID, ChurnService(database, clock, program), staff
    )
    ana = await _member(database, clock, program, "107")
    first, second = [await survey_sent(database, clock, ana.id, "nps") for _ in range(2)]
    await surveys.answer(ana.identity, first, 9)  # a promoter: nobody is alerted
    assert [n.template for n in await _told(database)] == ["staff/joined"]

    await surveys.answer(ana.identity, second, 3)
    await surveys.give_reason(ana.identity, "el vino llegó caliente")
    alerts = [n for n in await _told(database) if n.template.startswith("alerts/")]
    assert {(n.to, n.language, n.template) for n in alerts} == {
        ("telegram:1", "en", "alerts/detractor"),
        ("telegram:50", "es", "alerts/detractor"),
        ("telegram:1", "en", "alerts/detractor_comment"),
        ("telegram:50", "es", "alerts/detractor_comment"),
    }
    comment = alerts[-1].context
    assert comment["customer"]["member_code"] == ana.member_code
    assert comment["survey"] == {"kind": "nps", "score": 3, "reason": "el vino llegó caliente"}


async def test_the_owner_hears_of_a_new_member_of_staff_and_the_removed_one_is_told(
    database: Database, clock: FakeClock
) -> None:
    staff = StaffService(database, clock, frozenset({OWNER}), Language.ES)
    invite = await invitation(staff, OWNER_ACTOR)
    await staff.accept(CLERK.identity, invite.token, "Pepe", Language.EN)
    member = (await staff.members())[0]
    await staff.remove(OWNER_ACTOR, member.id)
    assert [(n.to, n.language, n.template, n.context) for n in await _told(database)] == [
        ("telegram:1", "es", "staff/joined", {"member": {"name": "Pepe"}}),
        ("telegram:50", "en", "staff/you_were_removed", {}),
    ]


async def test_a_notice_carries_only_plain_values_a_template_can_read(
    database: Database, clock: FakeClock, program: Program
) -> None:
    """Stored variables are JSON, and a name like `items` would read as the dict's method."""
    ana = await _member(database, clock, program, "108")
    for wrong in ({"when": clock.now()}, {"sale": {"items": 3}}):
        with pytest.raises(AssertionError):
            async with database.transaction() as tx:
                await tell_customer(tx, ana, "key", "points/earned", clock.now(), **wrong)
