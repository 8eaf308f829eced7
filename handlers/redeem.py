"""Spending points and coupons: the customer gets a one-time code, staff confirm it."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode

from bot.domain.models import Actor, Customer, Redemption, Refused
from bot.domain.parsing import WHOLE_NUMBER_PATTERN
from bot.domain.rewards import RedemptionView
from bot.qr import qr_png
from handlers.cards import deep_link
from handlers.context import (
    Context,
    for_members,
    for_staff,
    notify,
    refuse,
    reply,
    sender_language,
    services,
)

REDEMPTION_PREFIX = "r_"
REWARD_CALLBACK = r"^reward:([a-z0-9_]{1,32})$"
COUPON_CALLBACK = rf"^coupon:({WHOLE_NUMBER_PATTERN})$"
REDEEM_CALLBACK = r"^redeem:([A-Z0-9]{1,16})$"


@for_members
async def on_reward(update: Update, context: Context, customer: Customer) -> None:
    query = update.callback_query
    assert query is not None
    assert query.data is not None
    outcome = await services(context).rewards.request_reward(customer, query.data.split(":")[1])
    await _send_code(update, context, customer, outcome)


@for_members
async def on_coupon(update: Update, context: Context, customer: Customer) -> None:
    query = update.callback_query
    assert query is not None
    assert query.data is not None
    outcome = await services(context).rewards.request_coupon(
        customer, int(query.data.split(":")[1])
    )
    await _send_code(update, context, customer, outcome)


async def _send_code(
    update: Update, context: Context, customer: Customer, outcome: Redemption | Refused
) -> None:
    query = update.callback_query
    assert query is not None
    await query.answer()
    if isinstance(outcome, Refused):
        await refuse(update, context, outcome, customer.language)
        return
    svc = services(context)
    reward = svc.rewards.reward_of(outcome)
    caption = svc.messages.render(
        customer.language,
        "redeem/code",
        code=outcome.code,
        reward=reward,
        expires_at=outcome.expires_at,
        minutes=int((outcome.expires_at - outcome.created_at).total_seconds() // 60),
    )
    await context.bot.send_photo(
        query.from_user.id,
        photo=qr_png(deep_link(context, REDEMPTION_PREFIX + outcome.code)),
        caption=caption,
        parse_mode=ParseMode.HTML,
        filename="redemption.png",
    )


async def review_code(update: Update, context: Context, actor: Actor, code: str) -> None:
    """Staff scanned or typed a redemption code: show what it is for, ask to confirm."""
    view = await services(context).rewards.view(code)
    if isinstance(view, Refused):
        await refuse(update, context, view)
        return
    language = sender_language(update, context)
    label = services(context).messages.label(language, "confirm_redemption")
    keyboard = InlineKeyboardMarkup(
        [[InlineKeyboardButton(label, callback_data=f"redeem:{view.redemption.code}")]]
    )
    await reply(update, context, language, "redeem/review", keyboard, view=view)


@for_staff
async def redeem(update: Update, context: Context, actor: Actor) -> None:
    """/redeem <code>"""
    args = context.args or []
    if len(args) != 1:
        await reply(update, context, sender_language(update, context), "redeem/usage")
        return
    await review_code(update, context, actor, args[0])


@for_staff
async def on_redeem(update: Update, context: Context, actor: Actor) -> None:
    query = update.callback_query
    assert query is not None
    assert query.data is not None
    await query.answer()
    await query.edit_message_reply_markup(reply_markup=None)
    outcome = await services(context).rewards.confirm(actor, query.data.split(":")[1])
    if isinstance(outcome, Refused):
        await refuse(update, context, outcome)
        return
    await reply(update, context, sender_language(update, context), "redeem/done", view=outcome)
    await _tell_customer(context, outcome)


async def _tell_customer(context: Context, view: RedemptionView) -> None:
    await notify(
        context, view.customer_identity, view.customer.language, "redeem/customer_done", view=view
    )
