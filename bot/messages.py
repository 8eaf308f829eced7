"""Every sentence the bot says comes from a Jinja2 template under messages/<language>/."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, StrictUndefined, pass_context, select_autoescape
from jinja2.runtime import Context
from markupsafe import Markup

from bot.domain.models import Language
from bot.domain.money import Currency
from bot.wording import count, plural

TEMPLATE_SUFFIX = ".j2"
_ISO_MOMENT = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}|$)")


def _in_language(agree: Callable[[str, int, str, str], str]) -> Callable[..., str]:
    @pass_context
    def in_language(context: Context, n: int, one: str, other: str) -> str:
        # The template's folder is its language (macros, imported without context, too).
        return agree(str(context.name).split("/")[0], n, one, other)

    return in_language


def pick_language(code: str | None, default: Language) -> Language:
    """The person's Telegram language when the bot speaks it ("es-AR" counts as "es")."""
    if code:
        primary = code.split("-")[0].lower()
        if primary in {language.value for language in Language}:
            return Language(primary)
    return default


class Messages:
    """Renders templates as Telegram HTML: autoescaping keeps a customer's "<b>" in a name inert.

    StrictUndefined turns a variable the code forgot to pass into an error, not a blank.
    """

    def __init__(self, zone: ZoneInfo, currency: Currency) -> None:
        self._zone = zone
        self._currency = currency
        self._env = Environment(
            loader=PackageLoader("messages", ""),
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            # Templates ship with the code; checking their files on every message cost a
            # noticeable share of a /balance under load.
            auto_reload=False,
        )
        self._env.filters["day"] = self._local_day
        self._env.filters["money"] = self._money
        self._env.filters["time"] = self._local_time
        # {{ plural(n, "queda", "quedan") }} and {{ count(n, "punto", "puntos") }}: by the
        # rendered language's plural rules.
        self._env.globals["plural"] = _in_language(plural)
        self._env.globals["count"] = _in_language(count)
        self._modules: dict[tuple[Language, str], Any] = {}

    @property
    def environment(self) -> Environment:
        return self._env

    def render(self, language: Language, template_name: str, /, **context: Any) -> Markup:
        """Safe HTML, so that one rendered message can be placed inside another unescaped."""
        template = self._env.get_template(f"{language.value}/{template_name}{TEMPLATE_SUFFIX}")
        return Markup(template.render(language=language.value, **context).strip())

    def plain(self, language: Language, template_name: str, /, **context: Any) -> str:
        """Rendered for a place that shows no HTML, such as a button label."""
        return self.render(language, template_name, **context).unescape()

    def label(self, language: Language, name: str) -> str:
        """A button label or a short word, from the `{% set %}` lines of labels.j2."""
        return str(getattr(self._module(language, "labels"), name))

    def label_map(self, language: Language, name: str, template: str = "labels") -> dict[str, str]:
        """A `{% set name = {...} %}` table of labels.j2 (or of `template`), such as the words
        on a chart."""
        return dict(getattr(self._module(language, template), name))

    def command_descriptions(self, language: Language) -> dict[str, str]:
        """Command name -> one-line description, from commands.j2, for the menu and /help."""
        return dict(self._module(language, "commands").descriptions)

    def _module(self, language: Language, name: str) -> Any:
        """A template's exported variables; built once, as building means rendering it."""
        key = (language, name)
        if key not in self._modules:
            template = self._env.get_template(f"{language.value}/{name}{TEMPLATE_SUFFIX}")
            self._modules[key] = template.module
        return self._modules[key]

    def parameter(self, value: object) -> str:
        """A variable as a template parameter: a date as the shop writes it, "" for none."""
        if value is None:
            return ""
        if isinstance(value, str) and _ISO_MOMENT.match(value):
            return self._local_day(value)
        return str(value)

    def _local_day(self, moment: datetime | date | str) -> str:
        """The calendar day in the shop's time zone, day first as both audiences read it.
        Pushes carry their dates as ISO text, so text is accepted too (a bare date is a local
        day already)."""
        if isinstance(moment, str):
            moment = (
                date.fromisoformat(moment) if len(moment) == 10 else datetime.fromisoformat(moment)
            )
        if isinstance(moment, datetime):
            moment = moment.astimezone(self._zone)
        return moment.strftime("%d/%m/%Y")

    def _money(self, minor_units: int) -> str:
        """Integer minor units as the shop writes money: 1250 -> "12,50 EUR"."""
        return f"{self._currency.format(minor_units)} {self._currency.code}"

    def _local_time(self, moment: datetime) -> str:
        return moment.astimezone(self._zone).strftime("%H:%M")
