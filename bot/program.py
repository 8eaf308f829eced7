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


TemplateName = Annotated[str, Field(min_length=1, max_length=512, pattern=r"^[a-z0-9_]+$")]


class ApprovedTemplate(_Rules):
    """A message template approved in Meta's manager, standing in for one of the bot's pushes
    when the customer has not written for 24 hours (WhatsApp allows only templates then)."""

    message: Literal["pushes/birthday", "pushes/satisfaction", "pushes/nps", "coupons/winback"]
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
        return Program.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(describe_validation_error(f"PROGRAM_FILE {source}", error)) from error
