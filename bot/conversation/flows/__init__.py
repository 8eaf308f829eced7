"""Every conversation a person has with the bot, each declared once (bot/conversation/router.py
says how a message finds its flow)."""

from bot.conversation.flows import (
    campaigns,
    churn,
    counter,
    joining,
    membership,
    privacy,
    reports,
    surveys,
    team,
)
from bot.conversation.router import Router

ROUTER = Router()
# Within each kind of match the first declared wins: the campaign's text and an awaited
# amount before a registration's answer, a survey's reason last.
ROUTER.include(
    campaigns.router,
    counter.router,
    joining.router,
    membership.router,
    privacy.router,
    team.router,
    churn.router,
    reports.router,
    surveys.router,
)
