"""Counter rules without Telegram: racing confirmations, and the ledger adding up."""

from __future__ import annotations

import asyncio

from bot.domain.models import Actor, Customer, Identity, Redemption, Refused, Role
from bot.domain.registration import (
    RegistrationService,
)
from bot.domain.rewards import RedemptionView, RewardsService
from bot.domain.sales import SaleDraft, SaleRecorded
from bot.program import Program
from bot.storage.database import Database
from tests.conftest import FakeClock
from tests.flows import enrol, sales_service, sell

CLERK = Actor(Identity("telegram", "50"), Role.STAFF, "Pepe")
OTHER_CLERK = Actor(Identity("telegram", "51"), Role.STAFF, "Lola")


async def _member(database: Database, clock: FakeClock, program: Program, user_id: str) -> Customer:
    return await enrol(RegistrationService(database, clock, program), int(user_id))


async def _ledger_total(database: Database, customer: Customer) -> int:
    async with database.reading() as tx:
        row = await tx.fetch_one(
            "SELECT SUM(delta) AS total FROM points_ledger WHERE customer_id = ?", (customer.id,)
        )
    assert row is not None
    return int(row["total"] or 0)


async def test_racing_confirmations_of_one_sale_record_it_once(
    database: Database, clock: FakeClock, program: Program
) -> None:
    sales = sales_service(database, clock, program)
    customer = await _member(database, clock, program, "1")
    draft = await sales.prepare(CLERK, customer.member_code, "30", "3")
    assert isinstance(draft, SaleDraft)
    outcomes = await asyncio.gather(*(sales.confirm(CLERK, draft.pending.id) for _ in range(5)))
    recorded = [o for o in outcomes if isinstance(o, SaleRecorded)]
    assert [o.first_time for o in recorded].count(True) == 1
    assert len({o.sale.id for o in recorded}) == 1
    assert await _ledger_total(database, customer) == 3


async def test_racing_redemptions_of_one_code_take_the_points_once(
    database: Database, clock: FakeClock, program: Program
) -> None:
    sales = sales_service(database, clock, program)
    rewards = RewardsService(database, clock, program)
    customer = await _member(database, clock, program, "2")
    await sell(sales, customer, 10)
    code = await rewards.request_reward(customer, "free_bottle")
    assert isinstance(code, Redemption)
    outcomes = await asyncio.gather(
        rewards.confirm(CLERK, code.code), rewards.confirm(OTHER_CLERK, code.code)
    )
    assert sum(isinstance(o, RedemptionView) for o in outcomes) == 1
    assert [o.problem for o in outcomes if isinstance(o, Refused)] == ["redemption_used"]
    assert await _ledger_total(database, customer) == 0


async def test_racing_codes_never_take_a_balance_below_zero(
    database: Database, clock: FakeClock, program: Program
) -> None:
    sales = sales_service(database, clock, program)
    rewards = RewardsService(database, clock, program)
    customer = await _member(database, clock, program, "3")
    await sell(sales, customer, 15)
    codes = [await rewards.request_reward(customer, "free_bottle") for _ in range(4)]
    outcomes = await asyncio.gather(
        *(rewards.confirm(CLERK, c.code) for c in codes if isinstance(c, Redemption))
    )
    assert sum(isinstance(o, RedemptionView) for o in outcomes) == 1
    assert await _ledger_total(database, customer) == 5


async def test_a_reward_cannot_be_requested_without_the_points(
    database: Database, clock: FakeClock, program: Program
) -> None:
    rewards = RewardsService(database, clock, program)
    customer = await _member(database, clock, program, "4")
    assert await rewards.request_reward(customer, "free_bottle") == Refused("reward_not_affordable")
    assert await rewards.request_reward(customer, "no_such_reward") == Refused("reward_unknown")


async def test_void_after_the_points_were_spent_is_recorded_in_full(
    database: Database, clock: FakeClock, program: Program
) -> None:
    """A void reverses exactly what the sale earned, even if the balance then goes negative:
    the ledger tells the truth and the owner sees what the customer owes."""
    sales = sales_service(database, clock, program)
    rewards = RewardsService(database, clock, program)
    customer = await _member(database, clock, program, "5")
    recorded = await sell(sales, customer, 10)
    code = await rewards.request_reward(customer, "free_bottle")
    assert isinstance(code, Redemption)
    assert isinstance(await rewards.confirm(CLERK, code.code), RedemptionView)
    owner = Actor(Identity("telegram", "1"), Role.OWNER)
    voided = await sales.void(owner, recorded.sale.id, "returned the bottles")
    assert not isinstance(voided, Refused)
    assert voided.balance == -10 == await _ledger_total(database, customer)


async def test_a_void_racing_a_redemption_of_its_points_never_leaves_them_spent_twice(
    database: Database, clock: FakeClock, program: Program
) -> None:
    """The void always stands (the bottles came back). If it lands first, the redemption finds
    no points and is refused; if the redemption lands first, the void still reverses what the
    sale earned and the balance shows what the customer owes. Both orders are played, then
    the two at once, which must end one of those two ways. (The orders were once left to
    asyncio.gather, which did not always play both.)"""
    sales = sales_service(database, clock, program)
    rewards = RewardsService(database, clock, program)
    owner = Actor(Identity("telegram", "1"), Role.OWNER)
    for user_id, order in (("6", "void first"), ("7", "redemption first"), ("8", "at once")):
        customer = await _member(database, clock, program, user_id)
        recorded = await sell(sales, customer, 10)
        code = await rewards.request_reward(customer, "free_bottle")
        assert isinstance(code, Redemption)
        void = sales.void(owner, recorded.sale.id, "returned the bottles")
        redeem = rewards.confirm(CLERK, code.code)
        if order == "void first":
            voided, redeemed = await void, await redeem
        elif order == "redemption first":
            redeemed, voided = await redeem, await void
        else:
            voided, redeemed = await asyncio.gather(void, redeem)
        assert not isinstance(voided, Refused)
        balance = await _ledger_total(database, customer)
        if isinstance(redeemed, Refused):
            assert (redeemed.problem, balance) == ("redemption_not_affordable", 0)
            assert order != "redemption first"
        else:
            assert isinstance(redeemed, RedemptionView) and balance == -10
            assert order != "void first"
