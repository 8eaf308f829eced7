"""/churn: customers at risk, most valuable first, and the owner's one-tap win-back coupon."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from bot.domain.models import Actor, Refused, Role
from bot.domain.parsing import WHOLE_NUMBER_PATTERN
from handlers.context import (
    Context,
    for_owner,
    for_staff,
    notify,
    refuse,
    reply,
    sender_language,
    services,
)

WINBACK_CALLBACK = rf"^winback:({WHOLE_NUMBER_PATTERN})$"


@for_staff
async def churn(update: Update, context: Context, actor: Actor) -> None:
    svc = services(context)
    language = sender_language(update, context)
    at_risk = await svc.churn.at_risk()
    markup = None
    if actor.role is Role.OWNER and at_risk:
        label = svc.messages.label(language, "send_winback")
        markup = InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton(
                        f"{label} {entry.customer.name}",
                        callback_data=f"winback:{entry.customer.id}",
                    )
                ]
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
    assert query.data is not None
    await query.answer()
    outcome = await services(context).churn.send_winback(actor, int(query.data.split(":")[1]))
    if isinstance(outcome, Refused):
        await refuse(update, context, outcome)
        return
    told = outcome.customer.promotions_consent and await notify(
        context,
        outcome.customer_identity,
        outcome.customer.language,
        "coupons/winback",
        coupon=outcome.coupon,
    )
    await reply(
        update,
        context,
        sender_language(update, context),
        "churn/winback_sent",
        customer=outcome.customer,
        coupon=outcome.coupon,
        told=told,
    )
