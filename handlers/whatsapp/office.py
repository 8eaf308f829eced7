"""The back office on WhatsApp, typed as on Telegram (`/void`, `anular`, ...): an owner invites
staff with a one-time link, staff void their sales and look customers up, `/stats` comes as
text and three chart images, and the owner's `/export` as documents."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from bot.domain.after_answers import OUTCOMES as FOLLOW_UP_OUTCOMES
from bot.domain.insights import DEFAULT_DAYS, parse_days, stats_charts
from bot.domain.models import Actor, Identity, Language, Refused, Role
from bot.domain.parsing import InvalidInput, whole_number
from bot.domain.rewards import COUPON_USAGE
from bot.taps import FollowUpButton, StaffRemoveButton, WinbackButton
from handlers.whatsapp.channel import Option
from handlers.whatsapp.replies import Replies

STAFF_TEXT = "staff_"
WORDS = {
    "/void": "void",
    "anular": "void",
    "/customer": "customer",
    "cliente": "customer",
    "/stats": "stats",
    "estadisticas": "stats",
    "estadísticas": "stats",
    "/export": "export",
    "exportar": "export",
    "/staff": "staff",
    "empleados": "staff",
    "/churn": "churn",
    "riesgo": "churn",
    "/coupon": "coupon",
    "cupon": "coupon",
    "cupón": "coupon",
    "/adjust": "adjust",
    "ajustar": "adjust",
}
# The rest of the owner's actions are refused by the core (bot/domain/permissions.py).
OWNERS_ONLY = frozenset({"staff", "export"})
REMOVE = "staff:remove:"
WINBACK = "winback:"
FOLLOW_UP = "followup:"
MOST_WINBACK_OPTIONS = 10  # a list holds ten rows: the most valuable customers first


class Office:
    def __init__(self, replies: Replies, link: Callable[[str], str]) -> None:
        self._replies = replies
        self._link = link
        self._services = replies.services

    async def handle(
        self,
        to: Identity,
        language: Language,
        actor: Actor,
        word: str,
        args: list[str],
        message_id: int,
    ) -> bool:
        """A back-office command typed by staff; False when `word` is none of them."""
        command = WORDS.get(word.lower())
        if command is None:
            return False
        if command in OWNERS_ONLY and not await self._owner(to, language, actor, command):
            return True
        if command == "void":
            await self._void(to, language, actor, args)
        elif command == "customer":
            await self._customer(to, language, " ".join(args))
        elif command == "stats":
            await self._stats(to, language, actor, args)
        elif command == "export":
            await self._export(to, language, actor)
        elif command == "churn":
            await self._churn(to, language, actor)
        elif command == "coupon":
            await self._coupon(to, language, actor, args, f"coupon:whatsapp:{message_id}")
        elif command == "adjust":
            await self._adjust(to, language, actor, args, f"adjust:whatsapp:{message_id}")
        else:
            await self._team(to, language, actor)
        return True

    async def _owner(self, to: Identity, language: Language, actor: Actor, action: str) -> bool:
        """Only an owner may: anyone else is told so, and the attempt is audited."""
        if actor.role is Role.OWNER:
            return True
        await self._services.staff.refuse(actor, f"owner:{action}")
        await self._replies.say(to, language, "not_allowed")
        return False

    async def _team(self, to: Identity, language: Language, actor: Actor) -> None:
        """The staff, a tap to remove each, and a one-time link to invite someone new."""
        members = await self._services.staff.members()
        label = self._replies.label(language, "remove")
        options = [
            Option(StaffRemoveButton(m.id).pack(), f"{label} {m.name}") for m in members[:10]
        ]
        await self._replies.say(to, language, "staff/list", options, members=members)
        invite = await self._services.staff.invite(actor)
        if isinstance(invite, Refused):
            await self._replies.refuse(to, language, invite)
            return
        link = self._link(f"{STAFF_TEXT}{invite.token}")
        await self._replies.say(
            to, language, "staff/invite_link", link=link, expires_at=invite.expires_at
        )

    async def remove(self, to: Identity, language: Language, actor: Actor, choice: str) -> None:
        removed = await self._services.staff.remove(
            actor, StaffRemoveButton.parse(choice).member_id
        )
        if removed is None or isinstance(removed, Refused):
            await self._replies.refuse(to, language, removed or Refused("staff_unknown"))
            return
        await self._replies.say(to, language, "staff/removed", member=removed)

    async def _coupon(
        self, to: Identity, language: Language, actor: Actor, args: list[str], key: str
    ) -> None:
        granted = await self._services.rewards.grant_typed(actor, args, key)
        if granted is None:
            return  # this very message granted it already
        if isinstance(granted, Refused):
            if granted.problem == COUPON_USAGE:
                await self._replies.say(to, language, "coupons/usage")
            else:
                await self._replies.refuse(to, language, granted)
            return
        await self._replies.say(
            to, language, "coupons/granted", customer=granted.customer, coupon=granted.coupon
        )

    async def _adjust(
        self, to: Identity, language: Language, actor: Actor, args: list[str], key: str
    ) -> None:
        delta = whole_number(args[1], signed=True) if len(args) >= 2 else None
        if delta is None:
            await self._replies.say(to, language, "adjustments/usage")
            return
        outcome = await self._services.adjustments.adjust(
            actor, args[0], delta, " ".join(args[2:]), key
        )
        if isinstance(outcome, Refused):
            await self._replies.refuse(to, language, outcome)
            return
        await self._replies.say(to, language, "adjustments/done", adjusted=outcome)

    async def _churn(self, to: Identity, language: Language, actor: Actor) -> None:
        """Customers at risk; the owner gets a one-tap win-back coupon for each."""
        at_risk = await self._services.churn.at_risk()
        options = []
        if actor.role is Role.OWNER:
            label = self._replies.label(language, "send_winback")
            options = [
                Option(WinbackButton(entry.customer.id).pack(), f"{label} {entry.customer.name}")
                for entry in at_risk[:MOST_WINBACK_OPTIONS]
            ]
        await self._replies.say(
            to,
            language,
            "churn/list",
            options,
            entries=at_risk,
            percent=self._services.program.churn.winback_percent_off,
        )
        follow_ups = await self._services.follow_ups.open_ones()
        if not follow_ups:
            return
        taps = []
        if actor.role is Role.OWNER:  # three taps each: as many follow-ups as a list holds
            taps = [
                Option(
                    FollowUpButton(open_one.follow_up.id, outcome).pack(),
                    f"{self._replies.label(language, f'follow_up_{outcome}')}"
                    f" {open_one.customer.name}",
                )
                for open_one in follow_ups[: MOST_WINBACK_OPTIONS // len(FOLLOW_UP_OUTCOMES)]
                for outcome in FOLLOW_UP_OUTCOMES
            ]
        await self._replies.say(to, language, "churn/follow_ups", taps, follow_ups=follow_ups)

    async def follow_up(self, to: Identity, language: Language, actor: Actor, choice: str) -> None:
        tap = FollowUpButton.parse(choice)  # decoded before it was routed here
        closed = await self._services.follow_ups.close(actor, tap.follow_up_id, tap.outcome)
        if isinstance(closed, Refused):
            await self._replies.refuse(to, language, closed)
            return
        await self._replies.say(to, language, "churn/follow_up_closed", outcome=closed.outcome)

    async def winback(self, to: Identity, language: Language, actor: Actor, choice: str) -> None:
        tap = WinbackButton.parse(choice)
        outcome = await self._services.churn.send_winback(actor, tap.customer_id)
        if isinstance(outcome, Refused):
            await self._replies.refuse(to, language, outcome)
            return
        await self._replies.say(
            to,
            language,
            "churn/winback_sent",
            customer=outcome.customer,
            coupon=outcome.coupon,
            told=outcome.told,
        )

    async def _void(self, to: Identity, language: Language, actor: Actor, args: list[str]) -> None:
        sale_id = whole_number(args[0].removeprefix("#")) if args else None
        if sale_id is None:
            await self._replies.say(to, language, "counter/void_usage")
            return
        outcome = await self._services.sales.void(actor, sale_id, " ".join(args[1:]))
        if isinstance(outcome, Refused):
            await self._replies.refuse(to, language, outcome)
            return
        await self._replies.say(
            to,
            language,
            "counter/voided",
            sale=outcome.sale,
            customer=outcome.customer,
            balance=outcome.balance,
        )

    async def _customer(self, to: Identity, language: Language, query: str) -> None:
        if not query.strip():
            await self._replies.say(to, language, "counter/customer_usage")
            return
        lookup = self._services.lookup
        found = await lookup.find(query)
        if not found:
            await self._replies.say(to, language, "problems/customer_unknown")
        elif len(found) > 1:
            await self._replies.say(to, language, "counter/customer_matches", customers=found)
        else:
            churn = self._services.churn
            await self._replies.say(
                to,
                language,
                "counter/customer_profile",
                profile=await lookup.profile(found[0]),
                flags=await churn.flags_of(found[0]),
                quadrant=await churn.quadrant_of(found[0]),
            )

    async def _stats(self, to: Identity, language: Language, actor: Actor, args: list[str]) -> None:
        try:
            days = parse_days(args[0]) if args else DEFAULT_DAYS
        except InvalidInput as invalid:
            await self._replies.refuse(to, language, Refused(invalid.problem))
            return
        insights = self._services.insights
        report = await insights.report(days)
        await self._replies.say(
            to,
            language,
            "stats/report",
            report=report,
            full=actor.role is Role.OWNER,
            shop=self._services.program.shop.name,
        )
        words = self._services.messages.label_map(language, "chart_words")
        trends = await insights.trends()
        pictures = await asyncio.to_thread(stats_charts, trends, report.quadrants, words)
        for title_key, picture in pictures:
            if picture is None:
                await self._replies.say(to, language, "stats/no_chart", title=words[title_key])
            else:
                await self._replies.photo(to, picture, words[title_key])

    async def _export(self, to: Identity, language: Language, actor: Actor) -> None:
        exports = self._services.exports
        async with exports.files(actor) as files:
            for file in files:
                caption = self._services.messages.render(
                    language,
                    "exports/caption",
                    kind=file.kind,
                    rows=file.rows,
                    zipped=file.path.suffix == ".zip",
                    delimiter=exports.delimiter,
                    currency=self._services.program.shop.currency,
                )
                content = await asyncio.to_thread(file.path.read_bytes)
                await self._replies.document(to, content, file.path.name, caption)
