"""The Telegram channel: handlers turn updates into calls on the core and render the replies.

No rule and no SQL lives here; see bot/domain and bot/storage.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from telegram import Update
from telegram.ext import (
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot import taps
from handlers.telegram import (
    campaigns,
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
from handlers.telegram.context import BotApplication, Context

# The poller fetches the next batch of updates once this one is handled. These reports take
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
        "link": privacy.link,
        "sale": counter.sale,
        "void": counter.void,
        "customer": counter.customer,
        "redeem": redeem.redeem,
        "staff": staff_admin.staff,
        "coupon": staff_admin.coupon,
        "adjust": staff_admin.adjust,
        "churn": churn.churn,
        "broadcast": campaigns.broadcast,
        "campaigns": campaigns.campaigns,
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
    application.add_handler(MessageHandler(private & filters.PHOTO, campaigns.on_photo))
    answers: dict[type[taps.Button], Callable[[Update, Context], Coroutine[Any, Any, None]]] = {
        taps.ConsentButton: registration.on_consent,
        taps.LanguageButton: privacy.on_language,
        taps.NotificationsButton: privacy.on_notifications,
        taps.ForgetButton: privacy.on_forget,
        taps.SaleButton: counter.on_sale_button,
        taps.RewardButton: redeem.on_reward,
        taps.CouponButton: redeem.on_coupon,
        taps.RedeemButton: redeem.on_redeem,
        taps.StaffInviteButton: staff_admin.on_invite_button,
        taps.StaffRemoveButton: staff_admin.on_remove_button,
        taps.SurveyButton: surveys.on_survey_button,
        taps.WinbackButton: churn.on_winback,
        taps.FollowUpButton: churn.on_follow_up,
        taps.CampaignButton: campaigns.on_campaign_button,
    }
    for kind, callback in answers.items():
        application.add_handler(CallbackQueryHandler(callback, pattern=kind.pattern()))
    application.add_handler(CallbackQueryHandler(plumbing.stale_button))
    application.add_error_handler(plumbing.report_error)
