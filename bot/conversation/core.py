"""The one entry to every conversation: a channel hands over what a person said and renders
what comes back, one reply at a time (a long report's numbers go out before its charts are
drawn). Who the person is, which flow answers and whether they may use it are decided here,
for every channel alike; a refusal is audited (bot/domain/permissions.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from bot.bootstrap import Services
from bot.conversation.flows import ROUTER
from bot.conversation.flows.joining import not_a_member, unrouted
from bot.conversation.replies import Reply
from bot.conversation.router import MEMBER, STALE, Router, Unmatched
from bot.conversation.said import Said
from bot.conversation.turn import Turn
from bot.domain.models import ConsentTopic, Identity, Language, Role
from bot.domain.permissions import Action, permitted
from bot.messages import pick_language


class Conversation:
    def __init__(self, services: Services, router: Router = ROUTER) -> None:
        self._services = services
        self._router = router
        self._words: dict[str, str] | None = None

    def words(self) -> dict[str, str]:
        """Every word that names a command, in every language (labels.j2 `command_words`),
        and the commands' own names."""
        if self._words is None:
            words = {name: name for name in self._router.commands()}
            for language in Language:
                table = self._services.messages.label_map(language, "command_words")
                words.update({word.lower(): command for word, command in table.items()})
            self._words = words
        return self._words

    async def answer(self, said: Said) -> AsyncIterator[Reply]:
        turn = await self._turn(said)
        found = await self._router.find(turn, self.words())
        if isinstance(found, Unmatched):
            stale = found is STALE  # a tap: where the app can, a notice over the button
            yield Reply(f"problems/{found.value}", turn.speaks, as_notice=stale)
            return
        if found is None:
            async for reply in unrouted(turn):
                yield reply
            return
        route, turn = found
        if route.needs is MEMBER and turn.member is None:
            async for reply in not_a_member(turn):
                yield reply
            return
        if isinstance(route.needs, Action):
            services = self._services
            refused = await permitted(services.database, services.clock, turn.actor, route.needs)
            if refused is not None:
                yield turn.refused(refused)
                return
        async for reply in route.flow(turn):
            yield reply

    async def slow_down(self, person: Identity) -> Reply:
        """For the first message past its sender's allowance (bot/flood.py)."""
        member = await self._services.membership.member(person)
        return Reply("problems/slow_down", self._language(member.language if member else None))

    async def in_their_language(self, person: Identity, template: str) -> Reply:
        member = await self._services.membership.member(person)
        return Reply(template, member.language if member else self._language(None))

    async def offers_preference(
        self, people: list[Identity], phone: str | None, granted: bool
    ) -> None:
        """Offers stopped (or resumed) in the app's own settings: at once, and silently, as
        the person already saw the app's confirmation; for the member whichever id the app
        names them by."""
        membership = self._services.membership
        member = await membership.known_as(people, phone)
        if member is not None:
            await membership.set_consent(member, ConsentTopic.PROMOTIONS, granted)

    async def _turn(self, said: Said) -> Turn:
        services = self._services
        language = self._language(said.app_language)
        actor = await services.staff.actor(said.person, language if said.app_language else None)
        if not actor.is_staff and said.phone and said.person.user_id != said.phone[1:]:
            # OWNER_PHONES name numbers; a person known by another id is an owner when the
            # number the app vouches for with the message is one of them.
            by_phone = await services.staff.actor(Identity(said.person.channel, said.phone[1:]))
            actor = by_phone if by_phone.role is Role.OWNER else actor
        member = await services.membership.member(said.person)
        return Turn(said, services, actor, member, language)

    def _language(self, code: str | None) -> Language:
        return pick_language(code, Language(self._services.settings.default_language))
