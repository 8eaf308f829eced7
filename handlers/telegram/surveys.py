"""Survey answers: a score from the buttons, then an optional reason; detractors reach the shop."""

from __future__ import annotations

from telegram import InlineKeyboardMarkup, Update

from bot.domain.models import Customer, Refused
from bot.taps import SurveyButton
from handlers.telegram.buttons import inline
from handlers.telegram.context import Context, for_members, identity_of, reply


@for_members
async def on_survey_button(update: Update, context: Context, customer: Customer) -> None:
    query = update.callback_query
    assert query is not None
    button = SurveyButton.parse(query.data)
    svc = context.services
    if button.answer == SurveyButton.SKIP:
        await query.answer()
        await query.edit_message_reply_markup(reply_markup=None)
        skipped = await svc.surveys.give_reason(identity_of(query.from_user), None)
        if skipped is not None:
            await reply(update, context, customer.language, "surveys/thanks", gave_reason=False)
        return
    outcome = await svc.surveys.answer(
        identity_of(query.from_user), button.survey_id, int(button.answer)
    )
    if isinstance(outcome, Refused):
        # An old or answered survey: a polite word, and its buttons go away.
        await query.answer(svc.messages.plain(customer.language, f"problems/{outcome.problem}"))
        await query.edit_message_reply_markup(reply_markup=None)
        return
    await query.answer()
    await query.edit_message_reply_markup(reply_markup=None)
    skip = svc.messages.label(customer.language, "skip")
    keyboard = InlineKeyboardMarkup(
        [[inline(skip, SurveyButton(button.survey_id, SurveyButton.SKIP))]]
    )
    await reply(
        update,
        context,
        customer.language,
        "surveys/ask_reason",
        keyboard,
        score=outcome.survey.score,
        detractor=outcome.detractor,
        ask_what_would_help=outcome.ask_what_would_help,
    )


async def on_reason(update: Update, context: Context, text: str) -> bool:
    """A free-text reason after a score; False when none was awaited from this person."""
    user = update.effective_user
    if user is None:
        return False
    svc = context.services
    answered = await svc.surveys.give_reason(identity_of(user), text)
    if answered is None:
        return False
    await reply(update, context, answered.customer.language, "surveys/thanks", gave_reason=True)
    return True
