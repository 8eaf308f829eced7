"""/broadcast: the owner writes a campaign, taps who gets it and whether it carries a coupon,
sees the count and a preview, and confirms; /campaigns: how the last ones did."""

from __future__ import annotations

from telegram import InlineKeyboardMarkup, Update

from bot.domain.campaigns import COUPON_CHOICES, CampaignSent, Preview
from bot.domain.models import Actor, Refused, Role
from bot.taps import CampaignButton
from handlers.telegram.buttons import inline
from handlers.telegram.context import Context, for_owner, refuse, reply, with_actor


@for_owner
async def broadcast(update: Update, context: Context, actor: Actor) -> None:
    await context.services.campaigns.start(actor)
    await reply(update, context, context.language, "campaigns/write")


async def on_text(update: Update, context: Context, text: str) -> bool:
    """The campaign's message, when the owner was asked for one; False otherwise."""
    return await _written(update, context, text, None)


async def on_photo(update: Update, context: Context) -> None:
    """A photo with its caption, as the campaign's message; any other photo is not for us."""
    message = update.effective_message
    if message is None or not message.photo:
        return
    if context.identity not in context.services.staff.owners:
        return
    if not await context.services.campaigns.waiting_for_text(await context.actor()):
        return
    largest = await context.bot.get_file(message.photo[-1].file_id)
    photo = bytes(await largest.download_as_bytearray())
    await _written(update, context, message.caption or "", photo)


async def _written(update: Update, context: Context, text: str, photo: bytes | None) -> bool:
    if context.identity not in context.services.staff.owners:
        return False
    actor = await context.actor()
    campaigns = context.services.campaigns
    if actor.role is not Role.OWNER or not await campaigns.waiting_for_text(actor):
        return False
    written = await campaigns.write(actor, text, photo)
    if isinstance(written, Refused):
        await refuse(update, context, written)
        return True
    messages, language = context.services.messages, context.language
    keyboard = InlineKeyboardMarkup(
        [
            [
                inline(
                    messages.plain(language, "campaigns/audience_name", choice=choice),
                    CampaignButton(written.id, "audience", choice.code),
                )
            ]
            for choice in campaigns.audiences()
        ]
    )
    await reply(update, context, language, "campaigns/audience", keyboard)
    return True


@with_actor
async def on_campaign_button(update: Update, context: Context, actor: Actor) -> None:
    query = update.callback_query
    assert query is not None
    button = CampaignButton.parse(query.data)
    await query.answer()
    campaigns = context.services.campaigns
    language = context.language
    if button.step == "audience":
        chosen = await campaigns.choose_audience(actor, button.campaign_id, button.value)
        if isinstance(chosen, Refused):
            await refuse(update, context, chosen)
            return
        label = context.services.messages.label(language, "no_coupon")
        keyboard = InlineKeyboardMarkup(
            [
                [inline(label, CampaignButton(chosen.id, "coupon", "0"))],
                [
                    inline(f"{percent}%", CampaignButton(chosen.id, "coupon", str(percent)))
                    for percent in COUPON_CHOICES
                ],
            ]
        )
        await reply(update, context, language, "campaigns/coupon", keyboard)
    elif button.step == "coupon":
        percent = int(button.value) if button.value.isdigit() else -1  # -1: not a choice
        preview = await campaigns.choose_coupon(actor, button.campaign_id, percent or None)
        await _show_preview(update, context, preview)
    elif button.step == "send":
        await _report_sent(update, context, await campaigns.send(actor, button.campaign_id))
    else:
        cancelled = await campaigns.cancel(actor, button.campaign_id)
        if isinstance(cancelled, Refused):
            await refuse(update, context, cancelled)
            return
        await reply(update, context, language, "campaigns/cancelled")


async def _show_preview(update: Update, context: Context, preview: Preview | Refused) -> None:
    if isinstance(preview, Refused):
        await refuse(update, context, preview)
        return
    language = context.language
    messages = context.services.messages
    campaign = preview.campaign
    keyboard = InlineKeyboardMarkup(
        [
            [
                inline(
                    messages.label(language, "campaign_send"), CampaignButton(campaign.id, "send")
                ),
                inline(messages.label(language, "cancel"), CampaignButton(campaign.id, "cancel")),
            ]
        ]
    )
    sample = messages.render(language, preview.message.template, **preview.message.context)
    if preview.photo is not None and preview.recipients:  # the photo, as they will see it
        chat = update.effective_chat
        assert chat is not None
        await context.bot.send_photo(chat.id, preview.photo)
    await reply(
        update,
        context,
        language,
        "campaigns/preview",
        keyboard if preview.recipients else None,
        recipients=preview.recipients,
        sample=sample,
    )


async def _report_sent(update: Update, context: Context, sent: CampaignSent | Refused) -> None:
    if isinstance(sent, Refused):
        await refuse(update, context, sent)
        return
    await reply(
        update, context, context.language, "campaigns/sent", queued=sent.queued, capped=sent.capped
    )


@for_owner
async def campaigns(update: Update, context: Context, actor: Actor) -> None:
    del actor  # owners only
    reports = await context.services.campaigns.recent()
    await reply(update, context, context.language, "campaigns/list", reports=reports)
