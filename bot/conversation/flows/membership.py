"""A member's own: /balance, /rewards (a reward or a coupon chosen becomes a one-time code
with its QR, for staff to scan), /card and /invite."""

from __future__ import annotations

from collections.abc import AsyncIterator

from bot.conversation.flows.joining import REFERRAL_LINK, member_card
from bot.conversation.replies import Option, Photo, Reply, rows
from bot.conversation.router import MEMBER, Router
from bot.conversation.turn import Turn
from bot.domain.models import Redemption, Refused
from bot.qr import qr_png
from bot.taps import CouponButton, RewardButton

router = Router()

REDEMPTION_LINK = "r_"


@router.command("balance", needs=MEMBER)
async def balance(turn: Turn) -> AsyncIterator[Reply]:
    assert turn.member is not None
    standing = await turn.services.membership.standing(turn.member)
    yield Reply("balance", turn.member.language, {"standing": standing, "name": turn.member.name})


@router.command("rewards", needs=MEMBER)
async def rewards(turn: Turn) -> AsyncIterator[Reply]:
    """The catalogue and open coupons, with an option for each one the member can use now."""
    member, services = turn.member, turn.services
    assert member is not None
    language = member.language
    standing = await services.membership.standing(member)
    coupons = await services.rewards.open_coupons(member)
    plain = services.messages.plain
    options = [
        Option(
            plain(language, "rewards_button", reward=option.reward), RewardButton(option.reward.key)
        )
        for option in standing.affordable
    ] + [
        Option(plain(language, "coupons/button", coupon=coupon), CouponButton(coupon.id))
        for coupon in coupons
    ]
    yield Reply(
        "rewards",
        language,
        {"standing": standing, "coupons": coupons},
        options=rows(options),
    )


@router.tap(RewardButton, needs=MEMBER)
async def reward_chosen(turn: Turn) -> AsyncIterator[Reply]:
    assert isinstance(turn.tap, RewardButton) and turn.member is not None
    yield _code(turn, await turn.services.rewards.request_reward(turn.member, turn.tap.key))


@router.tap(CouponButton, needs=MEMBER)
async def coupon_chosen(turn: Turn) -> AsyncIterator[Reply]:
    assert isinstance(turn.tap, CouponButton) and turn.member is not None
    outcome = await turn.services.rewards.request_coupon(turn.member, turn.tap.coupon_id)
    yield _code(turn, outcome)


def _code(turn: Turn, outcome: Redemption | Refused) -> Reply:
    assert turn.member is not None
    language = turn.member.language
    if isinstance(outcome, Refused):
        return turn.refused(outcome, language)
    link = turn.said.surface.link(REDEMPTION_LINK + outcome.code)
    return Reply(
        "redeem/code",
        language,
        {
            "code": outcome.code,
            "reward": turn.services.rewards.reward_of(outcome),
            "expires_at": outcome.expires_at,
            "minutes": int((outcome.expires_at - outcome.created_at).total_seconds() // 60),
        },
        photo=Photo("redemption.png", lambda: qr_png(link)),
    )


@router.command("card", needs=MEMBER)
async def card(turn: Turn) -> AsyncIterator[Reply]:
    assert turn.member is not None
    yield await member_card(turn, turn.member)


@router.command("invite", needs=MEMBER)
async def invite(turn: Turn) -> AsyncIterator[Reply]:
    member = turn.member
    assert member is not None
    status = await turn.services.membership.referral_link(member)
    program = turn.services.program
    yield Reply(
        "invite",
        member.language,
        {
            "code": status.code,
            "link": turn.said.surface.link(REFERRAL_LINK + status.code),
            "friends_joined": status.friends_joined,
            "referrer_points": program.referral.referrer_points,
            "referred_points": program.referral.referred_points,
            "shop": program.shop.name,
        },
    )
