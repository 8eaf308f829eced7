"""Domain rules without Telegram: birthdays, tiers, the registration state machine."""

from __future__ import annotations

import json
from datetime import date

import pytest

from bot.channels import Choice
from bot.domain.models import Birthday, Identity, Language, RegistrationStep
from bot.domain.pushes import PushMessage
from bot.domain.registration import (
    AlreadyMember,
    Answer,
    ConsentAnswer,
    ContactAnswer,
    NotRegistering,
    Prompt,
    Registered,
    RegistrationService,
    SkipAnswer,
    TextAnswer,
)
from bot.program import Program
from bot.storage.database import Database
from tests.conftest import FakeClock

ANA = Identity("telegram", "1")


@pytest.mark.parametrize(
    ("birthday", "today", "celebrated"),
    [
        (Birthday(24, 12), date(2026, 12, 24), True),
        (Birthday(24, 12, 1990), date(2026, 12, 23), False),
        (Birthday(29, 2), date(2028, 2, 29), True),
        (Birthday(29, 2), date(2028, 2, 28), False),  # leap year: the real day comes next
        (Birthday(29, 2), date(2027, 2, 28), True),  # no 29th: celebrated on the 28th
        (Birthday(29, 2), date(2027, 3, 1), False),
        (Birthday(28, 2), date(2027, 2, 28), True),
    ],
)
def test_birthday_falls_on(birthday: Birthday, today: date, celebrated: bool) -> None:
    assert birthday.falls_on(today) is celebrated


@pytest.mark.parametrize(
    ("points", "tier"),
    [(0, "bronze"), (29, "bronze"), (30, "silver"), (79, "silver"), (80, "gold"), (10_000, "gold")],
)
def test_tier_for_qualifying_points(program: Program, points: int, tier: str) -> None:
    assert program.tier_for(points).key == tier


def test_next_tier(program: Program) -> None:
    bronze, silver, gold = program.tiers
    assert program.next_tier(bronze) == silver
    assert program.next_tier(gold) is None


async def test_registration_walks_the_steps_in_order(
    database: Database, clock: FakeClock, program: Program
) -> None:
    service = RegistrationService(database, clock, program)
    prompt = await service.start(ANA, Language.EN, "Ana")
    assert isinstance(prompt, Prompt) and prompt.draft.step is RegistrationStep.NAME
    steps = []
    for answer in (TextAnswer("Ana"), ContactAnswer("+34612345678", is_own=True), SkipAnswer()):
        outcome = await service.answer(ANA, answer)
        assert isinstance(outcome, Prompt) and outcome.problem is None
        steps.append(outcome.draft.step)
    assert steps == [RegistrationStep.PHONE, RegistrationStep.BIRTHDAY, RegistrationStep.CONSENT]
    done = await service.answer(ANA, ConsentAnswer(False))
    assert isinstance(done, Registered)
    assert done.customer.name == "Ana" and done.customer.birthday is None
    assert isinstance(await service.answer(ANA, ConsentAnswer(True)), AlreadyMember)
    assert isinstance(await service.start(ANA, Language.EN, "Ana"), AlreadyMember)


async def test_answers_out_of_turn_are_refused_without_moving_on(
    database: Database, clock: FakeClock, program: Program
) -> None:
    service = RegistrationService(database, clock, program)
    await service.start(ANA, Language.ES, None)
    answers: list[Answer] = [SkipAnswer(), ConsentAnswer(True)]
    for answer in answers:
        outcome = await service.answer(ANA, answer)
        assert isinstance(outcome, Prompt)
        assert (outcome.problem, outcome.draft.step) == ("name_expected", RegistrationStep.NAME)


async def test_answers_without_a_registration(
    database: Database, clock: FakeClock, program: Program
) -> None:
    service = RegistrationService(database, clock, program)
    assert isinstance(await service.answer(ANA, TextAnswer("hola")), NotRegistering)
    assert await service.cancel(ANA) is False


async def test_codes_are_unique_and_unambiguous(
    database: Database, clock: FakeClock, program: Program
) -> None:
    service = RegistrationService(database, clock, program)
    codes = set()
    for number in range(50):
        identity = Identity("telegram", str(100 + number))
        await service.start(identity, Language.ES, None)
        await service.answer(identity, TextAnswer(f"Cliente {number}"))
        await service.answer(identity, SkipAnswer())
        await service.answer(identity, SkipAnswer())
        done = await service.answer(identity, ConsentAnswer(True))
        assert isinstance(done, Registered)
        codes.update({done.customer.member_code, done.customer.referral_code})
    assert len(codes) == 100
    assert not any(set(code) & set("01IOL") for code in codes)


def test_a_survey_choice_is_stored_as_a_rule_and_read_back_the_same() -> None:
    """New pushes store the NPS question as a rule; pushes queued by earlier versions stored
    Telegram's button data (a prefix, or every button spelled out): all read back the same."""
    compact = PushMessage("pushes/nps", {"shop": "B"}, Choice("survey", 7, tuple(range(11)), 6))
    prefixed = {
        "context": {"shop": "B"},
        "choice": {"prefix": "survey:7:", "values": list(range(11)), "per_row": 6},
    }
    spelled = {
        "context": {"shop": "B"},
        "buttons": [
            [{"data": f"survey:7:{score}", "text": str(score), "label": None} for score in row]
            for row in (range(0, 6), range(6, 11))
        ],
    }
    stored = PushMessage.from_outbox("pushes/nps", json.loads(json.dumps(compact.payload())))
    assert stored == compact
    assert PushMessage.from_outbox("pushes/nps", prefixed) == compact
    assert PushMessage.from_outbox("pushes/nps", spelled) == compact
    assert [len(row) for row in compact.choice.rows()] == [6, 5]  # type: ignore[union-attr]
    assert len(json.dumps(compact.payload())) < len(json.dumps(spelled)) / 4
