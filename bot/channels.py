"""How the core reaches a person on a channel it does not know: the one protocol each channel
(handlers/<channel>/) implements, what the channel can do, and what came of a message.

Replies to the person who wrote are the channel's own business (its handlers); this is for the
rest, which the outbox dispatcher sends."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol, runtime_checkable

from bot.domain.models import Identity, Language, Role


@dataclass(frozen=True)
class Choice:
    """A question answered with one tap (a score): `question` and `about` say what is asked
    (a survey, and which one), `values` the answers, `per_row` how many fit on a line. Each
    channel turns this into its own buttons.

    Stored as this rule rather than button by button: a first survey run in a large shop
    queues tens of thousands of them at once."""

    question: str
    about: int
    values: tuple[int, ...]
    per_row: int

    def rows(self) -> list[tuple[int, ...]]:
        return [
            self.values[at : at + self.per_row] for at in range(0, len(self.values), self.per_row)
        ]


@dataclass(frozen=True)
class Capabilities:
    formatting: Literal["html", "whatsapp"]  # how templates are rendered for it
    most_buttons: int  # in one message
    longest_button_title: int | None  # characters; None: as long as the text
    longest_text: int
    # WhatsApp: a free-form message only within 24 hours of the person's last one.
    free_form_window: timedelta | None = None
    # WhatsApp: people a business may write to first (with a template) per rolling day.
    daily_first_contacts: int | None = None

    def free_form_allowed(self, last_heard: datetime | None, now: datetime) -> bool:
        if self.free_form_window is None:
            return True
        return last_heard is not None and now - last_heard < self.free_form_window


@dataclass(frozen=True)
class Delivered:
    message_id: str | None = None  # the channel's id for it, when it reports on it later


@dataclass(frozen=True)
class RetryLater:
    seconds: float


@dataclass(frozen=True)
class Unreachable:
    reason: str


@dataclass(frozen=True)
class Failed:
    reason: str
    transient: bool


@dataclass(frozen=True)
class Deferred:
    """Not now, and not a failure: try again at `until` (a daily limit reached)."""

    until: datetime
    reason: str


Outcome = Delivered | RetryLater | Unreachable | Failed | Deferred


class NotAnAddress(ValueError):
    """A stored identity that a channel cannot write to: another channel's, or not in the
    shape of this channel's ids. Each channel turns identities into its own addresses and
    refuses every other with this, in one sentence that names the channel and the id."""

    def __init__(self, channel: str, identity: Identity) -> None:
        super().__init__(
            f"{identity.channel} id {identity.user_id!r} is not a {channel} address"
            if identity.channel != channel
            else f"{identity.user_id!r} is not in the shape of a {channel} id"
        )


class Channel(Protocol):
    """A channel as the core sees it. Each call says what became of the message; none raises
    for a person who cannot be reached or a channel that asks to wait."""

    @property
    def capabilities(self) -> Capabilities: ...

    def start_link(self, payload: str) -> str:
        """A link that opens a chat with the shop in this app, `payload` handed to the bot
        (a referral code): what a message names as {{ link }}."""
        ...

    async def send_text(
        self,
        to: Identity,
        text: str,
        choice: Choice | None = None,
        opt_out: str | None = None,
    ) -> Outcome:
        """`text`, rendered for the channel; `choice`, one tap per answer; `opt_out`, the label
        of a tap that turns the person's offers off (a campaign carries one)."""

    async def send_photo(
        self, to: Identity, photo: bytes, caption: str, opt_out: str | None = None
    ) -> Outcome:
        """A photo with its caption; `opt_out` as for `send_text`."""

    async def send_document(
        self, to: Identity, document: bytes, filename: str, caption: str
    ) -> Outcome: ...

    async def ask_for_contact(self, to: Identity, text: str, button_label: str) -> Outcome:
        """Ask the person to share their phone number with one tap."""


@runtime_checkable
class TemplateSender(Protocol):
    """A channel with a free-form window also sends approved templates, outside it."""

    async def send_template(
        self, to: Identity, name: str, language: Language, parameters: list[str]
    ) -> Outcome: ...


@runtime_checkable
class TeamMenus(Protocol):
    """A channel that shows owners and staff a menu of their own (Telegram's per-chat command
    menu): told when someone joins or leaves the team, from whichever app."""

    async def team_changed(self, person: Identity, role: Role | None, language: Language) -> None:
        """`role` None: no longer in the team."""
