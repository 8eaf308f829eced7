"""What the core answers, whatever the channel: a template in a language with its context,
the options a person may tap, a photo or a document, and a few hints a channel may use
(Telegram edits the tapped message; WhatsApp has no such thing and simply sends).

A channel renders these its own way: Telegram as HTML and inline keyboards, WhatsApp as its
formatting, reply buttons, lists and numbered text (handlers/<channel>/render.py)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.domain.models import Language
from bot.taps import Button


@dataclass(frozen=True)
class Option:
    """One tap on offer: its label and the typed tap that comes back."""

    label: str
    tap: Button


@dataclass(frozen=True)
class Photo:
    filename: str
    draw: Callable[[], bytes]  # called only when the channel has no copy of it yet
    # The same picture every time (a member's card): a channel that keeps uploaded photos
    # sends it again by its id, without drawing or uploading it.
    reuse_key: str | None = None


def picture(filename: str, image: bytes) -> Photo:
    """A photo drawn already."""
    return Photo(filename, lambda: image)


@dataclass(frozen=True)
class Document:
    filename: str
    content: bytes | None = None
    path: str | None = None  # a large file, streamed from disk by the channel


@dataclass(frozen=True)
class Reply:
    template: str
    language: Language
    context: Mapping[str, Any] = field(default_factory=dict)
    # Rows of options: Telegram keeps the rows, channels with fewer buttons read them in order.
    options: tuple[tuple[Option, ...], ...] = ()
    # Answers one may type, offered as one-tap suggestions (a name, "skip").
    suggestions: tuple[str, ...] = ()
    # The label of a button that shares the person's phone number, where a channel has one.
    contact_button: str | None = None
    # Clears the suggestions a channel left on screen (Telegram's reply keyboard).
    clears_suggestions: bool = False
    # Said only to clear those suggestions: a channel that leaves none on screen skips it.
    only_to_clear: bool = False
    photo: Photo | None = None  # the text is its caption
    document: Document | None = None  # the text is its caption
    # The answer to a tap: where a channel can, it replaces the tapped message...
    replaces_prompt: bool = False
    # ...or takes its options away, so that it is not tapped again.
    closes_prompt: bool = False
    # The answer to a tap shown as a short notice instead of a message, where a channel can.
    as_notice: bool = False

    @property
    def taps(self) -> list[Option]:
        return [option for row in self.options for option in row]


def rows(options: list[Option]) -> tuple[tuple[Option, ...], ...]:
    """One option per row."""
    return tuple((option,) for option in options)


def one_row(*options: Option) -> tuple[tuple[Option, ...], ...]:
    return (tuple(options),)
