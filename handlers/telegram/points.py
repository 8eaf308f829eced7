"""/balance and /rewards: where the member stands and what their points and coupons buy."""

from __future__ import annotations

from telegram import InlineKeyboardMarkup, Update

from bot.domain.models import Customer
from bot.taps import CouponButton, RewardButton
from handlers.telegram.buttons import inline
from handlers.telegram.context import Context, for_members, reply


@for_members
async def balance(update: Update, context: Context, customer: Customer) -> None:
    standing = await context.services.membership.standing(customer)
    await reply(
        update, context, customer.language, "balance", standing=standing, name=customer.name
    )


@for_members
async def rewards(update: Update, context: Context, customer: Customer) -> None:
    """The catalogue and open coupons, with a button for each one the member can use now."""
    svc = context.services
    standing = await svc.membership.standing(customer)
    coupons = await svc.rewards.open_coupons(customer)
    language = customer.language
    rows = [
        [
            inline(
                svc.messages.plain(language, "rewards_button", reward=option.reward),
                RewardButton(option.reward.key),
            )
        ]
        for option in standing.affordable
    ]
    rows += [
        [
            inline(
                svc.messages.plain(language, "coupons/button", coupon=coupon),
                CouponButton(coupon.id),
            )
        ]
        for coupon in coupons
    ]
    await reply(
        update,
        context,
        language,
        "rewards",
        InlineKeyboardMarkup(rows) if rows else None,
        standing=standing,
        coupons=coupons,
    )
