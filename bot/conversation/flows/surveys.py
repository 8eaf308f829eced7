"""Survey answers: a score (tapped, or typed where the scale has more answers than an app's
list holds), then an optional reason; unhappy answers reach the team (bot/domain/surveys.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from bot.conversation.replies import Reply, one_row
from bot.conversation.router import MEMBER, Router
from bot.conversation.turn import Turn
from bot.domain.models import Refused
from bot.domain.surveys import Answered
from bot.taps import SurveyButton

router = Router()


@router.tap(SurveyButton, needs=MEMBER)
async def tapped(turn: Turn) -> AsyncIterator[Reply]:
    assert isinstance(turn.tap, SurveyButton) and turn.member is not None
    surveys, language = turn.services.surveys, turn.member.language
    if turn.tap.answer == SurveyButton.SKIP:
        skipped = await surveys.give_reason(turn.said.person, None)
        if skipped is not None:
            yield Reply("surveys/thanks", language, {"gave_reason": False}, closes_prompt=True)
        return
    outcome = await surveys.answer(turn.said.person, turn.tap.survey_id, int(turn.tap.answer))
    async for reply in _after_score(turn, outcome, tapped=True):
        yield reply


async def _score_typed(turn: Turn) -> bool:
    if turn.member is None:
        return False
    return await turn.services.surveys.typed_score(turn.said.person, turn.said.text) is not None


@router.state(_score_typed, needs=MEMBER)
async def typed(turn: Turn) -> AsyncIterator[Reply]:
    surveys = turn.services.surveys
    found = await surveys.typed_score(turn.said.person, turn.said.text)
    if found is None:  # answered meanwhile, from another of their apps
        return
    outcome = await surveys.answer(turn.said.person, *found)
    async for reply in _after_score(turn, outcome):
        yield reply


async def _after_score(
    turn: Turn, outcome: Answered | Refused, *, tapped: bool = False
) -> AsyncIterator[Reply]:
    assert turn.member is not None
    language = turn.member.language
    if isinstance(outcome, Refused):
        # An old or answered survey: a polite word, and its options go away.
        yield Reply(f"problems/{outcome.problem}", language, as_notice=True, closes_prompt=True)
        return
    skip = turn.option("skip", SurveyButton(outcome.survey.id, SurveyButton.SKIP), language)
    yield Reply(
        "surveys/ask_reason",
        language,
        {
            "score": outcome.survey.score,
            "detractor": outcome.detractor,
            "ask_what_would_help": outcome.ask_what_would_help,
        },
        options=one_row(skip),
        closes_prompt=tapped,
    )


async def _reason_awaited(turn: Turn) -> bool:
    return turn.member is not None and await turn.services.surveys.awaiting_reason(turn.said.person)


@router.state(_reason_awaited, needs=MEMBER)
async def reason(turn: Turn) -> AsyncIterator[Reply]:
    answered = await turn.services.surveys.give_reason(turn.said.person, turn.said.text)
    if answered is not None:
        yield Reply("surveys/thanks", answered.customer.language, {"gave_reason": True})
