"""The member card (/card) and the referral link (/invite): Telegram deep links to the bot."""

from __future__ import annotations

from telegram import Update
from telegram.error import BadRequest

from bot.domain.models import Customer
from bot.qr import qr_png
from handlers.telegram.channel import start_link
from handlers.telegram.context import Context, for_members, reply

CARD_PREFIX = "c_"
CARD_PHOTOS_KEY = "card_photos"  # member code -> Telegram's id of the card photo
CARD_PHOTOS_KEPT = 100_000
REFERRAL_PREFIX = "ref_"


def deep_link(context: Context, payload: str) -> str:
    """A t.me link that opens the bot with /start <payload>."""
    return start_link(context.bot, payload)


async def send_member_card(update: Update, context: Context, customer: Customer) -> None:
    """The card's QR never changes, so after its first upload Telegram's id for the photo is
    sent instead of the image: no QR drawn, no upload, when a customer asks again."""
    chat = update.effective_chat
    assert chat is not None
    caption = context.services.messages.render(
        customer.language, "card", name=customer.name, member_code=customer.member_code
    )
    uploaded: dict[str, str] = context.bot_data.setdefault(CARD_PHOTOS_KEY, {})
    known = uploaded.get(customer.member_code)
    if known is not None:
        try:
            await context.bot.send_photo(chat.id, photo=known, caption=caption)
            return
        except BadRequest:  # Telegram no longer knows that photo: upload it again
            del uploaded[customer.member_code]
    sent = await context.bot.send_photo(
        chat.id,
        photo=qr_png(deep_link(context, CARD_PREFIX + customer.member_code)),
        caption=caption,
        filename="member-card.png",
    )
    if sent.photo and len(uploaded) < CARD_PHOTOS_KEPT:
        uploaded[customer.member_code] = sent.photo[-1].file_id


@for_members
async def card(update: Update, context: Context, customer: Customer) -> None:
    await send_member_card(update, context, customer)


@for_members
async def invite(update: Update, context: Context, customer: Customer) -> None:
    status = await context.services.membership.referral_link(customer)
    program = context.services.program
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
