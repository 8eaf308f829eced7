"""Staff at the counter: a scanned card (or /sale typed), the amount, the confirming tap;
a redemption code scanned or typed, and its confirming tap; /void and /customer. The
customer's receipt goes through the outbox, in the sale's own transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator

from bot.conversation.flows.joining import CARD_LINK
from bot.conversation.flows.membership import REDEMPTION_LINK
from bot.conversation.replies import Reply, one_row
from bot.conversation.router import Router
from bot.conversation.turn import Turn
from bot.domain.models import Refused
from bot.domain.parsing import whole_number
from bot.domain.permissions import Action
from bot.domain.sales import SaleDraft
from bot.taps import RedeemButton, SaleButton

router = Router()


@router.link(rf"{CARD_LINK}([A-Za-z0-9]{{4,16}})", Action.SELL, team_only=True)
async def card_scanned(turn: Turn) -> AsyncIterator[Reply]:
    """Show who it is and ask for the amount."""
    draft = await turn.services.sales.start_for_card(turn.actor, turn.found)
    if isinstance(draft, Refused):
        yield turn.refused(draft)
        return
    cancel = turn.option("cancel", SaleButton("no", draft.pending.id))
    yield Reply(
        "counter/ask_amount",
        turn.language,
        {
            "customer": draft.customer,
            "standing": draft.standing,
            "per_item": turn.services.sales.asks_for_items,
            "problem": None,
        },
        options=one_row(cancel),
    )


@router.command("sale", needs=Action.SELL)
async def typed_sale(turn: Turn) -> AsyncIterator[Reply]:
    """/sale <member code or phone> <amount> [items]"""
    sales, args = turn.services.sales, turn.args
    if len(args) not in (2, 3):
        yield turn.reply("counter/sale_usage", per_item=sales.asks_for_items)
        return
    outcome = await sales.prepare(turn.actor, args[0], args[1], args[2] if len(args) == 3 else None)
    yield _confirmation(turn, outcome)


async def _amount_awaited(turn: Turn) -> bool:
    return turn.actor.is_staff and await turn.services.sales.awaiting_amount(turn.actor)


@router.state(_amount_awaited, needs=Action.SELL)
async def amount(turn: Turn) -> AsyncIterator[Reply]:
    sales = turn.services.sales
    outcome = await sales.enter_amount(turn.actor, turn.said.text)
    if isinstance(outcome, Refused):
        yield turn.reply(
            "counter/amount_refused",
            problem=turn.problem(outcome),
            per_item=sales.asks_for_items,
        )
        return
    yield _confirmation(turn, outcome)


def _confirmation(turn: Turn, outcome: SaleDraft | Refused) -> Reply:
    if isinstance(outcome, Refused):
        return turn.refused(outcome)
    pending = outcome.pending.id
    return Reply(
        "counter/confirm_sale",
        turn.language,
        {
            "customer": outcome.customer,
            "standing": outcome.standing,
            "amount": outcome.pending.amount_minor,
            "items": outcome.pending.items,
            "points": outcome.points,
        },
        options=one_row(
            turn.option("confirm_sale", SaleButton("ok", pending)),
            turn.option("cancel", SaleButton("no", pending)),
        ),
    )


@router.tap(SaleButton, needs=Action.SELL)
async def sale_tapped(turn: Turn) -> AsyncIterator[Reply]:
    """The prompt itself becomes the outcome, where the app can: one line per sale in a busy
    chat, and its options stay until then, so a tap that failed can simply be repeated."""
    assert isinstance(turn.tap, SaleButton)
    sales, pending = turn.services.sales, turn.tap.pending_id
    if turn.tap.action == "no":
        cancelled = await sales.cancel(turn.actor, pending)
        template = "counter/sale_cancelled" if cancelled else "problems/sale_expired"
        yield Reply(template, turn.language, replaces_prompt=True)
        return
    outcome = await sales.confirm(turn.actor, pending)
    if isinstance(outcome, Refused):
        yield Reply(f"problems/{outcome.problem}", turn.language, replaces_prompt=True)
    elif not outcome.first_time:
        # A second tap, or a redelivery: the first one's receipt stays as it is.
        yield turn.reply("counter/sale_already_recorded", sale=outcome.sale)
    else:
        yield Reply(
            "counter/sale_recorded",
            turn.language,
            {"sale": outcome.sale, "customer": outcome.customer, "standing": outcome.standing},
            replaces_prompt=True,
        )


@router.link(rf"{REDEMPTION_LINK}([A-Za-z0-9]{{4,16}})", Action.REDEEM, team_only=True)
async def code_scanned(turn: Turn) -> AsyncIterator[Reply]:
    yield await _review(turn, turn.found)


@router.command("redeem", needs=Action.REDEEM)
async def typed_code(turn: Turn) -> AsyncIterator[Reply]:
    """/redeem <code>"""
    if len(turn.args) != 1:
        yield turn.reply("redeem/usage")
        return
    yield await _review(turn, turn.args[0])


async def _review(turn: Turn, code: str) -> Reply:
    """What a redemption code is for, and a tap to confirm it."""
    view = await turn.services.rewards.view(code)
    if isinstance(view, Refused):
        return turn.refused(view)
    confirm = turn.option("confirm_redemption", RedeemButton(view.redemption.code))
    return Reply("redeem/review", turn.language, {"view": view}, options=one_row(confirm))


@router.tap(RedeemButton, needs=Action.REDEEM)
async def redeem_tapped(turn: Turn) -> AsyncIterator[Reply]:
    assert isinstance(turn.tap, RedeemButton)
    outcome = await turn.services.rewards.confirm(turn.actor, turn.tap.code)
    if isinstance(outcome, Refused):
        yield Reply(f"problems/{outcome.problem}", turn.language, closes_prompt=True)
        return
    yield Reply("redeem/done", turn.language, {"view": outcome}, closes_prompt=True)


@router.command("void", needs=Action.VOID)
async def void(turn: Turn) -> AsyncIterator[Reply]:
    """/void <sale id> <reason>"""
    args = turn.args
    sale_id = whole_number(args[0].removeprefix("#")) if args else None
    if sale_id is None:
        yield turn.reply("counter/void_usage")
        return
    outcome = await turn.services.sales.void(turn.actor, sale_id, " ".join(args[1:]))
    if isinstance(outcome, Refused):
        yield turn.refused(outcome)
        return
    yield turn.reply(
        "counter/voided", sale=outcome.sale, customer=outcome.customer, balance=outcome.balance
    )


@router.command("customer", needs=Action.LOOKUP)
async def customer(turn: Turn) -> AsyncIterator[Reply]:
    """/customer <member code, phone or name>"""
    query = " ".join(turn.args)
    if not query.strip():
        yield turn.reply("counter/customer_usage")
        return
    lookup, churn = turn.services.lookup, turn.services.churn
    found = await lookup.find(query)
    if not found:
        yield turn.refused(Refused("customer_unknown"))
    elif len(found) > 1:
        yield turn.reply("counter/customer_matches", customers=found)
    else:
        yield turn.reply(
            "counter/customer_profile",
            profile=await lookup.profile(found[0]),
            flags=await churn.flags_of(found[0]),
            quadrant=await churn.quadrant_of(found[0]),
        )
