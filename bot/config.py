"""Settings from the environment and `.env`; every variable is documented in `.env.example`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.errors import ConfigError, describe_validation_error

OFFICIAL_API_URL = "https://api.telegram.org"

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
    owner_ids: Annotated[frozenset[int], NoDecode] = frozenset()
    timezone: str = "Europe/Madrid"
    default_language: Literal["es", "en"] = "es"
    program_file: Path | None = None
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

    @field_validator("database_path")
    @classmethod
    def _absolute_database_path(cls, value: Path) -> Path:
        # Resolved once, at start: the log names the very file, wherever the bot was started.
        return value.expanduser().absolute()

    @field_validator("telegram_api_url")
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
    def backups(self) -> Path:
        folder = self.backup_dir or self.database_path.parent / "backups"
        return folder.expanduser().absolute()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

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


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        raise ConfigError(describe_validation_error("The environment (.env)", error)) from error
