"""The commands each kind of person has, in the order menus and /help list them."""

from __future__ import annotations

from bot.domain.models import Role

GUEST_COMMANDS = ("start", "help", "cancel")
MEMBER_COMMANDS = (
    "balance",
    "card",
    "rewards",
    "invite",
    "notifications",
    "language",
    "mydata",
    "forget",
    "help",
)
STAFF_COMMANDS = ("sale", "void", "redeem", "customer", "churn", "stats")
OWNER_COMMANDS = ("staff", "coupon", "adjust", "export", "broadcast", "campaigns")


def commands_for(role: Role, is_member: bool) -> tuple[str, ...]:
    names: tuple[str, ...] = MEMBER_COMMANDS if is_member else GUEST_COMMANDS
    if role in (Role.STAFF, Role.OWNER):
        names += STAFF_COMMANDS
    if role is Role.OWNER:
        names += OWNER_COMMANDS
    return names
