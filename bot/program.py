"""The loyalty program's rules, read from a TOML file and validated before the bot starts."""

from __future__ import annotations

import tomllib
from decimal import ROUND_FLOOR, Decimal
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bot.domain.money import Currency
from bot.errors import ConfigError, describe_validation_error

Language = str
PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]


class _Rules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LocalisedText(_Rules):
    """A text the shop writes itself, in each language the bot speaks."""

    es: str = Field(min_length=1)
    en: str = Field(min_length=1)

    def get(self, language: Language) -> str:
        return self.en if language == "en" else self.es


class Shop(_Rules):
    name: str = Field(min_length=1)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    currency_decimals: int = Field(ge=0, le=3)
    decimal_mark: Literal[",", "."] = ","
    largest_sale: PositiveInt = 5000
    phone_region: str = Field(pattern=r"^[A-Z]{2}$")
    # The member card's header colour, and optionally a logo (PNG or JPEG) drawn on it; a
    # relative path is read beside the program file.
    card_colour: str = Field(default="#6b1d3a", pattern=r"^#[0-9a-fA-F]{6}$")
    logo: Path | None = None

    @property
    def money(self) -> Currency:
        return Currency(self.currency, self.currency_decimals, self.decimal_mark)

    @property
    def largest_sale_minor(self) -> int:
        return int(self.largest_sale * 10**self.currency_decimals)


class EarningMode(StrEnum):
    PER_ITEM = "per_item"
    PER_AMOUNT = "per_amount"


class Earning(_Rules):
    mode: EarningMode
    points_per_item: NonNegativeInt = 1
    points_per_currency_unit: NonNegativeInt = 1
    largest_item_count: PositiveInt = 500


class Reward(_Rules):
    key: str = Field(pattern=r"^[a-z0-9_]{1,32}$")
    cost: PositiveInt
    name: LocalisedText


class Tier(_Rules):
    key: str = Field(pattern=r"^[a-z0-9_]{1,32}$")
    threshold: NonNegativeInt
    multiplier: Decimal = Field(ge=1, le=10)
    name: LocalisedText


class Referral(_Rules):
    referrer_points: NonNegativeInt
    referred_points: NonNegativeInt
    monthly_cap_per_referrer: NonNegativeInt


class BirthdayGiftKind(StrEnum):
    PERCENT = "percent"
    FREE_ITEM = "free_item"


class Birthday(_Rules):
    gift: BirthdayGiftKind
    percent_off: int = Field(ge=1, le=100)
    free_item: LocalisedText
    valid_days: PositiveInt
    send_hour: int = Field(ge=0, le=23)
    # The greeting goes this many days before the birthday (0: on the day).
    days_ahead: int = Field(default=0, ge=0, le=30)


class Surveys(_Rules):
    satisfaction_delay_hours: NonNegativeInt
    satisfaction_min_days_between: NonNegativeInt
    nps_every_days: PositiveInt
    nps_active_days: PositiveInt = 90
    answer_within_days: PositiveInt = 7
    send_hour_from: int = Field(ge=0, le=23)
    send_hour_to: int = Field(ge=1, le=24)

    @model_validator(mode="after")
    def _window_is_not_empty(self) -> Self:
        if self.send_hour_from >= self.send_hour_to:
            raise ValueError("send_hour_from must be earlier than send_hour_to")
        return self


class Churn(_Rules):
    lapsing_gap_factor: Decimal = Field(gt=1)
    lapsing_floor_days: PositiveInt
    lost_after_days: PositiveInt
    recompute_hour: int = Field(default=4, ge=0, le=23)
    winback_percent_off: int = Field(default=10, ge=1, le=100)
    winback_valid_days: PositiveInt = 30
    # Send the win-back coupon on its own, once per lapse, to a flagged customer who accepted
    # offers (the daily `winback` job); false leaves it to the owner's tap in /churn.
    automatic_winback: bool = False
    # A redeemed win-back coupon counts the customer's spending over this many days after it.
    winback_revenue_days: PositiveInt = 30


class RelationshipMap(_Rules):
    """Where the satisfaction x relationship map draws its lines."""

    satisfied_nps_from: int = Field(default=7, ge=0, le=10)
    satisfied_score_from: int = Field(default=4, ge=1, le=5)
    strong_visits_from: PositiveInt = 4
    strong_tenure_days_from: NonNegativeInt = 90


class Insights(_Rules):
    """How /stats reads the numbers."""

    # Customer lifetime value = average ticket x visits a year x this many years.
    clv_expected_years: Decimal = Field(default=Decimal(3), gt=0, le=50)
    # "Active" customers bought within this many days.
    active_days: PositiveInt = 90
    chart_weeks: int = Field(default=12, ge=4, le=104)
    chart_months: int = Field(default=12, ge=3, le=60)


class ExpiryMode(StrEnum):
    OFF = "off"
    INACTIVITY = "inactivity"  # the whole balance, after `months` without a purchase
    LOTS = "lots"  # each earning, `months` after it was earned; the oldest are spent first


class Expiry(_Rules):
    """Points that run out. Never retroactive: points held when it is turned on count as
    earned that day."""

    mode: ExpiryMode = ExpiryMode.OFF
    months: int = Field(default=12, ge=1, le=120)
    warning_days: int = Field(default=30, ge=0, le=365)  # 0: no warning
    last_chance_days: int = Field(default=3, ge=0, le=365)  # 0: no last chance
    send_hour: int = Field(default=10, ge=0, le=23)

    @model_validator(mode="after")
    def _last_chance_comes_last(self) -> Self:
        if self.warning_days and self.last_chance_days >= self.warning_days:
            raise ValueError("last_chance_days must be fewer than warning_days")
        return self


class Nudges(_Rules):
    """A word to a customer who is close to a reward and has not been in for a while."""

    # Close: at least this share of the next reward's cost (0 turns the nudge off).
    near_reward_share: Decimal = Field(default=Decimal("0.8"), ge=0, lt=1)
    idle_days: PositiveInt = 21
    send_hour: int = Field(default=11, ge=0, le=23)


class MapActions(_Rules):
    """What an answer to a survey sets off, by where it places the customer on the map."""

    apostle_share_link: bool = True  # a promoter with a strong relationship: share your link
    detractor_follow_up: bool = True  # a detractor: a follow-up for the owner, with taps
    mercenary_tier_incentive: bool = True  # satisfied, weak relationship: what the next tier gives
    hostage_ask: bool = True  # unhappy, strong relationship: what would make you happier?


class Contact(_Rules):
    """How often the shop may write to a customer with an offer, and when not at all."""

    # Promotional messages (birthday, win-back, nudges, map actions, campaigns) per customer
    # in any 7 days; past it, a message is not sent (its coupon, if any, stays in /rewards).
    promotions_per_week: int = Field(default=2, ge=1, le=50)
    # No promotional message or expiry warning between these local hours (from > to wraps
    # past midnight; equal: no quiet hours). They wait until the quiet hours end.
    quiet_from: int = Field(default=21, ge=0, le=23)
    quiet_to: int = Field(default=9, ge=0, le=23)


class Fraud(_Rules):
    """Alerts to the owner about sales that look wrong."""

    sales_per_customer_per_day: int = Field(default=5, ge=2)  # as Square does
    voids_per_staff_per_day: int = Field(default=3, ge=1)
    # A sale this many times the shop's usual (median) ticket over the last 90 days.
    ticket_multiple: Decimal = Field(default=Decimal(5), gt=1)


class Digest(_Rules):
    """A morning summary of yesterday for the owner."""

    enabled: bool = False
    send_hour: int = Field(default=8, ge=0, le=23)


TemplateName = Annotated[str, Field(min_length=1, max_length=512, pattern=r"^[a-z0-9_]+$")]


class ApprovedTemplate(_Rules):
    """A message template approved in Meta's manager, standing in for one of the bot's pushes
    when the customer has not written for 24 hours (WhatsApp allows only templates then)."""

    message: Literal[
        "pushes/birthday",
        "pushes/satisfaction",
        "pushes/nps",
        "coupons/winback",
        "pushes/nudge",
        "pushes/share_link",
        "pushes/tier_incentive",
        "campaigns/message",
        "points/expiry_warning",
        "points/expired",
    ]
    # One name for all its language versions, or a name per language: {es = "...", en = "..."}.
    name: TemplateName | dict[Literal["es", "en"], TemplateName]
    # The push's variables filling the template's {{1}}, {{2}}, ... in order.
    parameters: list[str] = []

    def name_for(self, language: Language) -> str | None:
        if isinstance(self.name, str):
            return self.name
        return next((name for key, name in self.name.items() if key == language), None)


class Program(_Rules):
    shop: Shop
    earning: Earning
    rewards: list[Reward] = Field(min_length=1)
    tiers: list[Tier] = Field(min_length=1)
    referral: Referral
    birthday: Birthday
    surveys: Surveys
    churn: Churn
    relationship_map: RelationshipMap = RelationshipMap()
    insights: Insights = Insights()
    expiry: Expiry = Expiry()
    nudges: Nudges = Nudges()
    map_actions: MapActions = MapActions()
    contact: Contact = Contact()
    fraud: Fraud = Fraud()
    digest: Digest = Digest()
    whatsapp_templates: list[ApprovedTemplate] = []

    @model_validator(mode="after")
    def _catalogue_is_consistent(self) -> Self:
        if self.tiers[0].threshold != 0:
            raise ValueError("tiers: the first tier must have threshold 0")
        thresholds = [tier.threshold for tier in self.tiers]
        if thresholds != sorted(set(thresholds)):
            raise ValueError("tiers: thresholds must be strictly increasing")
        for field, keys in (
            ("rewards", [r.key for r in self.rewards]),
            ("tiers", [t.key for t in self.tiers]),
        ):
            if len(keys) != len(set(keys)):
                raise ValueError(f"{field}: keys must be unique")
        return self

    def tier_for(self, qualifying_points: int) -> Tier:
        """The highest tier whose threshold the customer's qualifying points reach."""
        reached = [tier for tier in self.tiers if qualifying_points >= tier.threshold]
        return reached[-1]

    def points_for(self, amount_minor: int, items: int, tier: Tier) -> int:
        """Points a purchase earns: per item or per whole currency unit, times the tier's
        multiplier, rounded down."""
        if self.earning.mode is EarningMode.PER_ITEM:
            base = Decimal(items * self.earning.points_per_item)
        else:
            units = Decimal(amount_minor).scaleb(-self.shop.currency_decimals)
            base = units * self.earning.points_per_currency_unit
        return int((base * tier.multiplier).to_integral_value(rounding=ROUND_FLOOR))

    def reward(self, key: str) -> Reward | None:
        return next((reward for reward in self.rewards if reward.key == key), None)

    def next_tier(self, tier: Tier) -> Tier | None:
        index = self.tiers.index(tier)
        return self.tiers[index + 1] if index + 1 < len(self.tiers) else None

    def rewards_by_cost(self) -> list[Reward]:
        return sorted(self.rewards, key=lambda reward: reward.cost)


def load_program(path: Path | None) -> Program:
    """Read and validate the rules; without a path, the documented sample shipped with the bot."""
    if path is None:
        source = "the built-in sample program"
        text = resources.files("bot").joinpath("data/program.toml").read_text(encoding="utf-8")
    else:
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise ConfigError(f"PROGRAM_FILE {path}: cannot be read ({error.strerror})") from error
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"PROGRAM_FILE {source}: not valid TOML ({error})") from error
    try:
        program = Program.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(describe_validation_error(f"PROGRAM_FILE {source}", error)) from error
    logo = program.shop.logo
    if logo is not None and path is not None and not logo.is_absolute():
        logo = path.parent / logo
    if logo is not None and not logo.is_file():
        raise ConfigError(f"PROGRAM_FILE {source}: [shop] logo {logo} is not a file")
    shop = program.shop.model_copy(update={"logo": logo})
    return program.model_copy(update={"shop": shop})
