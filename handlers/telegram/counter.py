"""Staff at the counter: a scanned card or /sale, the confirming tap, /void and /customer."""

from __future__ import annotations

from telegram import InlineKeyboardMarkup, Update

from bot.domain.models import Actor, Refused
from bot.domain.parsing import whole_number
from bot.domain.sales import SaleDraft, SaleRecorded
from bot.taps import SaleButton
from handlers.telegram.buttons import inline
from handlers.telegram.context import (
    Context,
    for_staff,
    identity_of,
    refuse,
    replace_prompt,
    reply,
    with_actor,
)


async def open_sale_from_card(
    update: Update, context: Context, actor: Actor, member_code: str
) -> None:
    """Staff scanned a member card: show who it is and ask for the amount."""
    draft = await context.services.sales.start_for_card(actor, member_code)
    if isinstance(draft, Refused):
        await refuse(update, context, draft)
        return
    await _ask_amount(update, context, draft)


async def _ask_amount(
    update: Update, context: Context, draft: SaleDraft, problem: str | None = None
) -> None:
    language = context.language
    messages = context.services.messages
    cancel = inline(messages.label(language, "cancel"), SaleButton("no", draft.pending.id))
    await reply(
        update,
        context,
        language,
        "counter/ask_amount",
        InlineKeyboardMarkup([[cancel]]),
        customer=draft.customer,
        standing=draft.standing,
        per_item=context.services.sales.asks_for_items,
        problem=messages.render(language, f"problems/{problem}") if problem else None,
    )


async def on_amount(update: Update, context: Context, actor: Actor, text: str) -> None:
    outcome = await context.services.sales.enter_amount(actor, text)
    if isinstance(outcome, Refused):
        await reply(
            update,
            context,
            context.language,
            "counter/amount_refused",
            problem=context.services.messages.render(
                context.language, f"problems/{outcome.problem}"
            ),
            per_item=context.services.sales.asks_for_items,
        )
        return
    await _ask_confirmation(update, context, outcome)


async def _ask_confirmation(update: Update, context: Context, draft: SaleDraft) -> None:
    language = context.language
    messages = context.services.messages
    keyboard = InlineKeyboardMarkup(
        [
            [
                inline(
                    messages.label(language, "confirm_sale"), SaleButton("ok", draft.pending.id)
                ),
                inline(messages.label(language, "cancel"), SaleButton("no", draft.pending.id)),
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
            context.language,
            "counter/sale_usage",
            per_item=context.services.sales.asks_for_items,
        )
        return
    outcome = await context.services.sales.prepare(
        actor, args[0], args[1], args[2] if len(args) == 3 else None
    )
    if isinstance(outcome, Refused):
        await refuse(update, context, outcome)
        return
    await _ask_confirmation(update, context, outcome)


@with_actor
async def on_sale_button(update: Update, context: Context, actor: Actor) -> None:
    """The prompt itself becomes the outcome: one line per sale in a busy chat, and its buttons
    stay until then, so a tap that failed (a full disk) can simply be repeated."""
    query = update.callback_query
    assert query is not None
    button = SaleButton.parse(query.data)
    await query.answer()
    sales = context.services.sales
    language = context.language
    if button.action == "no":
        cancelled = await sales.cancel(actor, button.pending_id)
        template = "counter/sale_cancelled" if cancelled else "problems/sale_expired"
        await replace_prompt(update, context, language, template)
        return
    outcome = await sales.confirm(actor, button.pending_id)
    if isinstance(outcome, Refused):
        await replace_prompt(update, context, language, f"problems/{outcome.problem}")
        return
    await _announce_sale(update, context, outcome)


async def _announce_sale(update: Update, context: Context, recorded: SaleRecorded) -> None:
    language = context.language
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


@for_staff
async def void(update: Update, context: Context, actor: Actor) -> None:
    """/void <sale id> <reason>"""
    args = context.args or []
    sale_id = whole_number(args[0].removeprefix("#")) if args else None
    if sale_id is None:
        await reply(update, context, context.language, "counter/void_usage")
        return
    outcome = await context.services.sales.void(actor, sale_id, " ".join(args[1:]))
    if isinstance(outcome, Refused):
        await refuse(update, context, outcome)
        return
    await reply(
        update,
        context,
        context.language,
        "counter/voided",
        sale=outcome.sale,
        customer=outcome.customer,
        balance=outcome.balance,
    )


@for_staff
async def customer(update: Update, context: Context, actor: Actor) -> None:
    """/customer <member code, phone or name>"""
    query = " ".join(context.args or [])
    language = context.language
    if not query.strip():
        await reply(update, context, language, "counter/customer_usage")
        return
    lookup = context.services.lookup
    found = await lookup.find(query)
    if not found:
        await refuse(update, context, Refused("customer_unknown"))
    elif len(found) > 1:
        await reply(update, context, language, "counter/customer_matches", customers=found)
    else:
        churn = context.services.churn
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
    actor = await context.services.staff.actor(identity_of(user))
    if not actor.is_staff or not await context.services.sales.awaiting_amount(actor):
        return None
    return actor
