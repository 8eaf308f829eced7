"""/start, the joining conversation and /cancel: Telegram updates in, registration answers out."""

from __future__ import annotations

from telegram import InlineKeyboardMarkup, KeyboardButton, Update

from bot.domain.models import Customer, Language, RegistrationStep
from bot.domain.registration import (
    AlreadyMember,
    Answer,
    AnswerOutcome,
    ConsentAnswer,
    ContactAnswer,
    NotRegistering,
    Prompt,
    Registered,
    SkipAnswer,
    TextAnswer,
)
from bot.taps import ConsentButton
from handlers.telegram.buttons import inline
from handlers.telegram.cards import send_member_card
from handlers.telegram.context import (
    Context,
    Markup,
    identity_of,
    no_keyboard,
    one_time_keyboard,
    reply,
)


async def begin(update: Update, context: Context, referral_code: str | None) -> None:
    """/start from a customer: join (remembering who referred them), resume, or see the menu."""
    user = update.effective_user
    if user is None:
        return
    outcome = await context.services.registration.start(
        identity_of(user), context.language, user.first_name, referral_code
    )
    if isinstance(outcome, AlreadyMember):
        if outcome.referral_note:
            await reply(
                update, context, outcome.customer.language, f"referral/{outcome.referral_note}"
            )
        await show_menu(update, context, outcome.customer)
        return
    language = outcome.draft.language
    messages = context.services.messages
    note = outcome.referral_note
    await reply(
        update,
        context,
        language,
        "registration/welcome",
        shop=context.services.program.shop.name,
        referral_note=messages.render(language, f"referral/{note}") if note else None,
    )
    await ask(update, context, outcome)


async def on_message(update: Update, context: Context) -> None:
    """Plain text or a shared contact: an answer to the current registration question."""
    message = update.effective_message
    user = update.effective_user
    if message is None or user is None:
        return
    answer: Answer
    if message.contact is not None:
        answer = ContactAnswer(message.contact.phone_number, message.contact.user_id == user.id)
    elif message.text is not None and _is_skip(context, message.text):
        answer = SkipAnswer()
    else:
        answer = TextAnswer(message.text or "")
    await _show(
        update, context, await context.services.registration.answer(identity_of(user), answer)
    )


async def on_consent(update: Update, context: Context) -> None:
    query = update.callback_query
    user = update.effective_user
    if query is None or user is None:
        return
    await query.answer()
    granted = ConsentButton.parse(query.data).answer == "yes"
    outcome = await context.services.registration.answer(identity_of(user), ConsentAnswer(granted))
    if isinstance(outcome, Registered):
        await query.edit_message_reply_markup(reply_markup=None)
    await _show(update, context, outcome)


async def cancel(update: Update, context: Context) -> None:
    user = update.effective_user
    if user is None:
        return
    cancelled = await context.services.registration.cancel(identity_of(user))
    template = "registration/cancelled" if cancelled else "registration/nothing_to_cancel"
    await reply(update, context, context.language, template, no_keyboard())


async def _show(update: Update, context: Context, outcome: AnswerOutcome) -> None:
    if isinstance(outcome, Prompt):
        await ask(update, context, outcome)
    elif isinstance(outcome, Registered):
        await _welcome(update, context, outcome)
    elif isinstance(outcome, AlreadyMember):
        await show_menu(update, context, outcome.customer)
    elif isinstance(outcome, NotRegistering):
        await reply(update, context, context.language, "not_a_member")


async def ask(update: Update, context: Context, prompt: Prompt) -> None:
    """The current question, after the reason the last answer was refused, if it was."""
    draft = prompt.draft
    language = draft.language
    messages = context.services.messages
    markup: Markup = None
    if draft.step is RegistrationStep.NAME:
        markup = (
            one_time_keyboard([[draft.suggested_name]]) if draft.suggested_name else no_keyboard()
        )
    elif draft.step is RegistrationStep.PHONE:
        share = KeyboardButton(messages.label(language, "share_phone"), request_contact=True)
        markup = one_time_keyboard([[share], [messages.label(language, "skip")]])
    elif draft.step is RegistrationStep.BIRTHDAY:
        markup = one_time_keyboard([[messages.label(language, "skip")]])
    else:
        markup = InlineKeyboardMarkup(
            [
                [
                    inline(messages.label(language, "yes"), ConsentButton("yes")),
                    inline(messages.label(language, "no"), ConsentButton("no")),
                ]
            ]
        )
        if prompt.problem is None:
            # The birthday keyboard would linger under an inline question; close it first.
            await reply(update, context, language, "registration/noted", no_keyboard())
    await reply(
        update,
        context,
        language,
        f"registration/ask_{draft.step.value}",
        markup,
        problem=messages.render(language, f"problems/{prompt.problem}") if prompt.problem else None,
        suggested_name=draft.suggested_name,
    )


async def _welcome(update: Update, context: Context, registered: Registered) -> None:
    customer = registered.customer
    await reply(
        update,
        context,
        customer.language,
        "registration/done",
        no_keyboard(),
        name=customer.name,
        shop=context.services.program.shop.name,
        consented=customer.promotions_consent,
        referrer_name=registered.referrer.name if registered.referrer else None,
    )
    await send_member_card(update, context, customer)


async def show_menu(update: Update, context: Context, customer: Customer) -> None:
    await reply(update, context, customer.language, "menu", no_keyboard(), name=customer.name)


def _is_skip(context: Context, text: str) -> bool:
    messages = context.services.messages
    return text.strip() in {messages.label(language, "skip") for language in Language}
