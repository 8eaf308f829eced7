"""/churn: customers at risk, most valuable first, and the owner's one-tap win-back coupon;
then the follow-ups unhappy answers opened, each closed with one tap."""

from __future__ import annotations

from telegram import InlineKeyboardMarkup, Update

from bot.domain.after_answers import OUTCOMES as FOLLOW_UP_OUTCOMES
from bot.domain.models import Actor, Refused, Role
from bot.taps import FollowUpButton, WinbackButton
from handlers.telegram.buttons import inline
from handlers.telegram.context import (
    Context,
    for_staff,
    refuse,
    reply,
    with_actor,
)


@for_staff
async def churn(update: Update, context: Context, actor: Actor) -> None:
    svc = context.services
    language = context.language
    at_risk = await svc.churn.at_risk()
    markup = None
    if actor.role is Role.OWNER and at_risk:
        label = svc.messages.label(language, "send_winback")
        markup = InlineKeyboardMarkup(
            [
                [inline(f"{label} {entry.customer.name}", WinbackButton(entry.customer.id))]
                for entry in at_risk
            ]
        )
    await reply(
        update,
        context,
        language,
        "churn/list",
        markup,
        entries=at_risk,
        percent=svc.program.churn.winback_percent_off,
    )
    follow_ups = await svc.follow_ups.open_ones()
    if not follow_ups:
        return
    taps = None
    if actor.role is Role.OWNER:
        taps = InlineKeyboardMarkup(
            [
                [
                    inline(
                        svc.messages.label(language, f"follow_up_{outcome}"),
                        FollowUpButton(open_one.follow_up.id, outcome),
                    )
                    for outcome in FOLLOW_UP_OUTCOMES
                ]
                for open_one in follow_ups
            ]
        )
    await reply(update, context, language, "churn/follow_ups", taps, follow_ups=follow_ups)


@with_actor
async def on_winback(update: Update, context: Context, actor: Actor) -> None:
    query = update.callback_query
    assert query is not None
    customer_id = WinbackButton.parse(query.data).customer_id
    await query.answer()
    outcome = await context.services.churn.send_winback(actor, customer_id)
    if isinstance(outcome, Refused):
        await refuse(update, context, outcome)
        return
    await reply(
        update,
        context,
        context.language,
        "churn/winback_sent",
        customer=outcome.customer,
        coupon=outcome.coupon,
        told=outcome.told,
    )


@with_actor
async def on_follow_up(update: Update, context: Context, actor: Actor) -> None:
    query = update.callback_query
    assert query is not None
    button = FollowUpButton.parse(query.data)
    await query.answer()
    outcome = await context.services.follow_ups.close(actor, button.follow_up_id, button.outcome)
    if isinstance(outcome, Refused):
        await refuse(update, context, outcome)
        return
    await reply(
        update, context, context.language, "churn/follow_up_closed", outcome=outcome.outcome
    )
