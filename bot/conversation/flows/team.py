"""The owner's team and corrections: /staff (a one-time invitation link, a tap to remove each
member), /coupon and /adjust."""

from __future__ import annotations

from collections.abc import AsyncIterator

from bot.conversation.flows.joining import STAFF_LINK, team_changed
from bot.conversation.replies import Option, Reply, rows
from bot.conversation.router import Router
from bot.conversation.turn import Turn
from bot.domain.models import Refused
from bot.domain.parsing import whole_number
from bot.domain.permissions import Action
from bot.domain.rewards import COUPON_USAGE
from bot.taps import StaffInviteButton, StaffRemoveButton

router = Router()


@router.command("staff", needs=Action.STAFF)
async def staff(turn: Turn) -> AsyncIterator[Reply]:
    members = await turn.services.staff.members()
    remove = turn.label("remove")
    options = [turn.option("invite_staff", StaffInviteButton())] + [
        Option(f"{remove} {member.name}", StaffRemoveButton(member.id)) for member in members
    ]
    # An app's list holds so many options: the invitation and the first members.
    shown = options[: turn.said.surface.most_options]
    yield Reply(
        "staff/list",
        turn.language,
        {"members": members},
        options=rows(shown),
    )


@router.tap(StaffInviteButton, needs=Action.STAFF)
async def invite(turn: Turn) -> AsyncIterator[Reply]:
    invite = await turn.services.staff.invite(turn.actor)
    if isinstance(invite, Refused):
        yield turn.refused(invite)
        return
    link = turn.said.surface.link(STAFF_LINK + invite.token)
    yield turn.reply("staff/invite_link", link=link, expires_at=invite.expires_at)


@router.tap(StaffRemoveButton, needs=Action.STAFF)
async def remove(turn: Turn) -> AsyncIterator[Reply]:
    assert isinstance(turn.tap, StaffRemoveButton)
    removed = await turn.services.staff.remove(turn.actor, turn.tap.member_id)
    if removed is None or isinstance(removed, Refused):
        yield turn.refused(removed or Refused("staff_unknown"))
        return
    yield turn.reply("staff/removed", member=removed)
    await team_changed(turn, removed.identity, None)


@router.command("coupon", needs=Action.COUPON)
async def coupon(turn: Turn) -> AsyncIterator[Reply]:
    """/coupon <member code or phone> <percent off> [days valid]"""
    key = f"coupon:{turn.said.key}"
    granted = await turn.services.rewards.grant_typed(turn.actor, turn.args, key)
    if granted is None:
        return  # this very message granted it already
    if isinstance(granted, Refused):
        yield (
            turn.reply("coupons/usage")
            if granted.problem == COUPON_USAGE
            else turn.refused(granted)
        )
        return
    yield turn.reply("coupons/granted", customer=granted.customer, coupon=granted.coupon)


@router.command("adjust", needs=Action.ADJUST)
async def adjust(turn: Turn) -> AsyncIterator[Reply]:
    """/adjust <member code or phone> <+points or -points> <reason>"""
    args = turn.args
    delta = whole_number(args[1], signed=True) if len(args) >= 2 else None
    if delta is None:
        yield turn.reply("adjustments/usage")
        return
    outcome = await turn.services.adjustments.adjust(
        turn.actor, args[0], delta, " ".join(args[2:]), f"adjust:{turn.said.key}"
    )
    if isinstance(outcome, Refused):
        yield turn.refused(outcome)
        return
    yield turn.reply("adjustments/done", adjusted=outcome)
