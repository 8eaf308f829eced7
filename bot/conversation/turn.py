"""What a flow has in reach while it answers one message (as aiogram's middleware puts it in
a handler's arguments): the message, the core, who wrote and in which language."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from bot.bootstrap import Services
from bot.conversation.replies import Option, Reply
from bot.conversation.said import Said
from bot.domain.models import Actor, Customer, Language, Refused
from bot.taps import Button


@dataclass(frozen=True)
class Turn:
    said: Said
    services: Services
    actor: Actor
    member: Customer | None
    # The language of replies to the team and to newcomers: the app's, if the bot speaks
    # it, else the shop's (a member's replies use the member's own).
    language: Language
    args: list[str] = field(default_factory=list)  # the words after a command
    tap: Button | None = None
    found: str = ""  # what a link's pattern found (a member code, an invitation token)

    def but(self, **changes: Any) -> Turn:
        return replace(self, **changes)

    @property
    def speaks(self) -> Language:
        """The member's language, or the turn's for anybody else."""
        return self.member.language if self.member else self.language

    def reply(self, template: str, /, **context: Any) -> Reply:
        return Reply(template, self.language, context)

    def label(self, name: str, language: Language | None = None) -> str:
        return self.services.messages.label(language or self.language, name)

    def option(self, label_name: str, tap: Button, language: Language | None = None) -> Option:
        return Option(self.label(label_name, language), tap)

    def refused(self, refused: Refused, language: Language | None = None) -> Reply:
        """Why an action did not happen."""
        return Reply(f"problems/{refused.problem}", language or self.language)

    def problem(self, refused: Refused | str | None, language: Language | None = None) -> Any:
        """A refusal's sentence, to place inside another reply."""
        if refused is None:
            return None
        name = refused.problem if isinstance(refused, Refused) else refused
        return self.services.messages.render(language or self.language, f"problems/{name}")
