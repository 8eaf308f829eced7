"""What a member sees and controls: balance, tier, rewards, referrals, consent and their data."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from bot.clock import Clock
from bot.domain.expiry import ExpiryDue, ExpiryService
from bot.domain.models import (
    TIER_QUALIFYING_REASONS,
    ConsentTopic,
    Customer,
    Identity,
    Language,
    LedgerEntry,
)
from bot.domain.notices import tell_customer, tell_person
from bot.program import Program, Reward, Tier
from bot.storage.customers import CustomerRepository, DraftRepository, LinkOffers
from bot.storage.database import Database, Transaction, to_sql_time
from bot.storage.ledger import LedgerRepository
from bot.storage.personal_data import PersonalData

TIER_WINDOW = timedelta(days=365)
LATEST_MOVEMENTS = 5


LINK_VALIDITY = timedelta(hours=24)  # a link offered from a new app waits this long


@dataclass(frozen=True)
class RewardOption:
    reward: Reward
    affordable: bool
    missing_points: int


@dataclass(frozen=True)
class Standing:
    """A member's points and where they stand: the figures behind /balance and /rewards."""

    balance: int
    tier: Tier
    next_tier: Tier | None
    points_to_next_tier: int
    rewards: list[RewardOption]
    latest: list[LedgerEntry]
    next_expiry: ExpiryDue | None = None  # shown by /balance when points expiry is on

    @property
    def next_reward(self) -> RewardOption | None:
        """The cheapest reward not yet affordable: the next thing to save up for."""
        return next((option for option in self.rewards if not option.affordable), None)

    @property
    def affordable(self) -> list[RewardOption]:
        return [option for option in self.rewards if option.affordable]


@dataclass(frozen=True)
class ReferralStatus:
    code: str
    friends_joined: int


async def standing_of(
    tx: Transaction, program: Program, customer_id: int, now: datetime
) -> Standing:
    """Balance, tier and reward progress, read inside the caller's transaction."""
    summary = await LedgerRepository(tx).summary(
        customer_id, TIER_QUALIFYING_REASONS, now - TIER_WINDOW, LATEST_MOVEMENTS
    )
    balance = summary.balance
    tier = program.tier_for(summary.qualifying)
    next_tier = program.next_tier(tier)
    return Standing(
        balance=balance,
        tier=tier,
        next_tier=next_tier,
        points_to_next_tier=next_tier.threshold - summary.qualifying if next_tier else 0,
        rewards=[
            RewardOption(reward, reward.cost <= balance, max(reward.cost - balance, 0))
            for reward in program.rewards_by_cost()
        ],
        latest=summary.latest,
    )


class MembershipService:
    def __init__(
        self, database: Database, clock: Clock, program: Program, expiry: ExpiryService
    ) -> None:
        self._db = database
        self._clock = clock
        self._program = program
        self._expiry = expiry

    async def member(self, identity: Identity) -> Customer | None:
        async with self._db.single_read() as tx:
            customer = await CustomerRepository(tx).by_identity(identity)
        if customer is not None and customer.identity != identity:
            # A member on two apps: pushes follow them to the one they wrote from last. One
            # statement, outside the update's unit of work: it is not the update's change.
            async with self._db.single_write() as tx:
                await CustomerRepository(tx).use_identity(customer.id, identity)
            customer = replace(customer, identity=identity)
        return customer

    async def known_as(self, identities: list[Identity], phone: str | None) -> Customer | None:
        """The member one of these ids belongs to, or the one member with this number; where
        their pushes go is left as it is (unlike `member`)."""
        async with self._db.reading() as tx:
            customers = CustomerRepository(tx)
            for identity in identities:
                found = await customers.by_identity(identity)
                if found is not None:
                    return found
            same_number = await customers.by_phone(phone) if phone else []
        return same_number[0] if len(same_number) == 1 else None

    async def offer_link(self, identity: Identity, phone: str | None) -> Customer | None:
        """Someone new on one app whose number is a member's on another: the member is asked,
        on the app they use, to confirm it is them (once a day). The member, or None."""
        if phone is None:
            return None
        now = self._clock.now()
        # Most newcomers are new: a read, not a commit that would record the update as
        # handled before its real change (bot/incoming.py).
        async with self._db.reading() as tx:
            elsewhere = [
                customer
                for customer in await CustomerRepository(tx).owning_phone(phone)
                if customer.identity.channel != identity.channel
            ]
        if len(elsewhere) != 1:
            return None
        member = elsewhere[0]
        async with self._db.transaction() as tx:
            await LinkOffers(tx).offer(member.id, identity, now)
            day = now.date().isoformat()
            await tell_customer(
                tx,
                member,
                f"link:{member.id}:{identity.channel}:{identity.user_id}:{day}",
                "whatsapp/link_offer",
                now,
                phone=phone,
            )
        return member

    async def accept_link(self, customer: Customer) -> Identity | None:
        """The member confirms: the offered identity is theirs too. None when none is open."""
        now = self._clock.now()
        async with self._db.transaction() as tx:
            offers = LinkOffers(tx)
            offered = await offers.open_for(customer.id, now - LINK_VALIDITY)
            if offered is None:
                return None
            offer_id, identity = offered
            await CustomerRepository(tx).add_identity(customer.id, identity, now)
            await offers.accept(offer_id, now)
            balance = (await standing_of(tx, self._program, customer.id, now)).balance
            await tell_person(
                tx,
                identity,
                customer.language,
                f"link:{offer_id}:linked",
                "whatsapp/linked",
                now,
                about=customer,
                name=customer.name,
                balance=balance,
            )
        return identity

    async def standing(self, customer: Customer) -> Standing:
        async with self._db.reading() as tx:
            standing = await standing_of(tx, self._program, customer.id, self._clock.now())
        if not self._expiry.on or standing.balance <= 0:
            return standing
        return replace(standing, next_expiry=await self._expiry.next_expiry(customer.id))

    async def referral_link(self, customer: Customer) -> ReferralStatus:
        """The code to share and the friends it brought; the request itself is noted, as the
        nearest measure of how often members pass their link on."""
        async with self._db.transaction() as tx:
            customers = CustomerRepository(tx)
            await customers.note_invite_request(customer.id, self._clock.now())
            joined = await customers.referred_count(customer.id)
        return ReferralStatus(code=customer.referral_code, friends_joined=joined)

    async def set_language(self, customer: Customer, language: Language) -> None:
        async with self._db.transaction() as tx:
            await CustomerRepository(tx).set_language(customer.id, language)

    async def set_consent(self, customer: Customer, topic: ConsentTopic, granted: bool) -> None:
        """Record the choice with its time; an unchanged choice is not logged again."""
        current = {
            ConsentTopic.PROMOTIONS: customer.promotions_consent,
            ConsentTopic.SURVEYS: customer.surveys_enabled,
        }[topic]
        if current == granted:
            return
        async with self._db.transaction() as tx:
            await CustomerRepository(tx).set_consent(customer.id, topic, granted, self._clock.now())

    async def personal_data(
        self, customer: Customer, quadrant: str | None = None
    ) -> dict[str, Any]:
        """Everything stored about the member, as a JSON-ready document (right of access)."""
        async with self._db.reading() as tx:
            consent = await CustomerRepository(tx).consent_history(customer.id)
            ledger = LedgerRepository(tx)
            entries = await ledger.all_for(customer.id)
            balance = await ledger.balance(customer.id)
            joined = await CustomerRepository(tx).referred_count(customer.id)
            every_id = await CustomerRepository(tx).known_as(customer)
            other_rows = await PersonalData(tx).rows_about(customer.id)
            other_rows |= await PersonalData(tx).messages_and_audit(customer.id, every_id)
        profile = asdict(customer)
        profile["language"] = customer.language.value
        profile["created_at"] = customer.created_at.isoformat()
        profile["birthday"] = customer.birthday.as_text() if customer.birthday else None
        return {
            "shop": self._program.shop.name,
            "exported_at": self._clock.now().isoformat(),
            "profile": profile,
            "consent_history": consent,
            "points_balance": balance,
            "friends_referred": joined,
            "points_ledger": [
                {
                    "at": to_sql_time(entry.created_at),
                    "points": entry.delta,
                    "reason": entry.reason.value,
                    "note": entry.note,
                }
                for entry in entries
            ],
            "relationship_map_quadrant": quadrant,
            **other_rows,
        }

    async def forget(self, customer: Customer, identity: Identity) -> None:
        """Erase personal data; ledger rows stay, tied to an anonymous row, so accounts add up.
        Then the erased bytes leave the database's files too: SQLite overwrote them and
        empties its write-ahead log now (`Database.checkpoint`); PostgreSQL vacuums the old
        row versions now and writes the tables anew that night (bot/domain/erasures.py)."""
        async with self._db.transaction() as tx:
            customers = CustomerRepository(tx)
            every_id = sorted({identity, *await customers.known_as(customer)}, key=str)
            await customers.erase(customer.id, self._clock.now())
            for known_as in every_id:
                await DraftRepository(tx).delete(known_as)
            await PersonalData(tx).erase_traces(customer.id, every_id)
        await self._db.checkpoint()
