"""What each kind of tap carries, for every channel: one codec per kind (pack, parse, pattern),
and `decode` for a tap of any kind (None: an old or forged one).

Telegram gives a button 64 bytes of data and WhatsApp an id of 256, handed back on a tap;
buttons stay in chats for months, so the data must read back the same after a restart and an
upgrade. aiogram's
`CallbackData` does this, but is part of aiogram; PTB's arbitrary callback data keeps objects
in memory, lost on restart. Hence these few lines: a dataclass per kind, its fields joined by
":" after its prefix, each field's shape given by its type (a whole number, a `Literal` of
words, an enum) or, for free text, by `shapes`.
"""

from __future__ import annotations

import re
from dataclasses import astuple, dataclass, fields
from enum import Enum
from typing import Any, ClassVar, Literal, Self, get_args, get_origin, get_type_hints

from bot.domain.after_answers import FollowUpOutcome
from bot.domain.models import ConsentTopic, Language
from bot.domain.parsing import WHOLE_NUMBER_PATTERN

YesNo = Literal["yes", "no"]


class Button:
    prefix: ClassVar[str]
    shapes: ClassVar[dict[str, str]] = {}  # regex of each free-text field

    def pack(self) -> str:
        values = [value.value if isinstance(value, Enum) else str(value) for value in astuple(self)]  # type: ignore[call-overload]
        data = ":".join([self.prefix, *values])
        assert len(data.encode()) <= 64, data
        return data

    @classmethod
    def pattern(cls) -> re.Pattern[str]:
        """Routes a tap to its handler (CallbackQueryHandler's pattern)."""
        if cls not in _PATTERNS:
            _PATTERNS[cls] = _pattern(cls)
        return _PATTERNS[cls]

    @classmethod
    def parse(cls, data: object) -> Self:
        """The button a tap came from; ValueError for data this kind never packs."""
        found = cls.pattern().fullmatch(data) if isinstance(data, str) else None
        if found is None:
            raise ValueError(f"not a {cls.__name__}: {data!r}")
        kinds = _field_kinds(cls)
        return cls(*(_read(kind, text) for kind, text in zip(kinds, found.groups(), strict=True)))


_PATTERNS: dict[type[Button], re.Pattern[str]] = {}
_FIELD_KINDS: dict[type[Button], list[Any]] = {}


def _field_kinds(button: type[Button]) -> list[Any]:
    """Each field's type, in order (read once: get_type_hints is slow)."""
    if button not in _FIELD_KINDS:
        hints = get_type_hints(button)
        _FIELD_KINDS[button] = [hints[field.name] for field in fields(button)]  # type: ignore[arg-type]
    return _FIELD_KINDS[button]


def _pattern(button: type[Button]) -> re.Pattern[str]:
    parts = [re.escape(button.prefix)]
    for field, kind in zip(fields(button), _field_kinds(button), strict=True):  # type: ignore[arg-type]
        parts.append(f"({button.shapes.get(field.name) or _shape(kind)})")
    return re.compile("^" + ":".join(parts) + r"\Z")


def _shape(kind: Any) -> str:
    if kind is int:
        return WHOLE_NUMBER_PATTERN
    if get_origin(kind) is Literal:
        return "|".join(re.escape(word) for word in get_args(kind))
    if isinstance(kind, type) and issubclass(kind, Enum):
        return "|".join(re.escape(member.value) for member in kind)
    raise TypeError(f"a free-text field needs its shape in `shapes`: {kind}")


def _read(kind: Any, text: str) -> Any:
    if kind is int:
        return int(text)
    if isinstance(kind, type) and issubclass(kind, Enum):
        return kind(text)
    return text


@dataclass(frozen=True)
class ConsentButton(Button):
    prefix = "consent"
    answer: YesNo


@dataclass(frozen=True)
class LanguageButton(Button):
    prefix = "language"
    language: Language


@dataclass(frozen=True)
class NotificationsButton(Button):
    prefix = "notify"
    topic: ConsentTopic
    action: Literal["on", "off"]


@dataclass(frozen=True)
class ForgetButton(Button):
    prefix = "forget"
    answer: YesNo


@dataclass(frozen=True)
class SaleButton(Button):
    prefix = "sale"
    action: Literal["ok", "no"]
    pending_id: int


@dataclass(frozen=True)
class RewardButton(Button):
    prefix = "reward"
    shapes: ClassVar[dict[str, str]] = {"key": "[a-z0-9_]{1,32}"}
    key: str


@dataclass(frozen=True)
class CouponButton(Button):
    prefix = "coupon"
    coupon_id: int


@dataclass(frozen=True)
class RedeemButton(Button):
    prefix = "redeem"
    shapes: ClassVar[dict[str, str]] = {"code": "[A-Z0-9]{1,16}"}
    code: str


@dataclass(frozen=True)
class StaffInviteButton(Button):
    prefix = "staff:invite"


@dataclass(frozen=True)
class StaffRemoveButton(Button):
    prefix = "staff:remove"
    member_id: int


@dataclass(frozen=True)
class SurveyButton(Button):
    """A score, or "skip" for the reason asked after it."""

    prefix = "survey"
    shapes: ClassVar[dict[str, str]] = {"answer": "[0-9]{1,2}|skip"}
    survey_id: int
    answer: str

    SKIP: ClassVar[str] = "skip"


@dataclass(frozen=True)
class WinbackButton(Button):
    prefix = "winback"
    customer_id: int


@dataclass(frozen=True)
class CampaignButton(Button):
    """A step of /broadcast: the audience picked, the coupon, send or cancel."""

    prefix = "campaign"
    shapes: ClassVar[dict[str, str]] = {"value": r"[a-z0-9_:]{0,40}"}
    campaign_id: int
    # "kind": WhatsApp's first of two lists (a list holds ten rows), the audience's kind.
    step: Literal["audience", "kind", "coupon", "send", "cancel"]
    value: str = ""


@dataclass(frozen=True)
class FollowUpButton(Button):
    prefix = "followup"
    follow_up_id: int
    outcome: FollowUpOutcome


@dataclass(frozen=True)
class MenuButton(Button):
    """An option of a menu shown as taps (WhatsApp has no command menu): the command it runs."""

    prefix = "menu"
    shapes: ClassVar[dict[str, str]] = {"command": "[a-z]{1,16}"}
    command: str


KINDS: tuple[type[Button], ...] = (
    ConsentButton,
    LanguageButton,
    NotificationsButton,
    ForgetButton,
    SaleButton,
    RewardButton,
    CouponButton,
    RedeemButton,
    StaffInviteButton,
    StaffRemoveButton,
    SurveyButton,
    WinbackButton,
    CampaignButton,
    FollowUpButton,
    MenuButton,
)


def decode(data: object) -> Button | None:
    """The tap, whatever its kind; None for data no button of this bot carries."""
    for kind in KINDS:
        try:
            return kind.parse(data)
        except ValueError:
            continue
    return None
