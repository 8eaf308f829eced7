"""Staff at the counter: a scanned card or /sale, the confirming tap, /void and /customer."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from bot.domain.models import Actor, Refused
from bot.domain.parsing import WHOLE_NUMBER_PATTERN, whole_number
from bot.domain.sales import SaleDraft, SaleRecorded
from handlers.context import (
    Context,
    for_staff,
    identity_of,
    notify,
    refuse,
    replace_prompt,
    reply,
    sender_language,
    services,
)

SALE_CALLBACK = rf"^sale:(ok|no):({WHOLE_NUMBER_PATTERN})$"


async def open_sale_from_card(
    update: Update, context: Context, actor: Actor, member_code: str
) -> None:
    """Staff scanned a member card: show who it is and ask for the amount."""
    draft = await services(context).sales.start_for_card(actor, member_code)
    if isinstance(draft, Refused):
        await refuse(update, context, draft)
        return
    await _ask_amount(update, context, draft)


async def _ask_amount(
    update: Update, context: Context, draft: SaleDraft, problem: str | None = None
) -> None:
    language = sender_language(update, context)
    messages = services(context).messages
    cancel = InlineKeyboardButton(
        messages.label(language, "cancel"), callback_data=f"sale:no:{draft.pending.id}"
    )
    await reply(
        update,
        context,
        language,
        "counter/ask_amount",
        InlineKeyboardMarkup([[cancel]]),
        customer=draft.customer,
        standing=draft.standing,
        per_item=services(context).sales.asks_for_items,
        problem=messages.render(language, f"problems/{problem}") if problem else None,
    )


async def on_amount(update: Update, context: Context, actor: Actor, text: str) -> None:
    outcome = await services(context).sales.enter_amount(actor, text)
    if isinstance(outcome, Refused):
        await reply(
            update,
            context,
            sender_language(update, context),
            "counter/amount_refused",
            problem=services(context).messages.render(
                sender_language(update, context), f"problems/{outcome.problem}"
            ),
            per_item=services(context).sales.asks_for_items,
        )
        return
    await _ask_confirmation(update, context, outcome)


async def _ask_confirmation(update: Update, context: Context, draft: SaleDraft) -> None:
    language = sender_language(update, context)
    messages = services(context).messages
    keyboard = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    messages.label(language, "confirm_sale"),
                    callback_data=f"sale:ok:{draft.pending.id}",
                ),
                InlineKeyboardButton(
                    messages.label(language, "cancel"), callback_data=f"sale:no:{draft.pending.id}"
                ),
            ]
        ]
    )
    await reply(
        update,
        context,
        language,
        "counter/confirm_sale",
        keyboard,
        customer=draft.customer,
        standing=draft.standing,
        amount=draft.pending.amount_minor,
        items=draft.pending.items,
        points=draft.points,
    )


@for_staff
async def sale(update: Update, context: Context, actor: Actor) -> None:
    """/sale <member code or phone> <amount> [items]"""
    args = context.args or []
    if len(args) not in (2, 3):
        await reply(
            update,
            context,
            sender_language(update, context),
            "counter/sale_usage",
            per_item=services(context).sales.asks_for_items,
        )
        return
    outcome = await services(context).sales.prepare(
        actor, args[0], args[1], args[2] if len(args) == 3 else None
    )
    if isinstance(outcome, Refused):
        await refuse(update, context, outcome)
        return
    await _ask_confirmation(update, context, outcome)


@for_staff
async def on_sale_button(update: Update, context: Context, actor: Actor) -> None:
    """The prompt itself becomes the outcome: one line per sale in a busy chat, and its buttons
    stay until then, so a tap that failed (a full disk) can simply be repeated."""
    query = update.callback_query
    assert query is not None
    assert query.data is not None
    _, action, pending_id = query.data.split(":")
    await query.answer()
    sales = services(context).sales
    language = sender_language(update, context)
    if action == "no":
        cancelled = await sales.cancel(actor, int(pending_id))
        template = "counter/sale_cancelled" if cancelled else "problems/sale_expired"
        await replace_prompt(update, context, language, template)
        return
    outcome = await sales.confirm(actor, int(pending_id))
    if isinstance(outcome, Refused):
        await replace_prompt(update, context, language, f"problems/{outcome.problem}")
        return
    await _announce_sale(update, context, outcome)


async def _announce_sale(update: Update, context: Context, recorded: SaleRecorded) -> None:
    language = sender_language(update, context)
    if not recorded.first_time:
        # A second tap, or a redelivery: the first one's receipt stays as it is.
        await reply(update, context, language, "counter/sale_already_recorded", sale=recorded.sale)
        return
    await replace_prompt(
        update,
        context,
        language,
        "counter/sale_recorded",
        sale=recorded.sale,
        customer=recorded.customer,
        standing=recorded.standing,
    )
    customer = recorded.customer
    referral = recorded.referral
    await notify(
        context,
        recorded.customer_identity,
        customer.language,
        "points/earned",
        sale=recorded.sale,
        standing=recorded.standing,
        welcome_bonus=referral.referred_points if referral else 0,
    )
    if recorded.tier_up is not None:
        await notify(
            context,
            recorded.customer_identity,
            customer.language,
            "points/tier_up",
            tier=recorded.tier_up,
        )
    if referral is not None and referral.referrer_points > 0:
        await notify(
            context,
            referral.referrer_identity,
            referral.referrer.language,
            "points/referral_bonus",
            friend=customer.name,
            points=referral.referrer_points,
        )


@for_staff
async def void(update: Update, context: Context, actor: Actor) -> None:
    """/void <sale id> <reason>"""
    args = context.args or []
    sale_id = whole_number(args[0].removeprefix("#")) if args else None
    if sale_id is None:
        await reply(update, context, sender_language(update, context), "counter/void_usage")
        return
    outcome = await services(context).sales.void(actor, sale_id, " ".join(args[1:]))
    if isinstance(outcome, Refused):
        await refuse(update, context, outcome)
        return
    await reply(
        update,
        context,
        sender_language(update, context),
        "counter/voided",
        sale=outcome.sale,
        customer=outcome.customer,
        balance=outcome.balance,
    )
    await notify(
        context,
        outcome.customer_identity,
        outcome.customer.language,
        "points/sale_voided",
        sale=outcome.sale,
        balance=outcome.balance,
    )


@for_staff
async def customer(update: Update, context: Context, actor: Actor) -> None:
    """/customer <member code, phone or name>"""
    query = " ".join(context.args or [])
    language = sender_language(update, context)
    if not query.strip():
        await reply(update, context, language, "counter/customer_usage")
        return
    lookup = services(context).lookup
    found = await lookup.find(query)
    if not found:
        await refuse(update, context, Refused("customer_unknown"))
    elif len(found) > 1:
        await reply(update, context, language, "counter/customer_matches", customers=found)
    else:
        churn = services(context).churn
        await reply(
            update,
            context,
            language,
            "counter/customer_profile",
            profile=await lookup.profile(found[0]),
            flags=await churn.flags_of(found[0]),
            quadrant=await churn.quadrant_of(found[0]),
        )


async def amount_awaited(update: Update, context: Context) -> Actor | None:
    """The staff member, when their last scanned card is waiting for an amount."""
    user = update.effective_user
    if user is None:
        return None
    actor = await services(context).staff.actor(identity_of(user))
    if not actor.is_staff or not await services(context).sales.awaiting_amount(actor):
        return None
    return actor
