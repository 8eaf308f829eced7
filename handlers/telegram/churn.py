"""/churn: customers at risk, most valuable first, and the owner's one-tap win-back coupon."""

from __future__ import annotations

from telegram import InlineKeyboardMarkup, Update

from bot.domain.models import Actor, Refused, Role
from handlers.telegram.buttons import WinbackButton, inline
from handlers.telegram.context import (
    Context,
    for_owner,
    for_staff,
    refuse,
    reply,
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


@for_owner
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
