"""Spending points and coupons: the customer gets a one-time code, staff confirm it."""

from __future__ import annotations

from telegram import InlineKeyboardMarkup, Update

from bot.domain.models import Actor, Customer, Redemption, Refused
from bot.qr import qr_png
from bot.taps import CouponButton, RedeemButton, RewardButton
from handlers.telegram.buttons import inline
from handlers.telegram.cards import deep_link
from handlers.telegram.context import (
    Context,
    for_members,
    for_staff,
    refuse,
    reply,
    with_actor,
)

REDEMPTION_PREFIX = "r_"


@for_members
async def on_reward(update: Update, context: Context, customer: Customer) -> None:
    query = update.callback_query
    assert query is not None
    key = RewardButton.parse(query.data).key
    outcome = await context.services.rewards.request_reward(customer, key)
    await _send_code(update, context, customer, outcome)


@for_members
async def on_coupon(update: Update, context: Context, customer: Customer) -> None:
    query = update.callback_query
    assert query is not None
    coupon_id = CouponButton.parse(query.data).coupon_id
    outcome = await context.services.rewards.request_coupon(customer, coupon_id)
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
    svc = context.services
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
        filename="redemption.png",
    )


async def review_code(update: Update, context: Context, actor: Actor, code: str) -> None:
    """Staff scanned or typed a redemption code: show what it is for, ask to confirm."""
    view = await context.services.rewards.view(code)
    if isinstance(view, Refused):
        await refuse(update, context, view)
        return
    language = context.language
    label = context.services.messages.label(language, "confirm_redemption")
    keyboard = InlineKeyboardMarkup([[inline(label, RedeemButton(view.redemption.code))]])
    await reply(update, context, language, "redeem/review", keyboard, view=view)


@for_staff
async def redeem(update: Update, context: Context, actor: Actor) -> None:
    """/redeem <code>"""
    args = context.args or []
    if len(args) != 1:
        await reply(update, context, context.language, "redeem/usage")
        return
    await review_code(update, context, actor, args[0])


@with_actor
async def on_redeem(update: Update, context: Context, actor: Actor) -> None:
    query = update.callback_query
    assert query is not None
    code = RedeemButton.parse(query.data).code
    await query.answer()
    await query.edit_message_reply_markup(reply_markup=None)
    outcome = await context.services.rewards.confirm(actor, code)
    if isinstance(outcome, Refused):
        await refuse(update, context, outcome)
        return
    await reply(update, context, context.language, "redeem/done", view=outcome)
