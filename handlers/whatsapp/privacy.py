"""A member's control over their data on WhatsApp: `datos` (everything stored, as a
document), `olvidar` (erase, after a confirming tap) and `idioma`."""

from __future__ import annotations

import json

from bot.domain.models import ConsentTopic, Customer, Identity, Language
from handlers.whatsapp.channel import Option
from handlers.whatsapp.replies import Replies

LANGUAGE, FORGET, NOTIFY = "language:", "forget:", "notify:"


class Privacy:
    def __init__(self, replies: Replies) -> None:
        self._replies = replies
        self._services = replies.services

    async def my_data(self, to: Identity, member: Customer) -> None:
        quadrant = await self._services.churn.quadrant_of(member)
        document = await self._services.membership.personal_data(
            member, quadrant.value if quadrant else None
        )
        caption = self._services.messages.render(member.language, "mydata")
        body = json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8")
        await self._replies.document(to, body, "my-data.json", caption)

    async def ask_language(self, to: Identity, member: Customer) -> None:
        options = [
            Option(f"{LANGUAGE}{option.value}", self._replies.label(option, "language_name"))
            for option in Language
        ]
        await self._replies.say(to, member.language, "language/choose", options)

    async def set_language(self, to: Identity, member: Customer, choice: str) -> None:
        chosen = Language(choice.removeprefix(LANGUAGE))
        await self._services.membership.set_language(member, chosen)
        await self._replies.say(to, chosen, "language/changed")

    async def ask_forget(self, to: Identity, member: Customer) -> None:
        language = member.language
        options = [
            Option(f"{FORGET}yes", self._replies.label(language, "forget_confirm")),
            Option(f"{FORGET}no", self._replies.label(language, "forget_keep")),
        ]
        await self._replies.say(to, language, "forget/confirm", options)

    async def forget(self, to: Identity, member: Customer, choice: str) -> None:
        if choice != f"{FORGET}yes":
            await self._replies.say(to, member.language, "forget/kept")
            return
        await self._services.membership.forget(member, to)
        await self._replies.say(to, member.language, "forget/done")

    async def notifications(self, to: Identity, member: Customer) -> None:
        """What the member receives, with a tap to turn each kind on or off."""
        options = []
        for topic, enabled in (
            (ConsentTopic.PROMOTIONS, member.promotions_consent),
            (ConsentTopic.SURVEYS, member.surveys_enabled),
        ):
            action = "off" if enabled else "on"
            label = self._replies.label(member.language, f"{topic.value}_turn_{action}")
            options.append(Option(f"{NOTIFY}{topic.value}:{action}", label))
        await self._replies.say(
            to,
            member.language,
            "notifications",
            options,
            promotions=member.promotions_consent,
            surveys=member.surveys_enabled,
        )

    async def toggle(self, to: Identity, member: Customer, choice: str) -> None:
        _, topic, action = choice.split(":")
        membership = self._services.membership
        await membership.set_consent(member, ConsentTopic(topic), action == "on")
        updated = await membership.member(to)
        if updated is not None:
            await self.notifications(to, updated)
