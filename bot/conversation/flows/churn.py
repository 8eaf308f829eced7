"""/churn: customers at risk, most valuable first, and the owner's one-tap win-back coupon;
then the follow-ups that unhappy answers opened, each closed with one tap."""

from __future__ import annotations

from collections.abc import AsyncIterator

from bot.conversation.replies import Option, Reply, rows
from bot.conversation.router import Router
from bot.conversation.turn import Turn
from bot.domain.after_answers import OUTCOMES
from bot.domain.models import Refused
from bot.domain.permissions import MAY, Action
from bot.taps import FollowUpButton, WinbackButton

router = Router()


@router.command("churn", needs=Action.LOOKUP)
async def at_risk(turn: Turn) -> AsyncIterator[Reply]:
    services, most = turn.services, turn.said.surface.most_options
    entries = await services.churn.at_risk()
    winbacks: list[Option] = []
    if turn.actor.role in MAY[Action.WINBACK]:  # the most valuable first, as many as fit
        label = turn.label("send_winback")
        winbacks = [
            Option(f"{label} {entry.customer.name}", WinbackButton(entry.customer.id))
            for entry in entries[:most]
        ]
    yield Reply(
        "churn/list",
        turn.language,
        {"entries": entries, "percent": services.program.churn.winback_percent_off},
        options=rows(winbacks),
    )
    follow_ups = await services.follow_ups.open_ones()
    if not follow_ups:
        return
    taps: tuple[tuple[Option, ...], ...] = ()
    if turn.actor.role in MAY[Action.FOLLOW_UP]:  # a row of outcomes for each, as many as fit
        taps = tuple(
            tuple(
                Option(
                    f"{turn.label(f'follow_up_{outcome}')} {open_one.customer.name}",
                    FollowUpButton(open_one.follow_up.id, outcome),
                )
                for outcome in OUTCOMES
            )
            for open_one in follow_ups[: most // len(OUTCOMES)]
        )
    yield Reply(
        "churn/follow_ups",
        turn.language,
        {"follow_ups": follow_ups},
        options=taps,
    )


@router.tap(WinbackButton, needs=Action.WINBACK)
async def winback(turn: Turn) -> AsyncIterator[Reply]:
    assert isinstance(turn.tap, WinbackButton)
    outcome = await turn.services.churn.send_winback(turn.actor, turn.tap.customer_id)
    if isinstance(outcome, Refused):
        yield turn.refused(outcome)
        return
    yield turn.reply(
        "churn/winback_sent", customer=outcome.customer, coupon=outcome.coupon, told=outcome.told
    )


@router.tap(FollowUpButton, needs=Action.FOLLOW_UP)
async def follow_up(turn: Turn) -> AsyncIterator[Reply]:
    assert isinstance(turn.tap, FollowUpButton)
    closed = await turn.services.follow_ups.close(
        turn.actor, turn.tap.follow_up_id, turn.tap.outcome
    )
    if isinstance(closed, Refused):
        yield turn.refused(closed)
        return
    yield turn.reply("churn/follow_up_closed", outcome=closed.outcome)
