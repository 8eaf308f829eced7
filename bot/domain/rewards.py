"""Spending points and coupons: a one-time code the customer shows, confirmed by staff.

The points leave the ledger only when staff confirm, inside one transaction that checks the
balance again, so two staff confirming the same code, or two codes racing for the same points,
can never take a balance below zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.clock import Clock
from bot.domain.codes import new_code, normalise_code
from bot.domain.lookup import find_by_code_or_phone
from bot.domain.models import (
    Actor,
    Coupon,
    CouponKind,
    Customer,
    LedgerReason,
    Redemption,
    Refused,
)
from bot.domain.notices import coupon_facts, localised, tell_customer
from bot.domain.parsing import whole_number
from bot.domain.permissions import Action, permitted
from bot.program import LocalisedText, Program, Reward
from bot.storage.customers import CustomerRepository
from bot.storage.database import Database, Transaction
from bot.storage.ledger import LedgerRepository
from bot.storage.rewards import CouponRepository, RedemptionRepository
from bot.storage.staff import AuditLog

REDEMPTION_VALIDITY = timedelta(minutes=15)
_CODE_ATTEMPTS = 20


@dataclass(frozen=True)
class RedemptionView:
    """A code as staff see it before confirming: whose it is and what it is for."""

    redemption: Redemption
    customer: Customer
    reward: Reward | None
    coupon: Coupon | None
    balance: int


@dataclass(frozen=True)
class CouponGranted:
    customer: Customer
    coupon: Coupon


LARGEST_COUPON_DAYS = 365
COUPON_USAGE = "coupon_usage"  # a line that is not `<code or phone> <percent> [days]`


class RewardsService:
    def __init__(self, database: Database, clock: Clock, program: Program) -> None:
        self._db = database
        self._clock = clock
        self._program = program

    async def request_reward(self, customer: Customer, reward_key: str) -> Redemption | Refused:
        reward = self._program.reward(reward_key)
        if reward is None:
            return Refused("reward_unknown")
        now = self._clock.now()
        async with self._db.transaction() as tx:
            if await LedgerRepository(tx).balance(customer.id) < reward.cost:
                return Refused("reward_not_affordable")
            return await self._new_code(tx, customer, reward, None, now)

    async def request_coupon(self, customer: Customer, coupon_id: int) -> Redemption | Refused:
        now = self._clock.now()
        async with self._db.transaction() as tx:
            coupon = await CouponRepository(tx).by_id(coupon_id)
            if coupon is None or coupon.customer_id != customer.id:
                return Refused("coupon_unknown")
            if coupon.redeemed_at is not None:
                return Refused("coupon_used")
            if coupon.valid_until <= now:
                return Refused("coupon_expired")
            return await self._new_code(tx, customer, None, coupon.id, now)

    async def open_coupons(self, customer: Customer) -> list[Coupon]:
        async with self._db.reading() as tx:
            return await CouponRepository(tx).open_for(customer.id, self._clock.now())

    async def grant(
        self,
        owner: Actor,
        customer: Customer,
        kind: CouponKind,
        *,
        percent_off: int | None = None,
        free_item: str | None = None,
        valid_days: int,
        idempotency_key: str,
    ) -> Coupon | None:
        """A coupon for the customer; None if one with this idempotency key exists already."""
        now = self._clock.now()
        async with self._db.transaction() as tx:
            return await give_coupon(
                tx,
                owner,
                customer,
                kind,
                percent_off=percent_off,
                free_item=free_item,
                valid_until=now + timedelta(days=valid_days),
                idempotency_key=idempotency_key,
                at=now,
            )

    async def grant_typed(
        self, owner: Actor, args: list[str], idempotency_key: str
    ) -> CouponGranted | Refused | None:
        """`<member code or phone> <percent off> [days valid]`, as the owner types it; None
        when this very message granted it already. Refused(COUPON_USAGE) for a bad line."""
        if refused := await permitted(self._db, self._clock, owner, Action.COUPON):
            return refused
        percent = whole_number(args[1].removesuffix("%")) if len(args) in (2, 3) else None
        days = whole_number(args[2]) if len(args) == 3 else self._program.birthday.valid_days
        if percent is None or not 1 <= percent <= 100 or days is None:
            return Refused(COUPON_USAGE)
        if not 1 <= days <= LARGEST_COUPON_DAYS:
            return Refused(COUPON_USAGE)
        async with self._db.reading() as tx:
            found = await find_by_code_or_phone(tx, args[0], self._program.shop.phone_region)
        if len(found) != 1:
            return Refused("customer_unknown" if not found else "customer_ambiguous")
        coupon = await self.grant(
            owner,
            found[0],
            CouponKind.GRANTED,
            percent_off=percent,
            valid_days=days,
            idempotency_key=idempotency_key,
        )
        return CouponGranted(found[0], coupon) if coupon else None

    async def view(self, code: str) -> RedemptionView | Refused:
        async with self._db.reading() as tx:
            return await self._view(tx, normalise_code(code))

    async def confirm(self, staff: Actor, code: str) -> RedemptionView | Refused:
        """Redeem: mark the code used and take the points, all or nothing; the second tap loses."""
        if refused := await permitted(self._db, self._clock, staff, Action.REDEEM):
            return refused
        now = self._clock.now()
        async with self._db.transaction() as tx:
            view = await self._view(tx, normalise_code(code))
            if isinstance(view, Refused):
                return view
            redemption = view.redemption
            if view.coupon is not None and view.coupon.redeemed_at is not None:
                return Refused("coupon_used")  # another code for the same coupon came first
            if not await RedemptionRepository(tx).mark_redeemed(redemption.code, staff.label, now):
                return Refused("redemption_used")
            if view.coupon is not None:
                await CouponRepository(tx).mark_redeemed(view.coupon.id, now)
            if redemption.cost > 0:
                await LedgerRepository(tx).append(
                    view.customer.id,
                    -redemption.cost,
                    LedgerReason.REWARD,
                    actor=staff.label,
                    idempotency_key=f"redeem:{redemption.code}",
                    at=now,
                    note=redemption.reward_key,
                )
            await AuditLog(tx).record(
                staff.label,
                "redemption",
                now,
                subject=f"redemption:{redemption.code}",
                customer=view.customer.id,
                reward=redemption.reward_key,
                coupon=redemption.coupon_id,
                points=redemption.cost,
            )
            done = await self._view(tx, redemption.code, allow_used=True)
            assert not isinstance(done, Refused)
            await tell_customer(
                tx,
                done.customer,
                f"redeemed:{redemption.code}",
                "redeem/customer_done",
                now,
                reward=localised(done.reward.name) if done.reward else None,
                cost=redemption.cost,
                balance=done.balance,
                coupon=coupon_facts(done.coupon) if done.coupon else None,
            )
            return done

    async def _view(
        self, tx: Transaction, code: str, *, allow_used: bool = False
    ) -> RedemptionView | Refused:
        redemption = await RedemptionRepository(tx).by_code(code)
        if redemption is None:
            return Refused("redemption_unknown")
        if redemption.redeemed_at is not None and not allow_used:
            return Refused("redemption_used")
        if redemption.expires_at <= self._clock.now() and not allow_used:
            return Refused("redemption_expired")
        customers = CustomerRepository(tx)
        customer = await customers.by_id(redemption.customer_id)
        if customer is None:
            return Refused("redemption_unknown")
        coupon = (
            await CouponRepository(tx).by_id(redemption.coupon_id)
            if redemption.coupon_id is not None
            else None
        )
        balance = await LedgerRepository(tx).balance(customer.id)
        if balance < redemption.cost and not allow_used:
            return Refused("redemption_not_affordable")  # another code spent the points first
        return RedemptionView(
            redemption=redemption,
            customer=customer,
            reward=self.reward_of(redemption),
            coupon=coupon,
            balance=balance,
        )

    def reward_of(self, redemption: Redemption) -> Reward | None:
        """What the code was issued for, even if the program has changed since."""
        if redemption.reward_snapshot is not None:
            return Reward.model_validate_json(redemption.reward_snapshot)
        if redemption.reward_key is None:
            return None
        # Codes issued before snapshots were kept: the reward as the program has it now.
        return self._program.reward(redemption.reward_key) or Reward(
            key=redemption.reward_key,
            cost=redemption.cost,
            name=LocalisedText(es=redemption.reward_key, en=redemption.reward_key),
        )

    async def _new_code(
        self,
        tx: Transaction,
        customer: Customer,
        reward: Reward | None,
        coupon_id: int | None,
        now: datetime,
    ) -> Redemption:
        redemptions = RedemptionRepository(tx)
        # A second tap on the same reward shows the same code: one open code per reward.
        reward_key = reward.key if reward else None
        existing = await redemptions.still_open(customer.id, reward_key, coupon_id, now)
        if existing is not None:
            return existing
        for _ in range(_CODE_ATTEMPTS):
            code = new_code()
            if not await redemptions.code_taken(code):
                return await redemptions.create(
                    code,
                    customer.id,
                    reward_key=reward.key if reward else None,
                    reward_snapshot=reward.model_dump_json() if reward else None,
                    cost=reward.cost if reward else 0,
                    coupon_id=coupon_id,
                    at=now,
                    expires_at=now + REDEMPTION_VALIDITY,
                )
        raise RuntimeError("could not find an unused redemption code")


async def give_coupon(
    tx: Transaction,
    owner: Actor,
    customer: Customer,
    kind: CouponKind,
    *,
    percent_off: int | None,
    free_item: str | None,
    valid_until: datetime,
    idempotency_key: str,
    at: datetime,
) -> Coupon | None:
    """The owner's coupon for a customer, in the caller's unit of work: granted, audited, and
    told to the customer if they accept offers. None if this key granted one already."""
    coupon = await CouponRepository(tx).grant(
        customer.id,
        kind,
        percent_off=percent_off,
        free_item=free_item,
        valid_until=valid_until,
        idempotency_key=idempotency_key,
        created_by=owner.label,
        at=at,
    )
    if coupon is None:
        return None
    await AuditLog(tx).record(
        owner.label,
        "coupon_granted",
        at,
        subject=f"coupon:{coupon.id}",
        customer=customer.id,
        percent_off=percent_off,
        free_item=free_item,
    )
    if customer.promotions_consent:
        await tell_customer(
            tx, customer, f"coupon:{coupon.id}", "coupons/received", at, coupon=coupon_facts(coupon)
        )
    return coupon
