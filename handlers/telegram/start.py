"""Where /start and plain messages go: deep links carry a payload that says who they are for.

`ref_` links are for newcomers, `staff_` links for invited staff, and `c_` (member card) and
`r_` (redemption code) links for staff at the counter. A customer who opens someone else's card
or code learns nothing from it: they get their own welcome or menu.
"""

from __future__ import annotations

from telegram import Update

from handlers.telegram import campaigns, registration, surveys
from handlers.telegram.cards import CARD_PREFIX, REFERRAL_PREFIX
from handlers.telegram.context import Context, identity_of
from handlers.telegram.counter import amount_awaited, on_amount, open_sale_from_card
from handlers.telegram.redeem import REDEMPTION_PREFIX, review_code
from handlers.telegram.staff_admin import STAFF_PREFIX, join_staff


async def start(update: Update, context: Context) -> None:
    user = update.effective_user
    if user is None:
        return
    payload = context.args[0] if context.args else ""
    if payload.startswith(STAFF_PREFIX):
        await join_staff(update, context, payload.removeprefix(STAFF_PREFIX))
        return
    if payload.startswith((CARD_PREFIX, REDEMPTION_PREFIX)):
        actor = await context.services.staff.actor(identity_of(user), context.language)
        if actor.is_staff:
            if payload.startswith(CARD_PREFIX):
                await open_sale_from_card(update, context, actor, payload.removeprefix(CARD_PREFIX))
            else:
                await review_code(update, context, actor, payload.removeprefix(REDEMPTION_PREFIX))
            return
    referral_code = (
        payload.removeprefix(REFERRAL_PREFIX) if payload.startswith(REFERRAL_PREFIX) else None
    )
    await registration.begin(update, context, referral_code)


async def on_message(update: Update, context: Context) -> None:
    """Text or a shared contact: an amount for a scanned card, else a registration answer."""
    message = update.effective_message
    if message is not None and message.text is not None:
        actor = await amount_awaited(update, context)
        if actor is not None:
            await on_amount(update, context, actor, message.text)
            return
        if await surveys.on_reason(update, context, message.text):
            return
        if await campaigns.on_text(update, context, message.text):
            return
    await registration.on_message(update, context)
