"""The member card (/card) and the referral link (/invite): Telegram deep links to the bot."""

from __future__ import annotations

from telegram import Update
from telegram.constants import ParseMode

from bot.domain.models import Customer
from bot.qr import qr_png
from handlers.context import Context, for_members, reply, services

CARD_PREFIX = "c_"
REFERRAL_PREFIX = "ref_"


def deep_link(context: Context, payload: str) -> str:
    """A t.me link that opens the bot with /start <payload>."""
    return f"https://t.me/{context.bot.username}?start={payload}"


async def send_member_card(update: Update, context: Context, customer: Customer) -> None:
    chat = update.effective_chat
    assert chat is not None
    caption = services(context).messages.render(
        customer.language, "card", name=customer.name, member_code=customer.member_code
    )
    await context.bot.send_photo(
        chat.id,
        photo=qr_png(deep_link(context, CARD_PREFIX + customer.member_code)),
        caption=caption,
        parse_mode=ParseMode.HTML,
        filename="member-card.png",
    )


@for_members
async def card(update: Update, context: Context, customer: Customer) -> None:
    await send_member_card(update, context, customer)


@for_members
async def invite(update: Update, context: Context, customer: Customer) -> None:
    status = await services(context).membership.referral_link(customer)
    program = services(context).program
    await reply(
        update,
        context,
        customer.language,
        "invite",
        code=status.code,
        link=deep_link(context, REFERRAL_PREFIX + status.code),
        friends_joined=status.friends_joined,
        referrer_points=program.referral.referrer_points,
        referred_points=program.referral.referred_points,
        shop=program.shop.name,
    )
