"""Campaigns on WhatsApp: `difundir` (or /broadcast) as on Telegram. The audiences are picked in
two lists (the kind, then which one), since a WhatsApp list holds ten rows."""

from __future__ import annotations

from bot.domain.campaigns import COUPON_CHOICES, AudienceChoice, CampaignSent, Preview
from bot.domain.models import Actor, Identity, Language, Refused, Role
from bot.taps import CampaignButton
from handlers.whatsapp.channel import Option
from handlers.whatsapp.replies import Replies

WORDS = frozenset({"/broadcast", "difundir", "campaña", "campana", "/campaigns", "campañas"})
LISTING = frozenset({"/campaigns", "campañas"})
CAMPAIGN = "campaign:"


class Campaigns:
    def __init__(self, replies: Replies) -> None:
        self._replies = replies
        self._services = replies.services

    async def command(self, to: Identity, language: Language, actor: Actor, word: str) -> None:
        if actor.role is not Role.OWNER:
            await self._services.staff.refuse(actor, f"owner:{word}")
            await self._replies.say(to, language, "not_allowed")
            return
        campaigns = self._services.campaigns
        if word in LISTING:
            await self._replies.say(
                to, language, "campaigns/list", reports=await campaigns.recent()
            )
            return
        await campaigns.start(actor)
        await self._replies.say(to, language, "campaigns/write")

    async def text(self, to: Identity, language: Language, actor: Actor, text: str) -> bool:
        """The campaign's message, when the owner was asked for one; False otherwise."""
        campaigns = self._services.campaigns
        if actor.role is not Role.OWNER or not await campaigns.waiting_for_text(actor):
            return False
        written = await campaigns.write(actor, text)
        if isinstance(written, Refused):
            await self._replies.refuse(to, language, written)
            return True
        kinds: dict[str, AudienceChoice] = {}
        for choice in campaigns.audiences():
            kinds.setdefault(choice.kind, choice)
        options = [
            Option(
                CampaignButton(written.id, "kind", kind).pack()
                if self._several(kind)
                else CampaignButton(written.id, "audience", choice.code).pack(),
                self._name(language, choice, kind_only=self._several(kind)),
            )
            for kind, choice in kinds.items()
        ]
        await self._replies.say(to, language, "campaigns/audience", options)
        return True

    async def tapped(self, to: Identity, language: Language, actor: Actor, choice: str) -> None:
        if actor.role is not Role.OWNER:
            await self._services.staff.refuse(actor, "owner:campaign")
            await self._replies.say(to, language, "not_allowed")
            return
        tap = CampaignButton.parse(choice)  # decoded before it was routed here
        campaign_id, step, value = tap.campaign_id, tap.step, tap.value
        campaigns = self._services.campaigns
        if step == "kind":
            options = [
                Option(
                    CampaignButton(campaign_id, "audience", c.code).pack(), self._name(language, c)
                )
                for c in campaigns.audiences()
                if c.kind == value
            ]
            await self._replies.say(to, language, "campaigns/audience", options)
        elif step == "audience":
            chosen = await campaigns.choose_audience(actor, campaign_id, value)
            if isinstance(chosen, Refused):
                await self._replies.refuse(to, language, chosen)
                return
            none = Option(
                CampaignButton(campaign_id, "coupon", "0").pack(),
                self._replies.label(language, "no_coupon"),
            )
            options = [none] + [
                Option(CampaignButton(campaign_id, "coupon", str(percent)).pack(), f"{percent}%")
                for percent in COUPON_CHOICES
            ]
            await self._replies.say(to, language, "campaigns/coupon", options)
        elif step == "coupon" and value.isdigit():
            preview = await campaigns.choose_coupon(actor, campaign_id, int(value) or None)
            await self._preview(to, language, campaign_id, preview)
        elif step == "send":
            await self._sent(to, language, await campaigns.send(actor, campaign_id))
        elif step == "cancel":
            cancelled = await campaigns.cancel(actor, campaign_id)
            if isinstance(cancelled, Refused):
                await self._replies.refuse(to, language, cancelled)
                return
            await self._replies.say(to, language, "campaigns/cancelled")
        else:
            await self._replies.refuse(to, language, Refused("campaign_unknown"))

    async def _preview(
        self, to: Identity, language: Language, campaign_id: int, preview: Preview | Refused
    ) -> None:
        if isinstance(preview, Refused):
            await self._replies.refuse(to, language, preview)
            return
        messages = self._services.messages
        sample = messages.render(language, preview.message.template, **preview.message.context)
        options = [
            Option(
                CampaignButton(campaign_id, "send").pack(),
                self._replies.label(language, "campaign_send"),
            ),
            Option(
                CampaignButton(campaign_id, "cancel").pack(),
                self._replies.label(language, "cancel"),
            ),
        ]
        await self._replies.say(
            to,
            language,
            "campaigns/preview",
            options if preview.recipients else None,
            recipients=preview.recipients,
            sample=sample,
        )

    async def _sent(self, to: Identity, language: Language, sent: CampaignSent | Refused) -> None:
        if isinstance(sent, Refused):
            await self._replies.refuse(to, language, sent)
            return
        await self._replies.say(
            to, language, "campaigns/sent", queued=sent.queued, capped=sent.capped
        )

    def _several(self, kind: str) -> bool:
        return sum(c.kind == kind for c in self._services.campaigns.audiences()) > 1

    def _name(self, language: Language, choice: AudienceChoice, *, kind_only: bool = False) -> str:
        messages = self._services.messages
        return messages.plain(
            language, "campaigns/audience_name", choice=choice, kind_only=kind_only
        )
