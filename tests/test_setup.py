"""`loyalty-bot setup`: the owner's own shop from a few answers (typed, or given as flags),
written to program.toml and .env, never over a file without asking, and checked at once."""

from __future__ import annotations

from pathlib import Path

from bot.config import Settings
from bot.program import load_program
from tests.test_operations import TOKEN, _environment, _loyalty_bot


async def test_setup_by_flags_makes_the_shop_its_own_and_check_config_agrees(
    tmp_path: Path,
) -> None:
    code, out, err = await _loyalty_bot(
        "setup",
        "--yes",
        "--language=es",
        '--shop-name=Vinos Pérez "El Tío"',
        "--country=EC",
        "--earning=per_amount",
        "--points=2",
        "--reward-name=un jamón",
        "--reward-cost=40",
        "--tier-names=Socio, Amigo, Familia",
        "--birthday-percent=20",
        f"--telegram-token={TOKEN}",
        "--owner-ids=42",
        cwd=tmp_path,
        env=_environment(),
    )
    assert code == 0, err
    assert "Escrito: program.toml" in out and "Escrito: .env" in out
    assert 'configuration is valid: Vinos Pérez "El Tío"' in out
    assert "customers will see" not in out  # the sample is no longer in use
    program = load_program(tmp_path / "program.toml")
    shop = program.shop
    assert (shop.name, shop.currency, shop.decimal_mark, shop.phone_region) == (
        'Vinos Pérez "El Tío"',
        "USD",
        ",",
        "EC",
    )
    assert (program.earning.mode, program.earning.points_per_currency_unit) == ("per_amount", 2)
    assert [(reward.name.es, reward.cost) for reward in program.rewards] == [("un jamón", 40)]
    assert [tier.name.es for tier in program.tiers] == ["Socio", "Amigo", "Familia"]
    assert program.birthday.percent_off == 20
    settings = Settings(_env_file=tmp_path / ".env")  # type: ignore[call-arg]
    assert settings.timezone == "America/Guayaquil"  # the country's main zone
    assert settings.owner_ids == frozenset({42}) and settings.default_language == "es"
    code, out, err = await _loyalty_bot("check-config", cwd=tmp_path, env=_environment())
    assert code == 0 and "Vinos Pérez" in out, err
    assert "# logo" in (tmp_path / "program.toml").read_text()  # the sample's comments kept


async def test_setup_asks_in_the_owners_language_and_keeps_a_file_it_was_told_to(
    tmp_path: Path,
) -> None:
    (tmp_path / ".env").write_text("BOT_TOKEN=keep-me\n")
    answers = [
        "en",  # language
        "",  # no name yet: asked again
        "Corner Wines",
        "us",  # country: its currency, decimals and zone follow
        "",  # currency (USD)
        "",  # time zone (the country's)
        "3",  # not an answer: asked again
        "1",  # per item
        "",  # 1 point per item
        "",  # the default reward
        "",  # its cost
        "n",  # no tiers
        "10",  # birthday percent
        "",  # no Telegram token yet
        "n",  # no WhatsApp
        "n",  # keep the existing .env
    ]
    typed = "\n".join(answers) + "\n"
    code, out, err = await _loyalty_bot("setup", cwd=tmp_path, env=_environment(), typed=typed)
    assert code == 0, err
    assert "What is the shop called?" in out and "I did not understand that" in out
    assert "Left as it was: .env" in out and "Written: program.toml" in out
    assert (tmp_path / ".env").read_text() == "BOT_TOKEN=keep-me\n"
    program = load_program(tmp_path / "program.toml")
    assert (program.shop.name, program.shop.currency, program.shop.decimal_mark) == (
        "Corner Wines",
        "USD",
        ".",
    )
    assert [tier.name.en for tier in program.tiers] == ["Member"]
    assert program.rewards[0].name.en == "a free bottle"


async def test_setup_stopped_halfway_writes_nothing(tmp_path: Path) -> None:
    code, _, err = await _loyalty_bot(
        "setup", cwd=tmp_path, env=_environment(), typed="es\nVinos\n"
    )  # then the input ends, as Ctrl-D does
    assert code == 2 and "setup stopped before the end; nothing was written" in err
    assert "Traceback" not in err and not (tmp_path / ".env").exists()
    assert not (tmp_path / "program.toml").exists()


async def test_setup_refuses_what_the_bot_could_not_run_with_in_one_sentence(
    tmp_path: Path,
) -> None:
    code, _, err = await _loyalty_bot(
        "setup",
        "--yes",
        "--shop-name=X",
        "--timezone=Mars/Olympus",
        cwd=tmp_path,
        env=_environment(),
    )
    assert code == 2 and "'Mars/Olympus' is not a time zone" in err
    assert not (tmp_path / ".env").exists() and not (tmp_path / "program.toml").exists()
