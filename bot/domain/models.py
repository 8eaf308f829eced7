"""The loyalty program's nouns, free of any chat channel's types."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum


@dataclass(frozen=True)
class Identity:
    """Who is talking, as a channel knows them: ("telegram", "123456") today, WhatsApp tomorrow."""

    channel: str
    user_id: str


@dataclass(frozen=True)
class Birthday:
    day: int
    month: int
    year: int | None = None

    def as_text(self) -> str:
        """ISO-like: 1990-12-24, or --12-24 when the year was not given (ISO 8601's own form)."""
        year = f"{self.year:04d}" if self.year is not None else "-"
        return f"{year}-{self.month:02d}-{self.day:02d}"

    def falls_on(self, today: date) -> bool:
        """29 February birthdays are celebrated on 28 February in years that lack the day."""
        if (self.month, self.day) == (2, 29) and not _is_leap(today.year):
            return (today.month, today.day) == (2, 28)
        return (today.month, today.day) == (self.month, self.day)


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


class Language(StrEnum):
    ES = "es"
    EN = "en"


@dataclass(frozen=True)
class Customer:
    id: int
    identity: Identity
    member_code: str
    referral_code: str
    name: str
    phone: str | None
    birthday: Birthday | None
    language: Language
    promotions_consent: bool
    surveys_enabled: bool
    referred_by: int | None
    created_at: datetime


class LedgerReason(StrEnum):
    PURCHASE = "purchase"
    REWARD = "reward"
    REFERRAL = "referral"
    BIRTHDAY = "birthday"
    ADJUSTMENT = "adjustment"
    REVERSAL = "reversal"
    EXPIRY = "expiry"


# Points that count towards a tier: what purchases earned, less what voids took back.
TIER_QUALIFYING_REASONS = (LedgerReason.PURCHASE, LedgerReason.REVERSAL)


@dataclass(frozen=True)
class LedgerEntry:
    id: int
    customer_id: int
    delta: int
    reason: LedgerReason
    actor: str
    idempotency_key: str
    note: str | None
    created_at: datetime


class ConsentTopic(StrEnum):
    PROMOTIONS = "promotions"
    SURVEYS = "surveys"


class RegistrationStep(StrEnum):
    NAME = "name"
    PHONE = "phone"
    BIRTHDAY = "birthday"
    CONSENT = "consent"


@dataclass(frozen=True)
class RegistrationDraft:
    """The answers so far of someone joining, kept until the last step creates the customer."""

    identity: Identity
    step: RegistrationStep
    language: Language
    suggested_name: str | None
    name: str | None = None
    phone: str | None = None
    birthday: Birthday | None = None
    referrer_id: int | None = None
    phone_verified: bool = False  # shared as their own contact, or the number they write from


@dataclass(frozen=True)
class Refused:
    """An action that did not happen; `problem` names the template that says why."""

    problem: str


class Role(StrEnum):
    OWNER = "owner"
    STAFF = "staff"
    CUSTOMER = "customer"


@dataclass(frozen=True)
class Actor:
    """Who is acting, and with what right: owners come from OWNER_IDS, staff from an invitation."""

    identity: Identity
    role: Role
    name: str = ""

    @property
    def is_staff(self) -> bool:
        return self.role in (Role.OWNER, Role.STAFF)

    @property
    def label(self) -> str:
        """How ledger rows and the audit log name this actor, e.g. "staff:telegram:42"."""
        return f"{self.role.value}:{self.identity.channel}:{self.identity.user_id}"


@dataclass(frozen=True)
class StaffMember:
    id: int
    identity: Identity
    name: str
    language: Language
    added_at: datetime


@dataclass(frozen=True)
class Sale:
    id: int
    customer_id: int
    recorded_by: str
    amount_minor: int
    items: int
    points: int
    created_at: datetime
    voided_at: datetime | None


@dataclass(frozen=True)
class PendingSale:
    """A sale typed at the counter and not yet confirmed; amount is None until it is typed."""

    id: int
    staff: Identity
    customer_id: int
    amount_minor: int | None
    items: int | None
    created_at: datetime
    sale_id: int | None


class CouponKind(StrEnum):
    BIRTHDAY = "birthday"
    GRANTED = "granted"
    WINBACK = "winback"


@dataclass(frozen=True)
class Coupon:
    id: int
    customer_id: int
    kind: CouponKind
    percent_off: int | None
    free_item: str | None
    valid_until: datetime
    redeemed_at: datetime | None


@dataclass(frozen=True)
class Redemption:
    """A one-time code for a catalogue reward (reward_key, cost) or for a coupon (coupon_id)."""

    code: str
    customer_id: int
    reward_key: str | None
    reward_snapshot: str | None  # the reward as it was when the code was issued, as JSON
    cost: int
    coupon_id: int | None
    created_at: datetime
    expires_at: datetime
    redeemed_at: datetime | None
