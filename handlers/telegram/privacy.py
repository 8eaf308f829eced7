"""The member's control over their data and what they receive: /language, /notifications,
/mydata and /forget."""

from __future__ import annotations

import json
from typing import Literal

from telegram import InlineKeyboardMarkup, Update

from bot.domain.models import ConsentTopic, Customer, Language
from bot.taps import ForgetButton, LanguageButton, NotificationsButton
from handlers.telegram.buttons import inline
from handlers.telegram.context import Context, for_members, identity_of, no_keyboard, reply


@for_members
async def language(update: Update, context: Context, customer: Customer) -> None:
    messages = context.services.messages
    buttons = [
        inline(messages.label(option, "language_name"), LanguageButton(option))
        for option in Language
    ]
    await reply(
        update, context, customer.language, "language/choose", InlineKeyboardMarkup([buttons])
    )


@for_members
async def on_language(update: Update, context: Context, customer: Customer) -> None:
    query = update.callback_query
    assert query is not None
    chosen = LanguageButton.parse(query.data).language
    await context.services.membership.set_language(customer, chosen)
    await query.answer()
    text = context.services.messages.render(chosen, "language/changed")
    await query.edit_message_text(text)


def _notifications_keyboard(context: Context, customer: Customer) -> InlineKeyboardMarkup:
    messages = context.services.messages
    rows = []
    for topic, enabled in (
        (ConsentTopic.PROMOTIONS, customer.promotions_consent),
        (ConsentTopic.SURVEYS, customer.surveys_enabled),
    ):
        action: Literal["on", "off"] = "off" if enabled else "on"
        label = messages.label(customer.language, f"{topic.value}_turn_{action}")
        rows.append([inline(label, NotificationsButton(topic, action))])
    return InlineKeyboardMarkup(rows)


def _notifications_text(context: Context, customer: Customer) -> str:
    return context.services.messages.render(
        customer.language,
        "notifications",
        promotions=customer.promotions_consent,
        surveys=customer.surveys_enabled,
    )


@for_members
async def notifications(update: Update, context: Context, customer: Customer) -> None:
    chat = update.effective_chat
    assert chat is not None
    await context.bot.send_message(
        chat.id,
        _notifications_text(context, customer),
        reply_markup=_notifications_keyboard(context, customer),
    )


@for_members
async def on_notifications(update: Update, context: Context, customer: Customer) -> None:
    query = update.callback_query
    assert query is not None
    button = NotificationsButton.parse(query.data)
    membership = context.services.membership
    await membership.set_consent(customer, button.topic, button.action == "on")
    updated = await membership.member(identity_of(query.from_user))
    await query.answer()
    if updated is not None:
        await query.edit_message_text(
            _notifications_text(context, updated),
            reply_markup=_notifications_keyboard(context, updated),
        )


@for_members
async def my_data(update: Update, context: Context, customer: Customer) -> None:
    svc = context.services
    quadrant = await svc.churn.quadrant_of(customer)
    document = await svc.membership.personal_data(customer, quadrant.value if quadrant else None)
    chat = update.effective_chat
    assert chat is not None
    await context.bot.send_document(
        chat.id,
        document=json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8"),
        filename="my-data.json",
        caption=context.services.messages.render(customer.language, "mydata"),
    )


@for_members
async def forget(update: Update, context: Context, customer: Customer) -> None:
    messages = context.services.messages
    keyboard = InlineKeyboardMarkup(
        [
            [inline(messages.label(customer.language, "forget_confirm"), ForgetButton("yes"))],
            [inline(messages.label(customer.language, "forget_keep"), ForgetButton("no"))],
        ]
    )
    await reply(update, context, customer.language, "forget/confirm", keyboard)


@for_members
async def on_forget(update: Update, context: Context, customer: Customer) -> None:
    query = update.callback_query
    assert query is not None
    await query.answer()
    if ForgetButton.parse(query.data).answer == "yes":
        await context.services.membership.forget(customer, identity_of(query.from_user))
        template = "forget/done"
    else:
        template = "forget/kept"
    await query.edit_message_reply_markup(reply_markup=None)
    await reply(update, context, customer.language, template, no_keyboard())


@for_members
async def link(update: Update, context: Context, customer: Customer) -> None:
    """/link: the WhatsApp number that wrote to the shop is this member's too."""
    linked = await context.services.membership.accept_link(customer)
    template = "whatsapp/link_done" if linked else "whatsapp/link_none"
    await reply(update, context, customer.language, template)
