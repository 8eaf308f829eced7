"""The member's control over their data and what they receive: /language, /notifications,
/mydata and /forget."""

from __future__ import annotations

import json

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode

from bot.domain.models import ConsentTopic, Customer, Language
from handlers.context import Context, for_members, identity_of, no_keyboard, reply, services

LANGUAGE_CALLBACK = r"^language:(es|en)$"
NOTIFICATIONS_CALLBACK = r"^notify:(promotions|surveys):(on|off)$"
FORGET_CALLBACK = r"^forget:(yes|no)$"


@for_members
async def language(update: Update, context: Context, customer: Customer) -> None:
    messages = services(context).messages
    buttons = [
        InlineKeyboardButton(
            messages.label(option, "language_name"), callback_data=f"language:{option.value}"
        )
        for option in Language
    ]
    await reply(
        update, context, customer.language, "language/choose", InlineKeyboardMarkup([buttons])
    )


@for_members
async def on_language(update: Update, context: Context, customer: Customer) -> None:
    query = update.callback_query
    assert query is not None
    assert query.data is not None
    chosen = Language(query.data.split(":")[1])
    await services(context).membership.set_language(customer, chosen)
    await query.answer()
    text = services(context).messages.render(chosen, "language/changed")
    await query.edit_message_text(text, parse_mode=ParseMode.HTML)


def _notifications_keyboard(context: Context, customer: Customer) -> InlineKeyboardMarkup:
    messages = services(context).messages
    rows = []
    for topic, enabled in (
        (ConsentTopic.PROMOTIONS, customer.promotions_consent),
        (ConsentTopic.SURVEYS, customer.surveys_enabled),
    ):
        action = "off" if enabled else "on"
        label = messages.label(customer.language, f"{topic.value}_turn_{action}")
        rows.append([InlineKeyboardButton(label, callback_data=f"notify:{topic.value}:{action}")])
    return InlineKeyboardMarkup(rows)


def _notifications_text(context: Context, customer: Customer) -> str:
    return services(context).messages.render(
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
        parse_mode=ParseMode.HTML,
        reply_markup=_notifications_keyboard(context, customer),
    )


@for_members
async def on_notifications(update: Update, context: Context, customer: Customer) -> None:
    query = update.callback_query
    assert query is not None
    assert query.data is not None
    _, topic, action = query.data.split(":")
    membership = services(context).membership
    await membership.set_consent(customer, ConsentTopic(topic), action == "on")
    updated = await membership.member(identity_of(query.from_user))
    await query.answer()
    if updated is not None:
        await query.edit_message_text(
            _notifications_text(context, updated),
            parse_mode=ParseMode.HTML,
            reply_markup=_notifications_keyboard(context, updated),
        )


@for_members
async def my_data(update: Update, context: Context, customer: Customer) -> None:
    svc = services(context)
    quadrant = await svc.churn.quadrant_of(customer)
    document = await svc.membership.personal_data(customer, quadrant.value if quadrant else None)
    chat = update.effective_chat
    assert chat is not None
    await context.bot.send_document(
        chat.id,
        document=json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8"),
        filename="my-data.json",
        caption=services(context).messages.render(customer.language, "mydata"),
        parse_mode=ParseMode.HTML,
    )


@for_members
async def forget(update: Update, context: Context, customer: Customer) -> None:
    messages = services(context).messages
    keyboard = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    messages.label(customer.language, "forget_confirm"), callback_data="forget:yes"
                )
            ],
            [
                InlineKeyboardButton(
                    messages.label(customer.language, "forget_keep"), callback_data="forget:no"
                )
            ],
        ]
    )
    await reply(update, context, customer.language, "forget/confirm", keyboard)


@for_members
async def on_forget(update: Update, context: Context, customer: Customer) -> None:
    query = update.callback_query
    assert query is not None
    assert query.data is not None
    await query.answer()
    if query.data == "forget:yes":
        await services(context).membership.forget(customer, identity_of(query.from_user))
        template = "forget/done"
    else:
        template = "forget/kept"
    await query.edit_message_reply_markup(reply_markup=None)
    await reply(update, context, customer.language, template, no_keyboard())
