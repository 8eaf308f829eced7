"""Telegram handlers: they turn updates into calls on the domain and render the replies.

No rule and no SQL lives here; see bot/domain and bot/storage.
"""

from __future__ import annotations

from telegram import Update
from telegram.ext import (
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    TypeHandler,
    filters,
)

from handlers import (
    cards,
    churn,
    counter,
    help_menu,
    insights,
    plumbing,
    points,
    privacy,
    redeem,
    registration,
    staff_admin,
    start,
    surveys,
)
from handlers.context import BotApplication

# bot.polling fetches the next batch of updates once this one is handled. These reports take
# seconds in a large shop and only read (through their own connection), so they run beside
# the batch instead of holding up every customer who wrote after the owner.
LONG_REPORTS = frozenset({"stats", "export"})


def register_handlers(application: BotApplication) -> None:
    application.add_handler(TypeHandler(Update, plumbing.guard_flood), group=-1)
    private = filters.ChatType.PRIVATE
    commands = {
        "start": start.start,
        "cancel": registration.cancel,
        "help": help_menu.help_command,
        "balance": points.balance,
        "rewards": points.rewards,
        "card": cards.card,
        "invite": cards.invite,
        "language": privacy.language,
        "notifications": privacy.notifications,
        "mydata": privacy.my_data,
        "forget": privacy.forget,
        "sale": counter.sale,
        "void": counter.void,
        "customer": counter.customer,
        "redeem": redeem.redeem,
        "staff": staff_admin.staff,
        "coupon": staff_admin.coupon,
        "adjust": staff_admin.adjust,
        "churn": churn.churn,
        "stats": insights.stats,
        "export": insights.export,
    }
    for name, callback in commands.items():
        beside = name in LONG_REPORTS
        application.add_handler(
            CommandHandler(
                name,
                plumbing.beside_the_update(callback) if beside else callback,
                filters=private,
                block=not beside,
            )
        )
    application.add_handler(MessageHandler(private & filters.COMMAND, plumbing.unknown_command))
    application.add_handler(
        MessageHandler(private & (filters.TEXT | filters.CONTACT), start.on_message)
    )
    buttons = {
        registration.CONSENT_CALLBACK: registration.on_consent,
        privacy.LANGUAGE_CALLBACK: privacy.on_language,
        privacy.NOTIFICATIONS_CALLBACK: privacy.on_notifications,
        privacy.FORGET_CALLBACK: privacy.on_forget,
        counter.SALE_CALLBACK: counter.on_sale_button,
        redeem.REWARD_CALLBACK: redeem.on_reward,
        redeem.COUPON_CALLBACK: redeem.on_coupon,
        redeem.REDEEM_CALLBACK: redeem.on_redeem,
        staff_admin.STAFF_CALLBACK: staff_admin.on_staff_button,
        surveys.SURVEY_CALLBACK: surveys.on_survey_button,
        churn.WINBACK_CALLBACK: churn.on_winback,
    }
    for pattern, callback in buttons.items():
        application.add_handler(CallbackQueryHandler(callback, pattern=pattern))
    application.add_handler(CallbackQueryHandler(plumbing.stale_button))
    application.add_error_handler(plumbing.report_error)
