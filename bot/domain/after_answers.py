"""The satisfaction x relationship map turned into actions, after each survey answer (each
rule in the program file's [map_actions], each off-able):

- an apostle (satisfied, strong relationship) who answers as a promoter is asked to share their
  referral link, with the link;
- a mercenary (satisfied, weak relationship) hears what the next tier needs and gives;
- a hostage (unhappy, strong relationship) is asked what would make them happier, in the reply
  to their answer (what they write back is kept as the answer's reason);
- any detractor (a hostage or a terrorist) opens a follow-up for the owner, shown in /churn with
  one-tap outcomes: a coupon, "I called them", "resolved".

Offers go through the promotions gate (consent, weekly cap); /stats counts how many customers
stand in another quadrant since an action.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal, get_args

from bot.clock import Clock
from bot.domain.membership import standing_of
from bot.domain.models import Actor, CouponKind, Customer, Refused
from bot.domain.notices import localised
from bot.domain.permissions import Action, permitted
from bot.domain.promotions import Promotion, promote
from bot.domain.pushes import PushMessage
from bot.domain.rewards import give_coupon
from bot.domain.scores import NPS_PROMOTER_FROM, is_detractor
from bot.program import Program
from bot.storage.customers import CustomerRepository
from bot.storage.database import Database, Transaction
from bot.storage.flags import FlagRepository, MapLines
from bot.storage.follow_ups import FollowUp, FollowUps
from bot.storage.staff import AuditLog
from bot.storage.surveys import Survey, SurveyRepository

FOLLOW_UPS_SHOWN = 10
FollowUpOutcome = Literal["coupon", "called", "resolved"]
OUTCOMES: tuple[FollowUpOutcome, ...] = get_args(FollowUpOutcome)


@dataclass(frozen=True)
class OpenFollowUp:
    follow_up: FollowUp
    customer: Customer
    survey_score: int | None
    survey_kind: str
    reason: str | None


async def act_on_answer(
    tx: Transaction, program: Program, lines: MapLines, customer: Customer, survey: Survey
) -> bool:
    """What the answer sets off, in its own transaction; True when the reply to it should ask
    what would make the customer happier (a hostage)."""
    rules = program.map_actions
    assert survey.answered_at is not None and survey.score is not None
    now = survey.answered_at
    placed = await FlagRepository(tx).quadrants(now, lines, customer.id)
    quadrant = placed.get(customer.id)
    promotions = []
    promoter = survey.kind == "nps" and survey.score >= NPS_PROMOTER_FROM
    if quadrant == "apostle" and promoter and rules.apostle_share_link:
        message = PushMessage(
            "pushes/share_link",
            {
                "name": customer.name,
                "shop": program.shop.name,
                "link_payload": f"ref_{customer.referral_code}",
                "referrer_points": program.referral.referrer_points,
            },
        )
        promotions.append(Promotion(customer, "map", f"map:{survey.id}", message, "apostle"))
    if quadrant == "mercenary" and rules.mercenary_tier_incentive:
        standing = await standing_of(tx, program, customer.id, now)
        if standing.next_tier is not None:
            message = PushMessage(
                "pushes/tier_incentive",
                {
                    "name": customer.name,
                    "points": standing.points_to_next_tier,
                    "tier": localised(standing.next_tier.name),
                    "multiplier": str(standing.next_tier.multiplier),
                },
            )
            promotions.append(Promotion(customer, "map", f"map:{survey.id}", message, "mercenary"))
    await promote(tx, promotions, now, program.contact)
    if is_detractor(survey.kind, survey.score) and rules.detractor_follow_up:
        await FollowUps(tx).open(customer.id, survey.id, quadrant, now)
    return quadrant == "hostage" and rules.hostage_ask


class FollowUpService:
    """The owner's side: open follow-ups in /churn, and the tap that records an outcome."""

    def __init__(self, database: Database, clock: Clock, program: Program) -> None:
        self._db = database
        self._clock = clock
        self._program = program

    async def open_ones(self) -> list[OpenFollowUp]:
        async with self._db.reading() as tx:
            found = []
            for follow_up in await FollowUps(tx).open_ones(FOLLOW_UPS_SHOWN):
                customer = await CustomerRepository(tx).by_id(follow_up.customer_id)
                survey = await SurveyRepository(tx).by_id(follow_up.survey_id)
                if customer is not None and survey is not None:
                    found.append(
                        OpenFollowUp(follow_up, customer, survey.score, survey.kind, survey.reason)
                    )
            return found

    async def close(
        self, owner: Actor, follow_up_id: int, outcome: FollowUpOutcome
    ) -> FollowUp | Refused:
        """Record what the owner did; "coupon" also gives the customer the win-back coupon."""
        if refused := await permitted(self._db, self._clock, owner, Action.FOLLOW_UP):
            return refused
        if outcome not in OUTCOMES:
            return Refused("follow_up_unknown")
        now = self._clock.now()
        async with self._db.transaction() as tx:
            follow_ups = FollowUps(tx)
            follow_up = await follow_ups.by_id(follow_up_id)
            if follow_up is None:
                return Refused("follow_up_unknown")
            if not await follow_ups.close(follow_up_id, outcome, owner.label, now):
                return Refused("follow_up_closed")
            await AuditLog(tx).record(
                owner.label, "follow_up", now, subject=f"follow_up:{follow_up_id}", outcome=outcome
            )
            customer = await CustomerRepository(tx).by_id(follow_up.customer_id)
            if outcome == "coupon" and customer is not None:
                rules = self._program.churn
                await give_coupon(
                    tx,
                    owner,
                    customer,
                    CouponKind.GRANTED,
                    percent_off=rules.winback_percent_off,
                    free_item=None,
                    valid_until=now + timedelta(days=rules.winback_valid_days),
                    idempotency_key=f"follow-up:{follow_up_id}",
                    at=now,
                )
            closed = await follow_ups.by_id(follow_up_id)
            assert closed is not None
            return closed
