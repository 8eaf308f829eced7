"""Rewards on WhatsApp: a member picks a reward or a coupon from the list and gets a one-time
code with a QR; staff scan it (a wa.me link whose prefilled text carries the code) and confirm
with a tap. Points are taken only then; the customer's notice goes through the outbox."""

from __future__ import annotations

from collections.abc import Callable

from bot.domain.models import Actor, Customer, Identity, Language, Redemption, Refused
from bot.qr import qr_png
from handlers.whatsapp.channel import Option
from handlers.whatsapp.replies import Replies

REWARD, COUPON, REDEEM = "reward:", "coupon:", "redeem:"
CODE_TEXT = "r_"


class Rewards:
    def __init__(self, replies: Replies, link: Callable[[str], str]) -> None:
        """`link`: a wa.me link that opens a chat with the shop, a text typed in."""
        self._replies = replies
        self._link = link
        self._services = replies.services

    async def show(self, to: Identity, member: Customer) -> None:
        """The catalogue and open coupons; each one usable now as an option."""
        language = member.language
        standing = await self._services.membership.standing(member)
        coupons = await self._services.rewards.open_coupons(member)
        messages = self._services.messages
        options = [
            Option(
                f"{REWARD}{option.reward.key}",
                messages.plain(language, "rewards_button", reward=option.reward),
            )
            for option in standing.affordable
        ]
        options += [
            Option(
                f"{COUPON}{coupon.id}", messages.plain(language, "coupons/button", coupon=coupon)
            )
            for coupon in coupons
        ]
        await self._replies.say(
            to, language, "rewards", options, standing=standing, coupons=coupons
        )

    async def chosen(self, to: Identity, member: Customer, choice: str) -> None:
        rewards = self._services.rewards
        if choice.startswith(REWARD):
            outcome = await rewards.request_reward(member, choice.removeprefix(REWARD))
        else:
            outcome = await rewards.request_coupon(member, int(choice.removeprefix(COUPON)))
        await self._send_code(to, member, outcome)

    async def review(self, to: Identity, language: Language, code: str) -> None:
        """Staff scanned or typed a code: what it is for, and a tap to redeem it."""
        view = await self._services.rewards.view(code)
        if isinstance(view, Refused):
            await self._replies.refuse(to, language, view)
            return
        confirm = Option(
            f"{REDEEM}{view.redemption.code}", self._replies.label(language, "confirm_redemption")
        )
        await self._replies.say(to, language, "redeem/review", [confirm], view=view)

    async def redeem(self, to: Identity, language: Language, actor: Actor, choice: str) -> None:
        outcome = await self._services.rewards.confirm(actor, choice.removeprefix(REDEEM))
        if isinstance(outcome, Refused):
            await self._replies.refuse(to, language, outcome)
            return
        await self._replies.say(to, language, "redeem/done", view=outcome)

    async def _send_code(
        self, to: Identity, member: Customer, outcome: Redemption | Refused
    ) -> None:
        if isinstance(outcome, Refused):
            await self._replies.refuse(to, member.language, outcome)
            return
        caption = self._services.messages.render(
            member.language,
            "redeem/code",
            code=outcome.code,
            reward=self._services.rewards.reward_of(outcome),
            expires_at=outcome.expires_at,
            minutes=int((outcome.expires_at - outcome.created_at).total_seconds() // 60),
        )
        await self._replies.photo(to, qr_png(self._link(f"{CODE_TEXT}{outcome.code}")), caption)
