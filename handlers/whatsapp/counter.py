"""Staff at the counter on WhatsApp: a scanned card (its prefilled text), `venta ...` typed,
the amount, and the confirming tap. The customer's receipt goes through the outbox."""

from __future__ import annotations

from bot.domain.models import Actor, Identity, Language, Refused
from bot.domain.sales import SaleDraft, SaleRecorded
from handlers.whatsapp.channel import Option
from handlers.whatsapp.replies import Replies

SALE_WORDS = frozenset({"venta", "sale", "/sale", "/venta"})
CONFIRM, CANCEL = "sale:ok:", "sale:no:"


class Counter:
    def __init__(self, replies: Replies) -> None:
        self._replies = replies
        self._sales = replies.services.sales

    async def open_card(self, to: Identity, language: Language, actor: Actor, code: str) -> None:
        draft = await self._sales.start_for_card(actor, code)
        if isinstance(draft, Refused):
            await self._replies.refuse(to, language, draft)
            return
        cancel = Option(f"{CANCEL}{draft.pending.id}", self._replies.label(language, "cancel"))
        await self._replies.say(
            to,
            language,
            "counter/ask_amount",
            [cancel],
            customer=draft.customer,
            standing=draft.standing,
            per_item=self._sales.asks_for_items,
            problem=None,
        )

    async def typed_sale(
        self, to: Identity, language: Language, actor: Actor, args: list[str]
    ) -> None:
        if len(args) not in (2, 3):
            await self._replies.say(
                to, language, "counter/sale_usage", per_item=self._sales.asks_for_items
            )
            return
        outcome = await self._sales.prepare(
            actor, args[0], args[1], args[2] if len(args) == 3 else None
        )
        await self._ask_confirmation(to, language, outcome)

    async def amount(self, to: Identity, language: Language, actor: Actor, text: str) -> bool:
        """The amount for a scanned card; False when none is awaited from this person."""
        if not await self._sales.awaiting_amount(actor):
            return False
        outcome = await self._sales.enter_amount(actor, text)
        if isinstance(outcome, Refused):
            problem = self._replies.services.messages.render(
                language, f"problems/{outcome.problem}"
            )
            await self._replies.say(
                to,
                language,
                "counter/amount_refused",
                problem=problem,
                per_item=self._sales.asks_for_items,
            )
            return True
        await self._ask_confirmation(to, language, outcome)
        return True

    async def tapped(self, to: Identity, language: Language, actor: Actor, choice: str) -> None:
        pending_id = int(choice.rsplit(":", 1)[1])
        if choice.startswith(CANCEL):
            cancelled = await self._sales.cancel(actor, pending_id)
            template = "counter/sale_cancelled" if cancelled else "problems/sale_expired"
            await self._replies.say(to, language, template)
            return
        outcome = await self._sales.confirm(actor, pending_id)
        if isinstance(outcome, Refused):
            await self._replies.refuse(to, language, outcome)
        elif isinstance(outcome, SaleRecorded) and not outcome.first_time:
            await self._replies.say(
                to, language, "counter/sale_already_recorded", sale=outcome.sale
            )
        else:
            await self._replies.say(
                to,
                language,
                "counter/sale_recorded",
                sale=outcome.sale,
                customer=outcome.customer,
                standing=outcome.standing,
            )

    async def _ask_confirmation(
        self, to: Identity, language: Language, outcome: SaleDraft | Refused
    ) -> None:
        if isinstance(outcome, Refused):
            await self._replies.refuse(to, language, outcome)
            return
        pending = outcome.pending.id
        options = [
            Option(f"{CONFIRM}{pending}", self._replies.label(language, "confirm_sale")),
            Option(f"{CANCEL}{pending}", self._replies.label(language, "cancel")),
        ]
        await self._replies.say(
            to,
            language,
            "counter/confirm_sale",
            options,
            customer=outcome.customer,
            standing=outcome.standing,
            amount=outcome.pending.amount_minor,
            items=outcome.pending.items,
            points=outcome.points,
        )
