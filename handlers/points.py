"""/balance and /rewards: where the member stands and what their points buy."""

from __future__ import annotations

from telegram import Update

from bot.domain.models import Customer
from handlers.context import Context, for_members, reply, services


@for_members
async def balance(update: Update, context: Context, customer: Customer) -> None:
    standing = await services(context).membership.standing(customer)
    await reply(
        update, context, customer.language, "balance", standing=standing, name=customer.name
    )


@for_members
async def rewards(update: Update, context: Context, customer: Customer) -> None:
    standing = await services(context).membership.standing(customer)
    await reply(update, context, customer.language, "rewards", standing=standing)
