"""Recording sales at the counter: points by the program's rules, exactly once, and voids.

A sale is typed (by scanning a card, or with /sale) into a pending sale, and a confirming tap
turns it into a sale and its ledger rows in one transaction. The pending sale's id is the
idempotency key, so a second tap finds the sale already there and adds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.clock import Clock
from bot.domain.codes import normalise_code
from bot.domain.fraud import FraudWatch
from bot.domain.lookup import find_by_code_or_phone
from bot.domain.membership import Standing, standing_of
from bot.domain.models import (
    Actor,
    Customer,
    LedgerReason,
    PendingSale,
    Refused,
    Role,
    Sale,
)
from bot.domain.money import parse_amount, parse_items
from bot.domain.notices import localised, tell_customer
from bot.domain.parsing import InvalidInput
from bot.domain.permissions import Action, permitted
from bot.program import EarningMode, Program, Tier
from bot.storage.customers import CustomerRepository
from bot.storage.database import Database, Transaction
from bot.storage.ledger import LedgerRepository
from bot.storage.sales import PendingSaleRepository, SalesRepository
from bot.storage.staff import AuditLog

PENDING_VALIDITY = timedelta(minutes=30)
STAFF_VOID_WINDOW = timedelta(hours=24)
REFERRER_KEY = "referral:referrer:"
REFERRED_KEY = "referral:referred:"


@dataclass(frozen=True)
class SaleDraft:
    """What staff see before confirming: the customer, and the sale if its amount is known."""

    pending: PendingSale
    customer: Customer
    standing: Standing
    points: int | None


@dataclass(frozen=True)
class ReferralPayout:
    referrer: Customer
    referrer_points: int  # 0 when the referrer reached this month's cap
    referred_points: int


@dataclass(frozen=True)
class SaleRecorded:
    """The sale, for the staff member's receipt; the customer's is in the outbox."""

    sale: Sale
    customer: Customer
    standing: Standing
    first_time: bool  # False when this confirmation had been recorded before


@dataclass(frozen=True)
class SaleVoided:
    sale: Sale
    customer: Customer
    balance: int


class SalesService:
    def __init__(
        self, database: Database, clock: Clock, program: Program, zone: ZoneInfo, fraud: FraudWatch
    ) -> None:
        self._db = database
        self._clock = clock
        self._program = program
        self._zone = zone
        self._fraud = fraud

    @property
    def asks_for_items(self) -> bool:
        return self._program.earning.mode is EarningMode.PER_ITEM

    async def start_for_card(self, staff: Actor, member_code: str) -> SaleDraft | Refused:
        """Staff scanned a card: open a sale for that customer and wait for the amount."""
        if refused := await permitted(self._db, self._clock, staff, Action.SELL):
            return refused
        async with self._db.transaction(touching=(_staff(staff),)) as tx:
            customer = await CustomerRepository(tx).by_member_code(normalise_code(member_code))
            if customer is None:
                return Refused("customer_unknown")
            await tx.touch(_customer(customer.id))
            pending = await PendingSaleRepository(tx).open(
                staff.identity, customer.id, self._clock.now()
            )
            return await self._draft(tx, pending, customer)

    async def awaiting_amount(self, staff: Actor) -> bool:
        async with self._db.reading() as tx:
            pending = await PendingSaleRepository(tx).awaiting_amount(
                staff.identity, self._clock.now() - PENDING_VALIDITY
            )
        return pending is not None

    async def enter_amount(self, staff: Actor, text: str) -> SaleDraft | Refused:
        """The amount (and item count) typed after a scan: `24,50` or `24,50 3`."""
        async with self._db.transaction(touching=(_staff(staff),)) as tx:
            pendings = PendingSaleRepository(tx)
            pending = await pendings.awaiting_amount(
                staff.identity, self._clock.now() - PENDING_VALIDITY
            )
            if pending is None:
                return Refused("sale_expired")
            await tx.touch(_customer(pending.customer_id))
            amount_text, _, items_text = text.strip().partition(" ")
            try:
                amount, items = self._parse(amount_text, items_text.strip() or None)
            except InvalidInput as invalid:
                return Refused(invalid.problem)
            updated = await pendings.set_amount(pending.id, amount, items)
            customer = await CustomerRepository(tx).by_id(pending.customer_id)
            if customer is None:
                return Refused("customer_unknown")
            return await self._draft(tx, updated, customer)

    async def prepare(
        self, staff: Actor, customer_query: str, amount_text: str, items_text: str | None
    ) -> SaleDraft | Refused:
        """/sale in one line: find the customer, read the amount, wait for the confirming tap."""
        if refused := await permitted(self._db, self._clock, staff, Action.SELL):
            return refused
        try:
            amount, items = self._parse(amount_text, items_text)
        except InvalidInput as invalid:
            return Refused(invalid.problem)
        async with self._db.transaction(touching=(_staff(staff),)) as tx:
            found = await find_by_code_or_phone(tx, customer_query, self._program.shop.phone_region)
            if len(found) != 1:
                return Refused("customer_unknown" if not found else "customer_ambiguous")
            await tx.touch(_customer(found[0].id))
            pending = await PendingSaleRepository(tx).open(
                staff.identity, found[0].id, self._clock.now(), amount, items
            )
            return await self._draft(tx, pending, found[0])

    async def cancel(self, staff: Actor, pending_id: int) -> bool:
        async with self._db.transaction(touching=(_staff(staff),)) as tx:
            pendings = PendingSaleRepository(tx)
            pending = await pendings.by_id(pending_id)
            if pending is None or pending.staff != staff.identity:
                return False
            return await pendings.cancel(pending_id, self._clock.now())

    async def confirm(self, staff: Actor, pending_id: int) -> SaleRecorded | Refused:
        if refused := await permitted(self._db, self._clock, staff, Action.SELL):
            return refused
        now = self._clock.now()
        async with self._db.transaction(touching=(_staff(staff),)) as tx:
            pending = await PendingSaleRepository(tx).by_id(pending_id)
            if pending is None or pending.staff != staff.identity:
                return Refused("sale_expired")
            await tx.touch(_customer(pending.customer_id))
            customer = await CustomerRepository(tx).by_id(pending.customer_id)
            if customer is None:
                return Refused("customer_unknown")
            sales = SalesRepository(tx)
            if pending.sale_id is not None:
                sale = await sales.by_id(pending.sale_id)
                assert sale is not None
                return SaleRecorded(
                    sale=sale,
                    customer=customer,
                    standing=await standing_of(tx, self._program, customer.id, now),
                    first_time=False,
                )
            if pending.amount_minor is None or pending.items is None:
                return Refused("sale_amount_missing")
            if now - pending.created_at > PENDING_VALIDITY:
                return Refused("sale_expired")
            before = await standing_of(tx, self._program, customer.id, now)
            points = self._program.points_for(pending.amount_minor, pending.items, before.tier)
            sale, sales_today = await sales.insert(
                customer.id,
                recorded_by=staff.label,
                amount_minor=pending.amount_minor,
                items=pending.items,
                points=points,
                idempotency_key=f"pending:{pending.id}",
                at=now,
                count_since=self._fraud.day_start(now),
            )
            await PendingSaleRepository(tx).attach_sale(pending.id, sale.id)
            if points > 0:
                await LedgerRepository(tx).append(
                    customer.id,
                    points,
                    LedgerReason.PURCHASE,
                    actor=staff.label,
                    idempotency_key=f"sale:{sale.id}",
                    at=now,
                    note=f"sale {sale.id}",
                )
            referral = await self._pay_referral(tx, customer, staff, now)
            await AuditLog(tx).record(
                staff.label,
                "sale",
                now,
                subject=f"sale:{sale.id}",
                customer=customer.id,
                amount_minor=pending.amount_minor,
                items=pending.items,
                points=points,
            )
            after = await standing_of(tx, self._program, customer.id, now)
            await self._tell_customers(tx, sale, customer, after, before.tier, referral, now)
            await self._fraud.after_sale(tx, sale, sales_today, customer, staff, now)
            return SaleRecorded(sale=sale, customer=customer, standing=after, first_time=True)

    async def void(self, actor: Actor, sale_id: int, reason: str) -> SaleVoided | Refused:
        """Reverse a sale's points: owners any sale, staff their own within 24 hours."""
        if refused := await permitted(self._db, self._clock, actor, Action.VOID):
            return refused
        if not reason.strip():
            return Refused("void_reason_missing")
        now = self._clock.now()
        async with self._db.transaction() as tx:
            sales = SalesRepository(tx)
            sale = await sales.by_id(sale_id)
            if sale is None:
                return Refused("sale_unknown")
            if sale.voided_at is not None:
                return Refused("sale_already_voided")
            own_and_recent = (
                sale.recorded_by == actor.label and now - sale.created_at <= STAFF_VOID_WINDOW
            )
            if actor.role is not Role.OWNER and not own_and_recent:
                return Refused("void_not_allowed")
            await sales.mark_voided(sale_id, actor.label, reason.strip(), now)
            if sale.points > 0:
                await LedgerRepository(tx).append(
                    sale.customer_id,
                    -sale.points,
                    LedgerReason.REVERSAL,
                    actor=actor.label,
                    idempotency_key=f"void:{sale_id}",
                    at=now,
                    note=reason.strip()[:200],
                )
            await AuditLog(tx).record(
                actor.label, "void", now, subject=f"sale:{sale_id}", reason=reason.strip()
            )
            await self._fraud.after_void(tx, actor, now)
            customers = CustomerRepository(tx)
            customer = await customers.by_id(sale.customer_id)
            voided = await sales.by_id(sale_id)
            assert voided is not None
            if customer is None:
                return Refused("customer_unknown")
            balance = await LedgerRepository(tx).balance(customer.id)
            await tell_customer(
                tx,
                customer,
                f"void:{sale_id}",
                "points/sale_voided",
                now,
                bought_at=sale.created_at.isoformat(),
                points=sale.points,
                balance=balance,
            )
            return SaleVoided(sale=voided, customer=customer, balance=balance)

    async def _tell_customers(
        self,
        tx: Transaction,
        sale: Sale,
        customer: Customer,
        standing: Standing,
        tier_before: Tier,
        referral: ReferralPayout | None,
        now: datetime,
    ) -> None:
        """The customer's receipt, a tier reached, and the friend who invited them rewarded."""
        next_reward = standing.next_reward
        affordable = standing.affordable
        welcome_bonus = referral.referred_points if referral else 0
        before = standing.balance - sale.points - welcome_bonus
        # A reward this sale brought within reach is news: the receipt leads with it.
        reached = [option for option in affordable if option.reward.cost > before]
        await tell_customer(
            tx,
            customer,
            f"sale:{sale.id}:earned",
            "points/earned",
            now,
            points=sale.points,
            welcome_bonus=welcome_bonus,
            balance=standing.balance,
            reward_reached=localised(reached[-1].reward.name) if reached else None,
            next_reward={
                "name": localised(next_reward.reward.name),
                "missing_points": next_reward.missing_points,
            }
            if next_reward
            else None,
            affordable_reward=localised(affordable[-1].reward.name) if affordable else None,
        )
        if standing.tier.threshold > tier_before.threshold:
            await tell_customer(
                tx,
                customer,
                f"sale:{sale.id}:tier_up",
                "points/tier_up",
                now,
                tier=localised(standing.tier.name),
            )
        if referral is not None and referral.referrer_points > 0:
            await tell_customer(
                tx,
                referral.referrer,
                f"sale:{sale.id}:referral_bonus",
                "points/referral_bonus",
                now,
                friend=customer.name,
                points=referral.referrer_points,
            )

    def _parse(self, amount_text: str, items_text: str | None) -> tuple[int, int]:
        shop = self._program.shop
        amount = parse_amount(amount_text, shop.money, shop.largest_sale_minor)
        if items_text is None:
            if self.asks_for_items:
                raise InvalidInput("items_missing")
            return amount, 0
        return amount, parse_items(items_text, self._program.earning.largest_item_count)

    async def _draft(self, tx: Transaction, pending: PendingSale, customer: Customer) -> SaleDraft:
        standing = await standing_of(tx, self._program, customer.id, self._clock.now())
        points = (
            self._program.points_for(pending.amount_minor, pending.items, standing.tier)
            if pending.amount_minor is not None and pending.items is not None
            else None
        )
        return SaleDraft(pending, customer, standing, points)

    async def _pay_referral(
        self, tx: Transaction, customer: Customer, staff: Actor, now: datetime
    ) -> ReferralPayout | None:
        """On a referred customer's first purchase, both sides' bonus, once (idempotency keys)."""
        if customer.referred_by is None or await SalesRepository(tx).valid_count(customer.id) != 1:
            return None
        await tx.touch(_customer(customer.referred_by))  # who joined earlier: taken second
        customers = CustomerRepository(tx)
        referrer = await customers.by_id(customer.referred_by)
        if referrer is None:
            return None
        rules = self._program.referral
        ledger = LedgerRepository(tx)
        referred_points = 0
        if rules.referred_points > 0 and await ledger.append(
            customer.id,
            rules.referred_points,
            LedgerReason.REFERRAL,
            actor=staff.label,
            idempotency_key=f"{REFERRED_KEY}{customer.id}",
            at=now,
            note="welcome bonus for a referred friend",
        ):
            referred_points = rules.referred_points
        if referred_points == 0 and rules.referred_points > 0:
            return None  # paid on an earlier (since voided) first purchase
        month_start = now.astimezone(self._zone).replace(
            day=1, hour=0, minute=0, second=0, microsecond=0
        )
        paid_this_month = await ledger.count_keys_since(referrer.id, REFERRER_KEY, month_start)
        referrer_points = 0
        if (
            rules.referrer_points > 0
            and paid_this_month < rules.monthly_cap_per_referrer
            and await ledger.append(
                referrer.id,
                rules.referrer_points,
                LedgerReason.REFERRAL,
                actor=staff.label,
                idempotency_key=f"{REFERRER_KEY}{customer.id}",
                at=now,
                note=f"friend {customer.member_code} made a first purchase",
            )
        ):
            referrer_points = rules.referrer_points
        if referrer_points == 0 and referred_points == 0:
            return None
        return ReferralPayout(
            referrer=referrer,
            referrer_points=referrer_points,
            referred_points=referred_points,
        )


# What a sale touches (Database.transaction): the clerk's pending sales, the customer's points
# and purchases, and on a first purchase the referrer's points. Sales for other customers by
# other clerks go on beside it on PostgreSQL.
def _staff(staff: Actor) -> str:
    return f"staff:{staff.identity.channel}:{staff.identity.user_id}"


def _customer(customer_id: int) -> str:
    return f"customer:{customer_id}"
