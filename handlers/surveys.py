"""Survey answers: a score from the buttons, then an optional reason; detractors reach the shop."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from bot.domain.models import Customer, Refused
from bot.domain.parsing import WHOLE_NUMBER_PATTERN
from bot.domain.surveys import Answered
from handlers.context import Context, for_members, identity_of, notify, reply, services

SURVEY_CALLBACK = rf"^survey:({WHOLE_NUMBER_PATTERN}):([0-9]{{1,2}}|skip)$"


@for_members
async def on_survey_button(update: Update, context: Context, customer: Customer) -> None:
    query = update.callback_query
    assert query is not None
    assert query.data is not None
    _, survey_id, choice = query.data.split(":")
    svc = services(context)
    if choice == "skip":
        await query.answer()
        await query.edit_message_reply_markup(reply_markup=None)
        skipped = await svc.surveys.give_reason(identity_of(query.from_user), None)
        if skipped is not None:
            await reply(update, context, customer.language, "surveys/thanks", gave_reason=False)
        return
    outcome = await svc.surveys.answer(identity_of(query.from_user), int(survey_id), int(choice))
    if isinstance(outcome, Refused):
        # An old or answered survey: a polite word, and its buttons go away.
        await query.answer(svc.messages.plain(customer.language, f"problems/{outcome.problem}"))
        await query.edit_message_reply_markup(reply_markup=None)
        return
    await query.answer()
    await query.edit_message_reply_markup(reply_markup=None)
    skip = svc.messages.label(customer.language, "skip")
    keyboard = InlineKeyboardMarkup(
        [[InlineKeyboardButton(skip, callback_data=f"survey:{survey_id}:skip")]]
    )
    await reply(
        update,
        context,
        customer.language,
        "surveys/ask_reason",
        keyboard,
        score=outcome.survey.score,
        detractor=outcome.detractor,
    )
    if outcome.detractor:
        await alert_team(context, outcome)


async def on_reason(update: Update, context: Context, text: str) -> bool:
    """A free-text reason after a score; False when none was awaited from this person."""
    user = update.effective_user
    if user is None:
        return False
    svc = services(context)
    answered = await svc.surveys.give_reason(identity_of(user), text)
    if answered is None:
        return False
    await reply(update, context, answered.customer.language, "surveys/thanks", gave_reason=True)
    if answered.detractor:
        # The team heard of the score already: this adds the customer's words.
        await alert_team(context, answered, "alerts/detractor_comment")
    return True


async def alert_team(
    context: Context, answered: Answered, template: str = "alerts/detractor"
) -> None:
    """Close the loop: owners and staff hear about an unhappy customer at once."""
    for identity, language in (await services(context).staff.team()).items():
        await notify(
            context,
            identity,
            language,
            template,
            customer=answered.customer,
            survey=answered.survey,
        )
