"""/broadcast: the owner writes a campaign (a photo with its caption too), taps who gets it
and whether it carries a coupon, sees the count and a preview, and confirms; /campaigns: how
the last ones did. More audiences than an app shows at once are picked in two steps: the
kind, then which one."""

from __future__ import annotations

from collections.abc import AsyncIterator

from bot.conversation.replies import Option, Reply, picture, rows
from bot.conversation.router import Router
from bot.conversation.turn import Turn
from bot.domain.campaigns import COUPON_CHOICES, AudienceChoice
from bot.domain.contact import QuietHours
from bot.domain.models import Refused
from bot.domain.permissions import MAY, Action
from bot.taps import CampaignButton

router = Router()


@router.command("broadcast", needs=Action.CAMPAIGN)
async def broadcast(turn: Turn) -> AsyncIterator[Reply]:
    started = await turn.services.campaigns.start(turn.actor)
    yield turn.refused(started) if isinstance(started, Refused) else turn.reply("campaigns/write")


@router.command("campaigns", needs=Action.CAMPAIGN)
async def recent(turn: Turn) -> AsyncIterator[Reply]:
    yield turn.reply("campaigns/list", reports=await turn.services.campaigns.recent())


async def _text_awaited(turn: Turn) -> bool:
    return turn.actor.role in MAY[Action.CAMPAIGN] and (
        await turn.services.campaigns.waiting_for_text(turn.actor)
    )


@router.state(_text_awaited, needs=Action.CAMPAIGN)
async def written(turn: Turn) -> AsyncIterator[Reply]:
    said, campaigns = turn.said, turn.services.campaigns
    photo = await said.photo() if said.photo else None
    draft = await campaigns.write(turn.actor, said.text, photo)
    if isinstance(draft, Refused):
        yield turn.refused(draft)
        return
    choices = campaigns.audiences()
    if len(choices) <= said.surface.most_options:
        options = [
            Option(_name(turn, choice), CampaignButton(draft.id, "audience", choice.code))
            for choice in choices
        ]
    else:
        kinds: dict[str, AudienceChoice] = {}
        for choice in choices:
            kinds.setdefault(choice.kind, choice)
        options = [
            Option(_name(turn, choice, kind_only=True), CampaignButton(draft.id, "kind", kind))
            if _several(turn, kind)
            else Option(_name(turn, choice), CampaignButton(draft.id, "audience", choice.code))
            for kind, choice in kinds.items()
        ]
    yield _audience(turn, options)


def _audience(turn: Turn, options: list[Option]) -> Reply:
    return Reply("campaigns/audience", turn.language, options=rows(options))


@router.tap(CampaignButton, needs=Action.CAMPAIGN)
async def tapped(turn: Turn) -> AsyncIterator[Reply]:
    tap = turn.tap
    assert isinstance(tap, CampaignButton)
    campaigns, actor, campaign_id = turn.services.campaigns, turn.actor, tap.campaign_id
    if tap.step == "kind":
        yield _audience(
            turn,
            [
                Option(_name(turn, choice), CampaignButton(campaign_id, "audience", choice.code))
                for choice in campaigns.audiences()
                if choice.kind == tap.value
            ],
        )
    elif tap.step == "audience":
        chosen = await campaigns.choose_audience(actor, campaign_id, tap.value)
        if isinstance(chosen, Refused):
            yield turn.refused(chosen)
            return
        none = turn.option("no_coupon", CampaignButton(campaign_id, "coupon", "0"))
        percents = tuple(
            Option(f"{percent}%", CampaignButton(campaign_id, "coupon", str(percent)))
            for percent in COUPON_CHOICES
        )
        yield Reply(
            "campaigns/coupon",
            turn.language,
            options=((none,), percents),
        )
    elif tap.step == "coupon":
        percent = int(tap.value) if tap.value.isdigit() else -1  # -1: not a choice
        async for reply in _preview(turn, campaign_id, percent):
            yield reply
    elif tap.step == "send":
        sent = await campaigns.send(actor, campaign_id)
        if isinstance(sent, Refused):
            yield turn.refused(sent)
            return
        services = turn.services
        quiet = QuietHours.of(services.program.contact, services.settings.zone)
        now = services.clock.now()
        starts = quiet.ends_after(now)
        yield turn.reply(
            "campaigns/sent",
            queued=sent.queued,
            capped=sent.capped,
            starts_at=starts if starts != now else None,
        )
    else:
        cancelled = await campaigns.cancel(actor, campaign_id)
        yield (
            turn.refused(cancelled)
            if isinstance(cancelled, Refused)
            else turn.reply("campaigns/cancelled")
        )


async def _preview(turn: Turn, campaign_id: int, percent: int) -> AsyncIterator[Reply]:
    preview = await turn.services.campaigns.choose_coupon(turn.actor, campaign_id, percent or None)
    if isinstance(preview, Refused):
        yield turn.refused(preview)
        return
    message = preview.message
    sample = turn.services.messages.render(turn.language, message.template, **message.context)
    options = (
        (
            turn.option("campaign_send", CampaignButton(campaign_id, "send")),
            turn.option("cancel", CampaignButton(campaign_id, "cancel")),
        ),
    )
    if preview.photo is not None and preview.recipients:  # the photo, as they will see it
        yield Reply("campaigns/photo", turn.language, photo=picture("campaign.jpg", preview.photo))
    yield Reply(
        "campaigns/preview",
        turn.language,
        {"recipients": preview.recipients, "sample": sample},
        options=options if preview.recipients else (),
    )


def _several(turn: Turn, kind: str) -> bool:
    return sum(choice.kind == kind for choice in turn.services.campaigns.audiences()) > 1


def _name(turn: Turn, choice: AudienceChoice, *, kind_only: bool = False) -> str:
    return turn.services.messages.plain(
        turn.language, "campaigns/audience_name", choice=choice, kind_only=kind_only
    )
