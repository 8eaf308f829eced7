"""Satisfaction (1-5) after a purchase and NPS (0-10) now and then, with an optional reason.

NPS: promoters answer 9-10, passives 7-8, detractors 0-6. A detractor answer, or a
satisfaction score of 1-2, closes the loop: the shop is told at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from bot.channels import Choice
from bot.clock import Clock
from bot.domain.after_answers import act_on_answer
from bot.domain.churn import ChurnService
from bot.domain.models import Customer, Identity, Refused
from bot.domain.notices import customer_facts, tell_person
from bot.domain.parsing import whole_number
from bot.domain.pushes import PushMessage
from bot.domain.scores import is_detractor
from bot.domain.staff import StaffService
from bot.program import Program
from bot.scheduled_job import JobParts, ScheduledJob, always
from bot.storage.customers import CustomerRepository
from bot.storage.database import Database, Selected, Transaction
from bot.storage.outbox import OutboxRepository
from bot.storage.surveys import Survey, SurveyKey, SurveyRepository

REASON_WINDOW = timedelta(hours=24)  # a free-text reason is expected this long after a score
SURVEY_MINUTE = 5  # surveys are considered every hour at hh:05
STALE_PURCHASE = timedelta(days=3)  # older purchases are not asked about any more
# Outbox keys: asking twice about one sale ("survey:satisfaction:sale:12"), or twice on one
# day ("survey:nps:7:2026-12-01"), is a no-op.
SATISFACTION_KEY = SurveyKey("survey:satisfaction:sale:")


class SurveyKind(StrEnum):
    SATISFACTION = "satisfaction"
    NPS = "nps"


SCORES = {SurveyKind.SATISFACTION: tuple(range(1, 6)), SurveyKind.NPS: tuple(range(0, 11))}


@dataclass(frozen=True)
class Answered:
    survey: Survey
    customer: Customer
    detractor: bool
    ask_what_would_help: bool = False  # a hostage: the reply asks what would make them happier


class SurveyService:
    def __init__(
        self,
        database: Database,
        clock: Clock,
        program: Program,
        zone: ZoneInfo,
        churn: ChurnService,
        staff: StaffService,
    ) -> None:
        self._db = database
        self._staff = staff
        self._clock = clock
        self._program = program
        self._zone = zone
        self._churn = churn

    async def queue_due(self) -> int:
        """Queue the surveys that are due now; only within the configured local hours.

        Set-based, a few statements however many are due, so that the first run in a large
        shop (everyone due for NPS at once) stays quick."""
        rules = self._program.surveys
        now = self._clock.now()
        if not rules.send_hour_from <= now.astimezone(self._zone).hour < rules.send_hour_to:
            return 0
        quiet_since = now - timedelta(days=rules.satisfaction_min_days_between)
        bought_before = now - timedelta(hours=rules.satisfaction_delay_hours)
        local_day = now.astimezone(self._zone).date().isoformat()
        expires = now + timedelta(days=rules.answer_within_days)
        async with self._db.transaction() as tx:
            surveys = SurveyRepository(tx)
            after_purchase = await surveys.ask_after_purchases(
                (bought_before - STALE_PURCHASE, bought_before),
                quiet_since,
                now,
                expires,
                SATISFACTION_KEY,
            )
            queued = await self._queue(tx, SurveyKind.SATISFACTION, after_purchase, now)
            # Asked after those are created, so nobody gets both questions on one day.
            periodic = await surveys.ask_nps(
                now - timedelta(days=rules.nps_active_days),
                now - timedelta(days=rules.nps_every_days),
                quiet_since,
                now,
                expires,
                SurveyKey("survey:nps:", f":{local_day}"),
            )
            return queued + await self._queue(tx, SurveyKind.NPS, periodic, now)

    async def _queue(
        self, tx: Transaction, kind: SurveyKind, asked: Selected, now: datetime
    ) -> int:
        """A push for each survey just created: one message, its buttons about each survey."""
        scores = SCORES[kind]
        per_row = len(scores) if kind is SurveyKind.SATISFACTION else 6
        message = PushMessage(
            f"pushes/{kind.value}",
            {"shop": self._program.shop.name},
            Choice("survey", 0, scores, per_row),  # `about`: each survey's id, set in SQL
        )
        return await OutboxRepository(tx).enqueue_selected(
            asked,
            f"survey:{kind.value}",
            message.template,
            message.payload(),
            now,
            about_at=("choice", "about"),
        )

    async def answer(self, identity: Identity, survey_id: int, score: int) -> Answered | Refused:
        now = self._clock.now()
        async with self._db.transaction() as tx:
            customer = await CustomerRepository(tx).by_identity(identity)
            surveys = SurveyRepository(tx)
            survey = await surveys.by_id(survey_id)
            if customer is None or survey is None or survey.customer_id != customer.id:
                return Refused("survey_unknown")
            if survey.answered_at is not None:
                return Refused("survey_already_answered")
            if survey.expires_at <= now:
                return Refused("survey_expired")
            if score not in SCORES[SurveyKind(survey.kind)]:
                return Refused("survey_unknown")
            await surveys.record_score(survey_id, score, now)
            answered = await surveys.by_id(survey_id)
            assert answered is not None
            # In the same commit: an answer recorded without its flag would be lost to a crash.
            await self._churn.recompute_in(tx, customer.id)
            ask = await act_on_answer(tx, self._program, self._churn.map_lines, customer, answered)
            outcome = Answered(answered, customer, is_detractor(answered.kind, score), ask)
            if outcome.detractor:
                await self._alert_team(tx, outcome, "alerts/detractor")
        return outcome

    async def typed_score(self, identity: Identity, text: str) -> tuple[int, int] | None:
        """A score typed rather than tapped (WhatsApp's NPS has more answers than a list
        holds): (survey id, score) for the newest open survey; None when the text is not a
        score for it."""
        score = whole_number(text)
        if score is None:
            return None
        async with self._db.reading() as tx:
            customer = await CustomerRepository(tx).by_identity(identity)
            if customer is None:
                return None
            survey = await SurveyRepository(tx).latest_open(customer.id, self._clock.now())
        if survey is None or score not in SCORES[SurveyKind(survey.kind)]:
            return None
        return survey.id, score

    async def awaiting_reason(self, identity: Identity) -> bool:
        async with self._db.reading() as tx:
            customer = await CustomerRepository(tx).by_identity(identity)
            if customer is None:
                return False
            since = self._clock.now() - REASON_WINDOW
            return await SurveyRepository(tx).awaiting_reason(customer.id, since) is not None

    async def give_reason(self, identity: Identity, reason: str | None) -> Answered | None:
        """The follow-up "what is the main reason?": text, or None when skipped. Most text
        is not a reason at all (a registration answer, an amount): that costs a read, not a
        commit that would record the update as handled before its real change."""
        if not await self.awaiting_reason(identity):
            return None
        async with self._db.transaction() as tx:
            customer = await CustomerRepository(tx).by_identity(identity)
            if customer is None:
                return None
            surveys = SurveyRepository(tx)
            survey = await surveys.awaiting_reason(customer.id, self._clock.now() - REASON_WINDOW)
            if survey is None or survey.score is None:
                return None
            await surveys.close_reason(survey.id, reason.strip()[:1000] if reason else None)
            closed = await surveys.by_id(survey.id)
            assert closed is not None
            outcome = Answered(closed, customer, is_detractor(closed.kind, survey.score))
            if outcome.detractor and closed.reason:
                # The team heard of the score already: this adds the customer's words.
                await self._alert_team(tx, outcome, "alerts/detractor_comment")
            return outcome

    async def _alert_team(self, tx: Transaction, answered: Answered, template: str) -> None:
        """Close the loop: owners and staff hear about an unhappy customer at once."""
        survey = answered.survey
        for person, language in (await self._staff.team_in(tx)).items():
            await tell_person(
                tx,
                person,
                language,
                f"survey:{survey.id}:{template}:{person.channel}:{person.user_id}",
                template,
                self._clock.now(),
                about=answered.customer,
                customer=customer_facts(answered.customer),
                survey={"kind": survey.kind, "score": survey.score, "reason": survey.reason},
            )


def scheduled(parts: JobParts) -> ScheduledJob:
    """Hourly (within the program's sending hours, which `queue_due` checks)."""
    every_hour = CronTrigger(minute=SURVEY_MINUTE, timezone=parts.zone)
    return ScheduledJob(parts.surveys.queue_due, every_hour, always)
