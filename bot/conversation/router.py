"""Which flow answers a message, by declaration (as aiogram's routers and filters do): each
flow says which taps, links, commands, words and conversation states it answers, and who may
use it. A message goes to the first flow that matches, looked for in this order:

1. a tap, by the kind of button it came from (bot/taps.py);
2. a link opened (a scanned card `c_…`, a redemption code `r_…`, an invitation `staff_…` or
   a referral `ref_…`), wherever it is in the text: Telegram's `/start c_…`, WhatsApp's
   prefilled text;
3. a command typed with its slash (`/sale 12 3`);
4. a conversation under way (an amount awaited, a registration, a campaign's text, a
   survey's reason), so that its answer is never taken for a word;
5. a word that names a command, in either language (`saldo`, `venta`: labels.j2
   `command_words`), which is how WhatsApp is used.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum

from bot.conversation.replies import Reply
from bot.conversation.turn import Turn
from bot.domain.permissions import Action
from bot.taps import Button, MenuButton, decode

Flow = Callable[[Turn], AsyncIterator[Reply]]
State = Callable[[Turn], Awaitable[bool]]


class Anyone(Enum):
    ANYONE = "anyone"
    MEMBER = "member"  # a member of the loyalty program


ANYONE, MEMBER = Anyone.ANYONE, Anyone.MEMBER
Needs = Anyone | Action  # an Action: whoever the permission table allows (bot/domain)


@dataclass(frozen=True)
class Route:
    flow: Flow
    needs: Needs
    command: str | None = None
    tap: type[Button] | None = None
    link: re.Pattern[str] | None = None
    team_only_link: bool = False  # anyone else opening it is not stopped: it is not for them
    state: State | None = None


class Unmatched(Enum):
    STALE = "stale_button"  # a tap no button of this bot carries (an old keyboard, forged data)
    UNKNOWN_COMMAND = "unknown_command"  # a slash and a name no flow answers


STALE, UNKNOWN_COMMAND = Unmatched.STALE, Unmatched.UNKNOWN_COMMAND


class Router:
    def __init__(self) -> None:
        self.routes: list[Route] = []

    def include(self, *others: Router) -> None:
        for other in others:
            self.routes.extend(other.routes)

    def command(self, *names: str, needs: Needs = ANYONE) -> Callable[[Flow], Flow]:
        return self._add(lambda flow: [Route(flow, needs, command=name) for name in names])

    def tap(self, kind: type[Button], needs: Needs = ANYONE) -> Callable[[Flow], Flow]:
        return self._add(lambda flow: [Route(flow, needs, tap=kind)])

    def link(
        self, pattern: str, needs: Needs = ANYONE, *, team_only: bool = False
    ) -> Callable[[Flow], Flow]:
        compiled = re.compile(rf"\b{pattern}\b")
        return self._add(lambda flow: [Route(flow, needs, link=compiled, team_only_link=team_only)])

    def state(self, awaited: State, needs: Needs = ANYONE) -> Callable[[Flow], Flow]:
        return self._add(lambda flow: [Route(flow, needs, state=awaited)])

    def _add(self, routes: Callable[[Flow], list[Route]]) -> Callable[[Flow], Flow]:
        def register(flow: Flow) -> Flow:
            self.routes.extend(routes(flow))
            return flow

        return register

    def commands(self) -> set[str]:
        return {route.command for route in self.routes if route.command}

    async def find(
        self, turn: Turn, words: Mapping[str, str]
    ) -> tuple[Route, Turn] | Unmatched | None:
        """The route and the turn as its flow reads it (args, tap, what a link found)."""
        said = turn.said
        if said.tap is not None:
            tap = decode(said.tap)
            if tap is None:
                return STALE
            if isinstance(tap, MenuButton):  # a menu's option is its command, typed
                return self._by_command(turn, tap.command, []) or STALE
            for route in self.routes:
                if route.tap is type(tap):
                    return route, turn.but(tap=tap)
            return STALE
        text = said.text.strip()
        for route in self.routes:
            if route.link is None or (route.team_only_link and not turn.actor.is_staff):
                continue
            found = route.link.search(text)
            if found:
                return route, turn.but(found=found[1])
        first, *args = text.split() or [""]
        if first.startswith("/"):
            name = first[1:].split("@")[0].lower()
            return self._by_command(turn, words.get(name, name), args) or UNKNOWN_COMMAND
        for route in self._in_state():
            assert route.state is not None
            if await route.state(turn):
                return route, turn
        command = words.get(first.lower())
        return self._by_command(turn, command, args) if command else None

    def _by_command(self, turn: Turn, command: str, args: list[str]) -> tuple[Route, Turn] | None:
        for route in self.routes:
            if route.command == command:
                return route, turn.but(args=args)
        return None

    def _in_state(self) -> Iterable[Route]:
        return (route for route in self.routes if route.state is not None)
