"""Settings from the environment and `.env`; every variable is documented in `.env.example`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.domain.parsing import InvalidInput, normalise_phone
from bot.errors import ConfigError, describe_validation_error

OFFICIAL_API_URL = "https://api.telegram.org"
GRAPH_API_URL = "https://graph.facebook.com"

MISSING_TOKEN_HELP = """BOT_TOKEN is not set. To get one:
  1. open Telegram and talk to @BotFather;
  2. send /newbot and follow the questions (a name, then a username ending in "bot");
  3. copy the token it gives you into .env as BOT_TOKEN=123456:ABC...
"""


# What @BotFather hands out: the bot's numeric id, a colon, then letters, digits, "_" and "-".
TOKEN_SHAPE = re.compile(r"^[0-9]{1,20}:[A-Za-z0-9_-]{1,100}$")


class Settings(BaseSettings):
    # An empty line in .env (`PROGRAM_FILE=`) means "the default", as .env.example promises.
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True
    )

    bot_token: SecretStr | None = None
    telegram_api_url: str = OFFICIAL_API_URL
    database_path: Path = Path("./loyalty.db")
    # postgresql://user:password@host/dbname: PostgreSQL instead of the SQLite file, for a
    # shop served by several processes (README, "Several processes on PostgreSQL").
    database_url: SecretStr | None = None
    owner_ids: Annotated[frozenset[int], NoDecode] = frozenset()
    timezone: str = "Europe/Madrid"
    default_language: Literal["es", "en"] = "es"
    program_file: Path | None = None
    # Telegram by webhook instead of polling (several processes need it): the public https
    # address whose path the bot serves on WEBHOOK_LISTEN, and the secret Telegram sends back.
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: SecretStr | None = None
    # Seconds getUpdates waits for news; tests shorten it so shutdown is quick.
    polling_timeout: int = Field(default=30, ge=0, le=50)
    # Pushes per second; Telegram allows about 30, and replies to customers need some room.
    push_rate_per_second: float = Field(default=25, gt=0, le=30)
    # Hold all outgoing requests under Telegram's overall limit (about 30 a second).
    limit_outgoing_rate: bool = True
    # Per person: a burst of this many updates, then FLOOD_REFILL_PER_SECOND; beyond it the
    # person is told to slow down and the rest is dropped, so one person cannot hold up others.
    flood_burst: int = Field(default=20, ge=1, le=100_000)
    flood_refill_per_second: float = Field(default=1.0, gt=0, le=1000)
    # Daily copies of the database; None: a `backups` folder beside it. 0 copies: none made.
    backup_dir: Path | None = None
    backup_keep: int = Field(default=14, ge=0, le=3650)
    backup_hour: int = Field(default=3, ge=0, le=23)
    # WhatsApp Business Cloud API; the channel runs when the first five are set.
    whatsapp_token: SecretStr | None = None
    whatsapp_phone_number_id: str | None = None
    whatsapp_business_number: str | None = None  # international digits, for wa.me links
    whatsapp_app_secret: SecretStr | None = None
    whatsapp_verify_token: SecretStr | None = None
    whatsapp_api_url: str = GRAPH_API_URL
    webhook_listen: str = "0.0.0.0:8080"
    # Owners on WhatsApp, as people write numbers ("+593 99 111 0001"), normalised to E.164.
    owner_phones: Annotated[frozenset[str], NoDecode] = frozenset()
    # People the number may write to first (a template, outside their 24 hours) per rolling
    # day: its messaging tier in Meta's WhatsApp Manager (250 for a new number).
    whatsapp_daily_limit: int = Field(default=250, ge=1)

    @field_validator("owner_ids", mode="before")
    @classmethod
    def _split_owner_ids(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [part.strip() for part in value.split(",") if part.strip()]
            for part in parts:
                if not part.isdigit():
                    raise ValueError(f"{part!r} is not a Telegram user id (digits only)")
            return frozenset(int(part) for part in parts)
        return value

    @field_validator("owner_phones", mode="before")
    @classmethod
    def _normalise_owner_phones(cls, value: object) -> object:
        if isinstance(value, str):
            phones = set()
            for part in (part.strip() for part in value.split(",")):
                if not part:
                    continue
                if not part.startswith(("+", "00")):
                    raise ValueError(f"{part!r}: write the number with its country code, +593...")
                try:
                    phones.add(normalise_phone(part, "ZZ"))
                except InvalidInput as error:
                    raise ValueError(f"{part!r} is not a phone number") from error
            return frozenset(phones)
        return value

    @field_validator("whatsapp_business_number")
    @classmethod
    def _digits_only(cls, value: str | None) -> str | None:
        if value is None:
            return None
        digits = "".join(character for character in value if character.isdigit())
        if not 8 <= len(digits) <= 15:
            raise ValueError(
                "the shop's WhatsApp number in international digits, e.g. 593991110001"
            )
        return digits

    @field_validator("whatsapp_app_secret", mode="before")
    @classmethod
    def _app_secret_shape(cls, value: object) -> object:
        """Meta's app secret is 32 hexadecimal characters; anything else signs nothing of
        Meta's, and a short one would let anybody forge webhooks."""
        text = _secret_text(value)
        if not text:
            return None
        if not APP_SECRET_SHAPE.fullmatch(text):
            raise ValueError(
                "WHATSAPP_APP_SECRET is the app secret from App settings > Basic in Meta for"
                " Developers: 32 characters, 0-9 and a-f"
            )
        return text

    @field_validator("whatsapp_verify_token", mode="before")
    @classmethod
    def _verify_token_length(cls, value: object) -> object:
        text = _secret_text(value)
        if not text:
            return None
        if len(text) < SHORTEST_VERIFY_TOKEN:
            raise ValueError(
                f"WHATSAPP_VERIFY_TOKEN must be at least {SHORTEST_VERIFY_TOKEN} characters:"
                " a word of your own that nobody could guess"
            )
        return text

    @field_validator("webhook_listen")
    @classmethod
    def _host_and_port(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError("host:port, such as 0.0.0.0:8080")
        return value

    @field_validator("database_path")
    @classmethod
    def _absolute_database_path(cls, value: Path) -> Path:
        # Resolved once, at start: the log names the very file, wherever the bot was started.
        return value.expanduser().absolute()

    @field_validator("telegram_webhook_url")
    @classmethod
    def _webhook_url(cls, value: str | None) -> str | None:
        if value is not None and not (
            value.startswith(("https://", "http://")) and urlsplit(value).path.strip("/")
        ):
            raise ValueError(
                "an https:// address with a path, such as https://shop.example.com/telegram"
            )
        return value

    @field_validator("telegram_webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        # Telegram's rule for secret_token: 1-256 of A-Z, a-z, 0-9, _ and -.
        if value is not None and not re.fullmatch(
            r"[A-Za-z0-9_-]{16,256}", value.get_secret_value()
        ):
            raise ValueError("16 to 256 letters, digits, _ or - (openssl rand -hex 32 makes one)")
        return value

    @field_validator("database_url")
    @classmethod
    def _postgresql_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(
            ("postgresql://", "postgres://")
        ):
            raise ValueError("must start with postgresql://, such as postgresql://bot@db/shop")
        return value

    @field_validator("telegram_api_url", "whatsapp_api_url")
    @classmethod
    def _strip_trailing_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"{value!r} is not an IANA time zone such as Europe/Madrid") from error
        return value

    @property
    def postgresql_url(self) -> str | None:
        return self.database_url.get_secret_value() if self.database_url else None

    @property
    def database_shown(self) -> str:
        """The database for logs: the file, or the server and database without credentials."""
        if not self.postgresql_url:
            return str(self.database_path)
        from bot.storage.postgresql import describe  # psycopg, only for a PostgreSQL shop

        return describe(self.postgresql_url)

    @property
    def backups(self) -> Path:
        folder = self.backup_dir or self.database_path.parent / "backups"
        return folder.expanduser().absolute()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def telegram_webhook(self) -> tuple[str, str] | None:
        """(public address, secret) in webhook mode; None when polling."""
        if not self.telegram_webhook_url:
            return None
        if self.telegram_webhook_secret is None:
            raise ConfigError(
                "TELEGRAM_WEBHOOK_SECRET: required with TELEGRAM_WEBHOOK_URL, so that only"
                " Telegram can post updates (openssl rand -hex 32 makes one)"
            )
        return self.telegram_webhook_url, self.telegram_webhook_secret.get_secret_value()

    @property
    def telegram_enabled(self) -> bool:
        """Telegram runs unless only WhatsApp is configured (then BOT_TOKEN may be empty)."""
        has_token = self.bot_token is not None and bool(self.bot_token.get_secret_value().strip())
        return has_token or not self.whatsapp_enabled

    @property
    def whatsapp_enabled(self) -> bool:
        return not self.whatsapp_missing

    @property
    def whatsapp_missing(self) -> tuple[str, ...]:
        """The WhatsApp settings not set: all of them (the channel is off) or some (an error)."""
        values = {
            "WHATSAPP_TOKEN": self.whatsapp_token,
            "WHATSAPP_PHONE_NUMBER_ID": self.whatsapp_phone_number_id,
            "WHATSAPP_BUSINESS_NUMBER": self.whatsapp_business_number,
            "WHATSAPP_APP_SECRET": self.whatsapp_app_secret,
            "WHATSAPP_VERIFY_TOKEN": self.whatsapp_verify_token,
        }
        return tuple(name for name, value in values.items() if not value)

    @property
    def listen_host_port(self) -> tuple[str, int]:
        host, _, port = self.webhook_listen.rpartition(":")
        return host, int(port)

    def require_token(self) -> str:
        if self.bot_token is None or not self.bot_token.get_secret_value().strip():
            raise ConfigError(MISSING_TOKEN_HELP)
        token = self.bot_token.get_secret_value().strip()
        if not TOKEN_SHAPE.match(token):
            raise ConfigError(
                "BOT_TOKEN does not look like a token from @BotFather (digits, a colon, then"
                " letters and digits, e.g. 123456789:AAH...); copy it again"
            )
        return token


def _secret_text(value: object) -> str:
    return str(value.get_secret_value() if isinstance(value, SecretStr) else value or "").strip()


APP_SECRET_SHAPE = re.compile(r"[0-9a-fA-F]{32}")
SHORTEST_VERIFY_TOKEN = 16

WHATSAPP_SETTINGS = (
    "WHATSAPP_TOKEN",
    "WHATSAPP_PHONE_NUMBER_ID",
    "WHATSAPP_BUSINESS_NUMBER",
    "WHATSAPP_APP_SECRET",
    "WHATSAPP_VERIFY_TOKEN",
)


def load_settings(**overrides: object) -> Settings:
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        raise ConfigError(describe_validation_error("The environment (.env)", error)) from error
    missing = settings.whatsapp_missing
    if missing and missing != WHATSAPP_SETTINGS:
        raise ConfigError(
            f"WhatsApp is half set up: {', '.join(missing)} missing (set all five"
            f" WHATSAPP_* settings to run it, or none)"
        )
    return settings
