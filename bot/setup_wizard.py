"""`loyalty-bot setup`: the owner's own shop in a few questions, asked in their language (or
given as flags, for scripts). It writes a program file (the sample, with the shop's answers put
in and its comments kept) and a `.env` pointing at it, never replacing a file without asking.

Defaults come from the country through Babel's CLDR data: its currency, the currency's decimals,
how numbers are written there, and its time zone.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import tomllib
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from babel.core import get_global
from babel.numbers import get_currency_precision, get_decimal_symbol, get_territory_currencies
from pydantic import ValidationError

from bot.domain.models import Language
from bot.domain.money import Currency
from bot.errors import ConfigError, describe_validation_error
from bot.messages import Messages
from bot.program import Program

Ask = Callable[[str], str]


@dataclass
class Answers:
    language: str = "es"
    shop_name: str = ""
    country: str = "ES"
    currency: str = ""
    timezone: str = ""
    earning: str = "per_item"
    points: int = 1
    reward_name: str = ""
    reward_cost: int = 10
    tiers: bool = True
    tier_names: list[str] = field(default_factory=list)
    birthday_percent: int = 15
    telegram_token: str = ""
    owner_ids: str = ""
    whatsapp: bool = False
    whatsapp_token: str = ""
    whatsapp_phone_number_id: str = ""
    whatsapp_business_number: str = ""
    whatsapp_app_secret: str = ""
    whatsapp_verify_token: str = ""
    owner_phones: str = ""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Every answer as a flag; with --yes, what is not given takes its default unasked."""
    parser.add_argument("--language", choices=[language.value for language in Language])
    parser.add_argument("--shop-name")
    parser.add_argument("--country", help="two letters: ES, MX, EC, US...")
    parser.add_argument("--currency", help="three letters: EUR, USD, MXN...")
    parser.add_argument("--timezone", help="an IANA name: Europe/Madrid, America/Guayaquil...")
    parser.add_argument("--earning", choices=["per_item", "per_amount"])
    parser.add_argument("--points", type=int, help="points per item, or per unit of money")
    parser.add_argument("--reward-name")
    parser.add_argument("--reward-cost", type=int)
    parser.add_argument("--tiers", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--tier-names", help="three names, comma-separated")
    parser.add_argument("--birthday-percent", type=int)
    parser.add_argument("--telegram-token")
    parser.add_argument("--owner-ids")
    parser.add_argument("--whatsapp", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--whatsapp-token")
    parser.add_argument("--whatsapp-phone-number-id")
    parser.add_argument("--whatsapp-business-number")
    parser.add_argument("--whatsapp-app-secret")
    parser.add_argument("--whatsapp-verify-token")
    parser.add_argument("--owner-phones")
    parser.add_argument("--program-file", type=Path, default=Path("program.toml"))
    parser.add_argument("--env-file", type=Path, default=Path(".env"))
    parser.add_argument(
        "--yes", action="store_true", help="ask nothing: defaults, and replace existing files"
    )


class Wizard:
    def __init__(self, arguments: argparse.Namespace, ask: Ask, out: TextIO) -> None:
        self._given = arguments
        self._ask = ask
        self._out = out
        self._quiet = bool(arguments.yes)
        self._words: dict[str, str] = {}

    @property
    def words(self) -> dict[str, str]:
        """What setup says, in the owner's language (known once the first answer is in)."""
        return self._words

    def run(self) -> tuple[Path, Path]:
        """Ask, write both files; their paths."""
        answers = self.answers()
        program = program_text(answers)
        env = env_text(answers, self._given.program_file)
        for path, text in ((self._given.program_file, program), (self._given.env_file, env)):
            if self._may_write(path):
                path.write_text(text, encoding="utf-8")
                self._say(f"{self._words['written']}: {path}")
            else:
                self._say(f"{self._words['kept']}: {path}")
        return self._given.program_file, self._given.env_file

    def answers(self) -> Answers:
        given = self._given
        language = given.language or (
            "es" if self._quiet else self._choose("Idioma / Language [es/en]", "es", {"es", "en"})
        )
        self._words = _words(language)
        words = self._words
        if not self._quiet:
            self._say(words["welcome"])
        answers = Answers(language=language)
        answers.shop_name = self._text("shop_name", given.shop_name, "")
        answers.country = self._text("country", given.country, "ES").upper()
        answers.currency = self._text(
            "currency", given.currency, _currency_of(answers.country)
        ).upper()
        answers.timezone = self._text("timezone", given.timezone, _zone_of(answers.country))
        earning = given.earning or self._choose(words["earning"], "1", {"1", "2"})
        answers.earning = {"1": "per_item", "2": "per_amount"}.get(earning, earning)
        answers.points = self._number("points", given.points, 1)
        answers.reward_name = self._text("reward_name", given.reward_name, words["default_reward"])
        answers.reward_cost = self._number("reward_cost", given.reward_cost, 10)
        answers.tiers = self._yes("tiers", given.tiers, True)
        if answers.tiers:
            names = self._text("tier_names", given.tier_names, words["default_tiers"])
            answers.tier_names = [name.strip() for name in names.split(",") if name.strip()]
        answers.birthday_percent = self._number("birthday", given.birthday_percent, 15)
        answers.telegram_token = self._text("telegram_token", given.telegram_token, "")
        if answers.telegram_token:
            answers.owner_ids = self._text("owner_ids", given.owner_ids, "")
        answers.whatsapp = self._yes("whatsapp", given.whatsapp, False)
        if answers.whatsapp:
            for name in (
                "whatsapp_token",
                "whatsapp_phone_number_id",
                "whatsapp_business_number",
                "whatsapp_app_secret",
                "owner_phones",
            ):
                setattr(answers, name, self._text(name, getattr(given, name), ""))
            answers.whatsapp_verify_token = self._text(
                "verify_token", given.whatsapp_verify_token, secrets.token_urlsafe(24)
            )
        problem = _problem(answers)
        if problem:
            raise ConfigError(problem)
        return answers

    def _may_write(self, path: Path) -> bool:
        if not path.exists() or self._quiet:
            return True
        yes = self._words["yes"]
        return self._choose(f"{path} {self._words['overwrite']}", "n", {yes, "n"}) == yes

    def _say(self, line: str) -> None:
        print(line, file=self._out, flush=True)

    def _text(self, key: str, given: str | None, default: str) -> str:
        if given is not None:
            return given.strip()
        if self._quiet:
            return default
        while True:
            shown = f" [{default}]" if default else ""
            answer = self._ask(f"{self._words[key]}{shown}: ").strip() or default
            if answer or key != "shop_name":  # the one answer with no default
                return answer
            self._say(self._words["not_understood"])

    def _number(self, key: str, given: int | None, default: int) -> int:
        if given is not None:
            return given
        while True:
            answer = self._text(key, None, str(default))
            if answer.isdigit() and int(answer) > 0:
                return int(answer)
            self._say(self._words["not_understood"])

    def _yes(self, key: str, given: bool | None, default: bool) -> bool:
        if given is not None:
            return given
        yes = self._words["yes"]
        return self._choose(self._words[key], yes if default else "n", {yes, "n"}) == yes

    def _choose(self, question: str, default: str, allowed: set[str]) -> str:
        if self._quiet:
            return default
        while True:
            answer = self._ask(f"{question} [{default}]: ").strip().lower() or default
            if answer in allowed:
                return answer
            self._say(self._words.get("not_understood", "?"))


def _words(language: str) -> dict[str, str]:
    messages = Messages(ZoneInfo("UTC"), Currency("EUR", 2, ","))
    return messages.label_map(Language(language), "words", template="setup")


def _currency_of(country: str) -> str:
    found = get_territory_currencies(country) if re.fullmatch("[A-Z]{2}", country) else []
    return found[0] if found else "EUR"


def _zone_of(country: str) -> str:
    """The country's main time zone: the first of its zones in the time zone database's
    zone.tab, which lists the most populous first (Babel's own list is alphabetical, so
    Ecuador would get the Galapagos)."""
    for folder in zoneinfo.TZPATH:
        table = Path(folder) / "zone.tab"
        if table.is_file():
            for line in table.read_text(encoding="utf-8").splitlines():
                fields = line.split("\t")
                if len(fields) >= 3 and fields[0] == country:
                    return fields[2]
    zones = get_global("territory_zones").get(country) or ["Europe/Madrid"]
    return str(zones[-1])


def _decimal_mark(language: str, country: str) -> str:
    try:
        symbol = get_decimal_symbol(Locale(language, country))
    except (UnknownLocaleError, ValueError):
        symbol = get_decimal_symbol(Locale(language))
    return "," if symbol == "," else "."


def _problem(answers: Answers) -> str | None:
    """The first answer the bot could not run with, said plainly."""
    if not answers.shop_name:
        return "setup: the shop needs a name (--shop-name)"
    try:
        ZoneInfo(answers.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return f"setup: {answers.timezone!r} is not a time zone (try Europe/Madrid)"
    if not 1 <= answers.birthday_percent <= 100:
        return "setup: the birthday discount is a percentage from 1 to 100"
    if answers.tiers and len(answers.tier_names) != 3:
        return "setup: tiers take three names, comma-separated (or --no-tiers)"
    return None


def program_text(answers: Answers) -> str:
    """The sample program with the shop's answers in place; checked as the bot will read it."""
    text = resources.files("bot").joinpath("data/program.toml").read_text(encoding="utf-8")
    decimals = get_currency_precision(answers.currency)
    shop = {
        "name": _toml(answers.shop_name),
        "currency": _toml(answers.currency),
        "currency_decimals": str(decimals),
        "decimal_mark": _toml(_decimal_mark(answers.language, answers.country)),
        "phone_region": _toml(answers.country),
    }
    for key, value in shop.items():
        text = _set(text, "shop", key, value)
    text = _set(text, "earning", "mode", _toml(answers.earning))
    per = "points_per_item" if answers.earning == "per_item" else "points_per_currency_unit"
    text = _set(text, "earning", per, str(answers.points))
    text = _set(text, "birthday", "percent_off", str(answers.birthday_percent))
    name = _both(answers.reward_name)
    text = _replace_blocks(
        text,
        "[[rewards]]",
        f'[[rewards]]\nkey = "first_reward"\ncost = {answers.reward_cost}\nname = {name}\n',
    )
    text = _replace_blocks(text, "[[tiers]]", _tiers(answers))
    try:
        Program.model_validate(tomllib.loads(text))
    except ValidationError as error:
        raise ConfigError(describe_validation_error("setup", error)) from error
    return text


def env_text(answers: Answers, program_file: Path) -> str:
    """The settings that make this shop's .env; every other one keeps its default (see
    .env.example). A relative PROGRAM_FILE is read from the folder the bot starts in."""
    lines = [
        "# Written by `loyalty-bot setup`; every setting not here keeps its default",
        "# (.env.example lists them all).",
        f"BOT_TOKEN={answers.telegram_token}",
        f"OWNER_IDS={answers.owner_ids}",
        f"OWNER_PHONES={answers.owner_phones}",
        f"TIMEZONE={answers.timezone}",
        f"DEFAULT_LANGUAGE={answers.language}",
        f"PROGRAM_FILE={program_file}",
    ]
    if answers.whatsapp:
        lines += [
            f"WHATSAPP_TOKEN={answers.whatsapp_token}",
            f"WHATSAPP_PHONE_NUMBER_ID={answers.whatsapp_phone_number_id}",
            f"WHATSAPP_BUSINESS_NUMBER={answers.whatsapp_business_number}",
            f"WHATSAPP_APP_SECRET={answers.whatsapp_app_secret}",
            f"WHATSAPP_VERIFY_TOKEN={answers.whatsapp_verify_token}",
        ]
    return "\n".join(lines) + "\n"


def _tiers(answers: Answers) -> str:
    if not answers.tiers:
        name = _both(_words(answers.language)["single_tier"])
        return f'[[tiers]]\nkey = "member"\nthreshold = 0\nmultiplier = "1"\nname = {name}\n'
    steps = (("bronze", 0, "1"), ("silver", 30, "1.25"), ("gold", 80, "1.5"))
    return "\n".join(
        f'[[tiers]]\nkey = "{key}"\nthreshold = {threshold}\nmultiplier = "{multiplier}"\n'
        f"name = {_both(name)}\n"
        for (key, threshold, multiplier), name in zip(steps, answers.tier_names, strict=True)
    )


def _toml(value: str) -> str:
    """A TOML basic string (its escapes are JSON's)."""
    return json.dumps(value, ensure_ascii=False)


def _both(text: str) -> str:
    """The owner's words for both languages: they can translate them in the file later."""
    return f"{{ es = {_toml(text)}, en = {_toml(text)} }}"


def _set(text: str, section: str, key: str, value: str) -> str:
    """`key = value` in `[section]`, in place of the sample's."""
    header = re.search(rf"^\[{re.escape(section)}\]$", text, re.MULTILINE)
    assert header is not None, section
    following = re.compile(rf"^{re.escape(key)} = .*$", re.MULTILINE)
    found = following.search(text, header.end())
    assert found is not None, (section, key)
    return text[: found.start()] + f"{key} = {value}" + text[found.end() :]


def _replace_blocks(text: str, header: str, replacement: str) -> str:
    """Every `[[header]]` table of the sample gives way to `replacement`, at the first one's
    place; comments between them and the next section stay with that section."""
    lines = text.splitlines(keepends=True)
    starts = [index for index, line in enumerate(lines) if line.strip() == header]
    end = starts[-1] + 1
    while end < len(lines) and not lines[end].startswith("["):
        end += 1
    while lines[end - 1].startswith("#") or not lines[end - 1].strip():
        end -= 1
    return "".join(lines[: starts[0]]) + replacement + "".join(lines[end:])
