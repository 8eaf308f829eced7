"""Every template exists in both languages, takes the same variables, and is one the code uses."""

from __future__ import annotations

import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from jinja2 import meta

from bot.domain.models import Language
from bot.domain.money import Currency
from bot.messages import Messages, pick_language

ROOT = Path(__file__).parent.parent
MESSAGES = ROOT / "messages"


def _names(language: str) -> set[str]:
    folder = MESSAGES / language
    return {str(path.relative_to(folder)) for path in folder.rglob("*.j2")}


def test_every_template_exists_in_both_languages() -> None:
    assert _names("es") == _names("en")


@pytest.mark.parametrize("name", sorted(_names("es")))
def test_both_languages_take_the_same_variables(name: str) -> None:
    environment = Messages(ZoneInfo("UTC"), Currency("EUR", 2, ",")).environment
    variables = {}
    for language in ("es", "en"):
        source = (MESSAGES / language / name).read_text(encoding="utf-8")
        variables[language] = meta.find_undeclared_variables(environment.parse(source))
    assert variables["es"] == variables["en"]


def test_templates_named_in_code_exist() -> None:
    code = "\n".join(
        path.read_text(encoding="utf-8")
        for folder in ("bot", "handlers")
        for path in (ROOT / folder).rglob("*.py")
        if path.name != "standin.py"  # the channels' stand-ins speak HTTP, not templates
    )
    available = {name.removesuffix(".j2") for name in _names("es")}
    named = set(re.findall(r'reply\(\s*update,\s*context,\s*[^,]+,\s*"([a-z_/]+)"', code))
    named |= set(re.findall(r'render\(\s*[^,]+,\s*"([a-z_/]+)"', code))
    named |= {name for name in re.findall(r'"([a-z_]+/[a-z_]+)"', code)}
    # Problems and referral notes are named by the domain and looked up under their folder.
    named |= {f"problems/{p}" for p in re.findall(r'InvalidInput\("([a-z_]+)"\)', code)}
    named |= {f"referral/{n}" for n in re.findall(r'(?:return|=) "(referral_[a-z_]+)"', code)}
    assert len(named) > 20, "the scan found too few names to be working"
    assert named <= available, named - available


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("es", Language.ES),
        ("es-MX", Language.ES),
        ("EN-gb", Language.EN),
        ("pt-BR", Language.ES),
        (None, Language.ES),
        ("", Language.ES),
    ],
)
def test_pick_language(code: str | None, expected: Language) -> None:
    assert pick_language(code, Language.ES) is expected


def test_names_are_escaped_in_html() -> None:
    messages = Messages(ZoneInfo("UTC"), Currency("EUR", 2, ","))
    text = messages.render(Language.EN, "menu", name="<b>Eve</b> & co")
    assert "&lt;b&gt;Eve&lt;/b&gt; &amp; co" in text
