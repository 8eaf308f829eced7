"""Campaigns: the owner writes a message, picks who gets it and whether it carries a coupon,
sees how many it will reach and how it reads, and confirms. It goes only to customers who
accepted offers, within the weekly cap, through the outbox at the push pace, each message with
a one-tap opt-out. /campaigns follows each one over the 14 days after it.

Audiences ("everyone", "tier:<key>", "flag:<flag>", "quadrant:<quadrant>", "idle:<days>",
"birthday") are written as short codes, so a tap can carry one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.clock import Clock
from bot.domain.churn import Quadrant, map_lines
from bot.domain.models import Actor, CouponKind, Refused
from bot.domain.permissions import Action, permitted
from bot.domain.promotions import Promotion, promote
from bot.domain.pushes import PushMessage
from bot.program import LocalisedText, Program
from bot.storage import audiences
from bot.storage.audiences import AudienceFilter, CampaignAudiences
from bot.storage.campaigns import Campaign, CampaignCounts, CampaignRepository
from bot.storage.customers import CustomerRepository
from bot.storage.database import Database, Transaction, long_work
from bot.storage.flags import QUADRANTS_SQL
from bot.storage.rewards import CouponRepository
from bot.storage.staff import AuditLog

WRITING_WINDOW = timedelta(minutes=30)  # /broadcast waits this long for the message
LONGEST_TEXT = 1000  # fits a WhatsApp message, or a photo's caption, with its button
LARGEST_PHOTO = 5 * 1024 * 1024  # WhatsApp's limit for an image
FOLLOWED_DAYS = 14
IDLE_CHOICES = (30, 60, 90)
COUPON_CHOICES = (10, 15, 20)
CAMPAIGNS_SHOWN = 5
FLAGS = ("lapsing", "lost", "detractor")
YEAR = timedelta(days=365)


@dataclass(frozen=True)
class AudienceChoice:
    code: str  # what a tap carries: "tier:silver"
    kind: str  # "everyone", "tier", "flag", "quadrant", "idle", "birthday"
    value: str  # the tier's key, the flag, the quadrant, the days
    tier_name: LocalisedText | None = None


@dataclass(frozen=True)
class Preview:
    campaign: Campaign
    recipients: int  # consenting, reachable customers in the audience now
    message: PushMessage  # what each of them gets (the coupon's date as if sent now)
    photo: bytes | None = None


@dataclass(frozen=True)
class CampaignSent:
    campaign: Campaign
    queued: int
    capped: int


@dataclass(frozen=True)
class CampaignReport:
    campaign: Campaign
    counts: CampaignCounts


class CampaignService:
    def __init__(self, database: Database, clock: Clock, program: Program, zone: ZoneInfo) -> None:
        self._db = database
        self._clock = clock
        self._program = program
        self._zone = zone

    def audiences(self) -> list[AudienceChoice]:
        """Every audience the owner may pick, in the order offered."""
        return [
            AudienceChoice("everyone", "everyone", ""),
            *(
                AudienceChoice(f"tier:{tier.key}", "tier", tier.key, tier.name)
                for tier in self._program.tiers
            ),
            *(AudienceChoice(f"flag:{flag}", "flag", flag) for flag in FLAGS),
            *(
                AudienceChoice(f"quadrant:{quadrant.value}", "quadrant", quadrant.value)
                for quadrant in Quadrant
            ),
            *(AudienceChoice(f"idle:{days}", "idle", str(days)) for days in IDLE_CHOICES),
            AudienceChoice("birthday", "birthday", ""),
        ]

    async def start(self, owner: Actor) -> Campaign | Refused:
        if refused := await permitted(self._db, self._clock, owner, Action.CAMPAIGN):
            return refused
        async with self._db.transaction() as tx:
            return await CampaignRepository(tx).start(owner.label, self._clock.now())

    async def waiting_for_text(self, owner: Actor) -> bool:
        async with self._db.reading() as tx:
            waiting = await CampaignRepository(tx).waiting_for_text(
                owner.label, self._clock.now() - WRITING_WINDOW
            )
        return waiting is not None

    async def write(
        self, owner: Actor, text: str, photo: bytes | None = None
    ) -> Campaign | Refused:
        """The message (with a photo, the photo's caption)."""
        cleaned = text.strip()
        if not cleaned:
            return Refused("campaign_text_empty")
        if len(cleaned) > LONGEST_TEXT:
            return Refused("campaign_text_too_long")
        if photo is not None and len(photo) > LARGEST_PHOTO:
            return Refused("campaign_photo_too_large")
        async with self._db.transaction() as tx:
            campaigns = CampaignRepository(tx)
            draft = await campaigns.waiting_for_text(
                owner.label, self._clock.now() - WRITING_WINDOW
            )
            if draft is None:
                return Refused("campaign_unknown")
            await campaigns.set_text(draft.id, cleaned, photo)
            written = await campaigns.by_id(draft.id)
            assert written is not None
            return written

    async def choose_audience(
        self, owner: Actor, campaign_id: int, audience: str
    ) -> Campaign | Refused:
        if refused := await permitted(self._db, self._clock, owner, Action.CAMPAIGN):
            return refused
        if audience not in {choice.code for choice in self.audiences()}:
            return Refused("campaign_unknown")
        async with self._db.transaction() as tx:
            draft = await self._draft(tx, owner, campaign_id)
            if isinstance(draft, Refused):
                return draft
            await CampaignRepository(tx).set_audience(campaign_id, audience)
            chosen = await CampaignRepository(tx).by_id(campaign_id)
            assert chosen is not None
            return chosen

    async def choose_coupon(
        self, owner: Actor, campaign_id: int, percent: int | None
    ) -> Preview | Refused:
        """The last choice; what the owner sees before confirming."""
        if refused := await permitted(self._db, self._clock, owner, Action.CAMPAIGN):
            return refused
        if percent is not None and percent not in COUPON_CHOICES:
            return Refused("campaign_unknown")
        now = self._clock.now()
        with long_work():  # counts the whole audience
            async with self._db.transaction() as tx:
                draft = await self._draft(tx, owner, campaign_id, written=True)
                if isinstance(draft, Refused):
                    return draft
                campaigns = CampaignRepository(tx)
                await campaigns.set_coupon(campaign_id, percent)
                chosen = await campaigns.by_id(campaign_id)
                assert chosen is not None and chosen.audience is not None
                recipients = await CampaignAudiences(tx).count(self._filter(chosen.audience, now))
                photo = await campaigns.photo(campaign_id) if chosen.has_photo else None
                return Preview(chosen, recipients, self._message(chosen, now), photo)

    async def send(self, owner: Actor, campaign_id: int) -> CampaignSent | Refused:
        """Queue it for everyone in the audience now, once, however many taps."""
        if refused := await permitted(self._db, self._clock, owner, Action.CAMPAIGN):
            return refused
        now = self._clock.now()
        with long_work():  # every customer of the audience, in one transaction
            async with self._db.transaction() as tx:
                return await self._queue_everyone(tx, owner, campaign_id, now)

    async def _queue_everyone(
        self, tx: Transaction, owner: Actor, campaign_id: int, now: datetime
    ) -> CampaignSent | Refused:
        draft = await self._draft(tx, owner, campaign_id, written=True)
        if isinstance(draft, Refused):
            return draft
        assert draft.audience is not None
        members = await CampaignAudiences(tx).members(self._filter(draft.audience, now))
        customers = await CustomerRepository(tx).by_ids(members)
        message = self._message(draft, now)
        if draft.coupon_percent is not None:
            await CouponRepository(tx).grant_many(
                {f"campaign:{draft.id}:{customer.id}": customer.id for customer in customers},
                CouponKind.GRANTED,
                percent_off=draft.coupon_percent,
                valid_until=now + timedelta(days=self._program.birthday.valid_days),
                created_by=owner.label,
                at=now,
            )
        promoted = await promote(
            tx,
            [
                Promotion(
                    customer,
                    "campaign",
                    f"campaign:{draft.id}:{customer.id}",
                    message,
                    f"campaign:{draft.id}",
                )
                for customer in customers
            ],
            now,
            self._program.contact,
        )
        await CampaignRepository(tx).mark_sent(draft.id, promoted.queued, now)
        await AuditLog(tx).record(
            owner.label,
            "campaign",
            now,
            subject=f"campaign:{draft.id}",
            audience=draft.audience,
            queued=promoted.queued,
            capped=promoted.capped,
        )
        sent = await CampaignRepository(tx).by_id(draft.id)
        assert sent is not None
        return CampaignSent(sent, promoted.queued, promoted.capped)

    async def cancel(self, owner: Actor, campaign_id: int) -> Campaign | Refused:
        if refused := await permitted(self._db, self._clock, owner, Action.CAMPAIGN):
            return refused
        async with self._db.transaction() as tx:
            draft = await self._draft(tx, owner, campaign_id)
            if isinstance(draft, Refused):
                return draft
            await CampaignRepository(tx).cancel(campaign_id)
            return draft

    async def recent(self) -> list[CampaignReport]:
        now = self._clock.now()
        async with self._db.reading() as tx:
            campaigns = CampaignRepository(tx)
            reports = []
            for campaign in await campaigns.sent(CAMPAIGNS_SHOWN):
                assert campaign.sent_at is not None
                until = min(now, campaign.sent_at + timedelta(days=FOLLOWED_DAYS))
                reports.append(CampaignReport(campaign, await campaigns.counts(campaign, until)))
            return reports

    async def _draft(
        self, tx: Transaction, owner: Actor, campaign_id: int, *, written: bool = False
    ) -> Campaign | Refused:
        """The owner's draft; `written`: with its message and audience chosen."""
        campaign = await CampaignRepository(tx).by_id(campaign_id)
        if campaign is None or campaign.created_by != owner.label:
            return Refused("campaign_unknown")
        if campaign.status != "draft":
            return Refused("campaign_not_draft")
        if written and (campaign.text is None or campaign.audience is None):
            return Refused("campaign_unknown")
        return campaign

    def _message(self, campaign: Campaign, now: datetime) -> PushMessage:
        coupon = (
            {
                "percent_off": campaign.coupon_percent,
                "free_item": None,
                "valid_until": (
                    now + timedelta(days=self._program.birthday.valid_days)
                ).isoformat(),
            }
            if campaign.coupon_percent is not None
            else None
        )
        return PushMessage(
            "campaigns/message",
            {"text": campaign.text, "shop": self._program.shop.name, "coupon": coupon},
            opt_out=True,
            photo_of=campaign.id if campaign.has_photo else None,
        )

    def _filter(self, audience: str, now: datetime) -> AudienceFilter:
        kind, _, value = audience.partition(":")
        if kind == "tier":
            tiers = self._program.tiers
            index = next(i for i, tier in enumerate(tiers) if tier.key == value)
            high = tiers[index + 1].threshold if index + 1 < len(tiers) else None
            return audiences.in_tier(now - YEAR, tiers[index].threshold, high, index == 0)
        if kind == "flag":
            return audiences.flagged(value)
        if kind == "quadrant":
            lines = map_lines(self._program)
            return audiences.placed(QUADRANTS_SQL, lines.parameters(now, None), value)
        if kind == "idle":
            return audiences.idle_since(now - timedelta(days=int(value)))
        if kind == "birthday":
            return audiences.born_in(now.astimezone(self._zone).month)
        return audiences.everyone()
