"""What a person sent, read by their channel into the core's terms."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.domain.models import Identity


@dataclass(frozen=True)
class SharedContact:
    phone: str
    own: bool  # the contact is the sender's own (Telegram says whose it is)


@dataclass(frozen=True)
class Surface:
    """What the person's app does that changes what the core offers them."""

    channel: str  # templates may word a thing for an app ("tap the menu", "type saldo")
    # Telegram shows the bot's commands beside the text box; WhatsApp has no such menu, so
    # its menu comes as options to tap.
    command_menu: bool
    # The most options one choice shows at once (a WhatsApp list holds ten): longer choices
    # are asked in two steps.
    most_options: int
    # WhatsApp has no /start: whatever a stranger first writes begins joining.
    joins_on_first_message: bool
    # A link that opens a chat with the shop with `payload` as the first thing said (a
    # t.me deep link, a wa.me link with the text typed in): cards, codes, invitations.
    link: Callable[[str], str]


@dataclass(frozen=True)
class Said:
    person: Identity
    surface: Surface
    # Unique to this message, kept by the channel: what makes a coupon or an adjustment typed
    # once take effect once, however often the message is delivered.
    key: str
    text: str = ""  # typed, a command ("/sale 12 3") included
    tap: str | None = None  # the data of the option tapped
    contact: SharedContact | None = None
    # A photo sent (its caption is `text`), fetched only when a flow wants it.
    photo: Callable[[], Awaitable[bytes]] | None = None
    profile_name: str | None = None  # as the app shows the person
    phone: str | None = None  # E.164, when the channel vouches for it (WhatsApp)
    app_language: str | None = None  # the app's language code, when the channel tells
