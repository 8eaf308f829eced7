"""Start-up configuration: the environment, the program file, and what an operator is told."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from bot.cli import main
from bot.config import load_settings
from bot.errors import ConfigError
from bot.program import EarningMode, load_program
from handlers.telegram.standin import FakeTelegram, api_error

ROOT = Path(__file__).resolve().parent.parent

SAMPLE = (Path(__file__).parent.parent / "bot" / "data" / "program.toml").read_text(
    encoding="utf-8"
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each test sees only the variables it sets, and a working folder with no .env."""
    for name in (
        "BOT_TOKEN",
        "TELEGRAM_API_URL",
        "DATABASE_PATH",
        "OWNER_IDS",
        "TIMEZONE",
        "DEFAULT_LANGUAGE",
        "PROGRAM_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_defaults_and_dotenv(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "BOT_TOKEN=1:abc\nOWNER_IDS=11, 22\nTELEGRAM_API_URL=http://127.0.0.1:8081/\n"
    )
    settings = load_settings()
    assert settings.require_token() == "1:abc"
    assert settings.owner_ids == frozenset({11, 22})
    assert settings.telegram_api_url == "http://127.0.0.1:8081"
    assert settings.database_path == tmp_path / "loyalty.db"  # absolute: the log names it
    assert settings.default_language == "es"
    assert settings.timezone == "Europe/Madrid"


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("OWNER_IDS", "12,abc", "owner_ids"),
        ("TIMEZONE", "Mars/Olympus", "timezone"),
        ("DEFAULT_LANGUAGE", "fr", "default_language"),
        ("TELEGRAM_API_URL", "api.telegram.org", "telegram_api_url"),
    ],
)
def test_bad_environment_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=named):
        load_settings()


def test_missing_token_explains_botfather(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config"]) == 2
    error = capsys.readouterr().err
    assert "BOT_TOKEN is not set" in error and "@BotFather" in error and "/newbot" in error


def test_check_config_accepts_a_good_setup(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BOT_TOKEN", "1:abc")
    assert main(["check-config"]) == 0
    assert "Bodega Familia Ruiz" in capsys.readouterr().out


def test_the_sample_program_is_valid() -> None:
    program = load_program(None)
    assert program.earning.mode is EarningMode.PER_ITEM
    assert [reward.cost for reward in program.rewards_by_cost()] == [10, 25]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (("cost = 10", "cost = 0"), "rewards.0.cost"),
        (('mode = "per_item"', 'mode = "per_bottle"'), "earning.mode"),
        (("threshold = 30", "threshold = 100"), "thresholds must be strictly increasing"),
        (('currency = "EUR"', 'currency = "euro"'), "shop.currency"),
        (("send_hour = 10", "send_hour = 25"), "birthday.send_hour"),
        (("[churn]", "[chrun]"), "chrun"),
    ],
)
def test_a_bad_program_file_names_the_field(
    tmp_path: Path, change: tuple[str, str], named: str
) -> None:
    path = tmp_path / "program.toml"
    path.write_text(SAMPLE.replace(*change, 1), encoding="utf-8")
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        load_program(path)


def test_program_file_problems_reach_the_operator(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "broken.toml").write_text("[shop\nname=", encoding="utf-8")
    monkeypatch.setenv("BOT_TOKEN", "1:abc")
    monkeypatch.setenv("PROGRAM_FILE", str(tmp_path / "broken.toml"))
    assert main(["check-config"]) == 2
    assert "not valid TOML" in capsys.readouterr().err
    monkeypatch.setenv("PROGRAM_FILE", str(tmp_path / "missing.toml"))
    assert main(["check-config"]) == 2
    assert "cannot be read" in capsys.readouterr().err


@pytest.mark.parametrize("refused", ["getMe", "getUpdates"])  # at start, or revoked later
async def test_a_token_telegram_refuses_stops_the_bot_with_a_clear_message(
    api: FakeTelegram, tmp_path: Path, refused: str
) -> None:
    api.override = lambda call: api_error(401, "Unauthorized") if call.method == refused else None
    env = {
        **os.environ,
        "BOT_TOKEN": "123456:REVOKED",
        "TELEGRAM_API_URL": api.url,
        "DATABASE_PATH": str(tmp_path / "bot.db"),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", cwd=ROOT, env=env, stderr=asyncio.subprocess.PIPE
    )
    _, error = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    text = error.decode()
    assert "Telegram refused BOT_TOKEN" in text
    assert "Traceback" not in text and "Unclosed" not in text  # no leaked HTTP session
