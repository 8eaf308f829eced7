"""Running a real shop: the quick start as the README gives it, start-up failures an operator
can act on, backups and restores, and changes to the program file."""

from __future__ import annotations

import asyncio
import os
import pty
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from telegram.warnings import PTBUserWarning

from bench.dataset import build, clerk_user_id, member_code
from bot.domain.models import Refused
from bot.domain.rewards import RewardsService
from bot.errors import unreachable
from bot.setup_check import check_setup
from bot.storage.backups import exclusive_use
from bot.storage.database import bundled_migrations
from bot.storage.sqlite import pending_migrations
from handlers.telegram.standin import FakeTelegram, api_error
from tests.conftest import RunningBot, database_of_an_earlier_version
from tests.flows import CLERK, buy, join
from tests.test_fault_drills import bot_process

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "123456789:AAHk2xYzExampleTokenOfTheRightShape00"
# Settings the tests' own environment must not leak into a process that reads .env.
SETTINGS = ("BOT_TOKEN", "TELEGRAM_API_URL", "DATABASE_PATH", "OWNER_IDS", "PROGRAM_FILE")


def _environment(**values: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in SETTINGS}
    return {**env, **values}


def _quick_start_folder(tmp_path: Path) -> Path:
    """The README's step 2: `.env.example` copied to `.env`, only the token filled in."""
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    lines = [
        f"BOT_TOKEN={TOKEN}" if line == "BOT_TOKEN=" else line for line in example.splitlines()
    ]
    assert f"BOT_TOKEN={TOKEN}" in lines
    (tmp_path / ".env").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return tmp_path


async def _loyalty_bot(
    *arguments: str,
    cwd: Path,
    env: dict[str, str],
    timeout: float = 60,
    umask: int = 0o022,
    typed: str | None = None,
) -> tuple[int, str, str]:
    """`python -m bot ARGUMENTS` in `cwd`; `typed` goes to its standard input."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *arguments,
        cwd=cwd,
        env={**env, "PYTHONPATH": str(ROOT)},
        preexec_fn=lambda: os.umask(umask),  # as most shells leave it
        stdin=asyncio.subprocess.PIPE if typed is not None else None,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdin = typed.encode() if typed is not None else None
    out, err = await asyncio.wait_for(process.communicate(stdin), timeout)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_the_quick_start_works_from_env_example_as_the_readme_says(tmp_path: Path) -> None:
    folder = _quick_start_folder(tmp_path)
    code, out, err = await _loyalty_bot("check-config", cwd=folder, env=_environment())
    assert code == 0, err
    assert "configuration is valid" in out
    assert f"database: {folder / 'loyalty.db'}" in out  # created, and named in full
    assert "OWNER_IDS is empty" in out and "/help" in out
    assert "customers will see Bodega Familia Ruiz" in out and "loyalty-bot setup" in out
    assert "on its own: points expiry off; automatic win-back on;" in out
    assert "offers at most 2 a week, none from 21 to 9 h" in out
    assert (folder / "loyalty.db").exists()


async def test_the_quick_start_serves_customers(api: FakeTelegram, tmp_path: Path) -> None:
    """The same .env, with the stand-in's address in the environment (which wins over .env)."""
    folder = _quick_start_folder(tmp_path)
    env = {**_environment(TELEGRAM_API_URL=api.url, POLLING_TIMEOUT="1"), "PYTHONPATH": str(ROOT)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", cwd=folder, env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        customer = api.user(42, "Lucía", "es")
        await customer.send("/start")
        await customer.receive_containing("1/4", timeout=60)
        await customer.send("/help")  # with no owner yet, the reply gives the id to put there
        await customer.receive_containing("<code>42</code>", timeout=60)
    finally:
        process.terminate()
        _, err = await process.communicate()
    log = err.decode()
    assert f"database: {folder / 'loyalty.db'}" in log
    assert "program file: the built-in sample" in log and "channel: telegram" in log
    assert "Traceback" not in log


@pytest.mark.parametrize("token", ["hello world", "123456", "abc:def"])
async def test_check_config_refuses_a_token_of_the_wrong_shape(tmp_path: Path, token: str) -> None:
    code, _, err = await _loyalty_bot(
        "check-config", cwd=tmp_path, env=_environment(BOT_TOKEN=token)
    )
    assert code == 2
    assert "BOT_TOKEN does not look like a token" in err and "Traceback" not in err


async def test_check_config_online_asks_telegram(api: FakeTelegram, tmp_path: Path) -> None:
    env = _environment(BOT_TOKEN=TOKEN, TELEGRAM_API_URL=api.url)
    code, out, err = await _loyalty_bot("check-config", "--online", cwd=tmp_path, env=env)
    assert code == 0, err
    assert "the bot is @bodega_loyalty_bot" in out
    api.override = lambda call: api_error(401, "Unauthorized")
    code, _, err = await _loyalty_bot("check-config", "--online", cwd=tmp_path, env=env)
    assert code == 2 and "Telegram refused BOT_TOKEN" in err
    assert "Traceback" not in err and "Unclosed" not in err


async def test_an_unreachable_telegram_is_said_in_one_plain_sentence(tmp_path: Path) -> None:
    """Not aiohttp's 250-character ClientConnectorDNSError(ConnectionKey(...)): which host,
    and what is wrong with it."""
    env = _environment(BOT_TOKEN=TOKEN, TELEGRAM_API_URL="http://nosuchhost.invalid")
    code, _, err = await _loyalty_bot("check-config", "--online", cwd=tmp_path, env=env)
    said = err.strip().splitlines()[-1]
    assert "ConnectionKey" not in err and "Traceback" not in err
    assert code == 2 and said == (
        "loyalty-bot: Telegram cannot be reached: nosuchhost.invalid cannot be resolved"
        " (is this machine online, and its DNS working?)"
    )


def test_errors_from_any_library_are_said_plainly() -> None:
    refused = OSError("boom")
    refused.__cause__ = ConnectionRefusedError(111, "Connection refused")
    assert unreachable("graph.facebook.com", refused) == "graph.facebook.com refused the connection"
    assert (
        unreachable("api.telegram.org", TimeoutError()) == "api.telegram.org did not answer in time"
    )
    long = RuntimeError("x" * 500)
    assert len(unreachable("h", long)) < 160 and unreachable("h", long).endswith("…")


def _read_only_mount_available() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--mount", "true"], capture_output=True, check=False, timeout=10
    )
    return probe.returncode == 0


@pytest.mark.skipif(not _read_only_mount_available(), reason="needs a private mount namespace")
async def test_a_database_on_a_read_only_disk_is_one_clear_sentence(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    with closing(sqlite3.connect(data / "loyalty.db")) as connection:
        connection.execute("CREATE TABLE placeholder (x)")
    mounted = (
        f"mount --bind {data} {data} && mount -o remount,ro,bind {data} {data} &&"
        f" exec {sys.executable} -m bot"
    )
    env = {
        **_environment(BOT_TOKEN=TOKEN, DATABASE_PATH=str(data / "loyalty.db")),
        "PYTHONPATH": str(ROOT),
    }
    for command in ("check-config", "run"):
        process = await asyncio.create_subprocess_exec(
            "unshare",
            "--mount",
            "sh",
            "-c",
            f"{mounted} {command}",
            cwd=tmp_path,
            env=env,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(process.communicate(), 60)
        text = err.decode()
        assert process.returncode == 2, text
        assert "loyalty-bot: DATABASE_PATH" in text and "cannot be written" in text
        assert "Traceback" not in text


async def test_telegram_unreachable_at_start_is_waited_for(tmp_path: Path) -> None:
    with closing(socket.socket()) as probe:  # a port nobody listens on, for now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **_environment(
            BOT_TOKEN=TOKEN,
            TELEGRAM_API_URL=f"http://127.0.0.1:{port}",
            DATABASE_PATH=str(tmp_path / "bot.db"),
            POLLING_TIMEOUT="1",
        ),
        "PYTHONPATH": str(ROOT),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", cwd=tmp_path, env=env, stderr=asyncio.subprocess.PIPE
    )
    assert process.stderr is not None
    api = FakeTelegram()
    try:
        while b"Telegram cannot be reached" not in await process.stderr.readline():
            pass
        await api.start(port)
        customer = api.user(43, "Tomás", "es")
        await customer.send("/start")
        await customer.receive_containing("1/4", timeout=60)
    finally:
        process.terminate()
        rest = await process.stderr.read()
        await process.wait()
        await api.stop()
    assert b"Traceback" not in rest


async def test_a_backup_taken_during_a_burst_of_sales_has_every_acknowledged_sale(
    api: FakeTelegram, tmp_path: Path
) -> None:
    database, clerks = tmp_path / "shop.db", 40
    await asyncio.to_thread(build, database, clerks, 0, datetime.now(UTC), clerks=clerks)
    receipts: list[int] = []
    half_served = asyncio.Event()
    async with bot_process(api, database):
        users = [api.user(clerk_user_id(n), f"Clerk {n}", "es") for n in range(1, clerks + 1)]

        async def sell(number: int) -> None:
            clerk = users[number - 1]
            await clerk.send(f"/sale {member_code(number)} 10 1")
            prompt = await clerk.receive_with_button("sale:ok:", timeout=60)
            await clerk.press(prompt, "✅")
            await clerk.receive_containing("#", timeout=60)
            receipts.append(number)
            if len(receipts) >= clerks // 2:
                half_served.set()

        selling = asyncio.gather(*(sell(n) for n in range(1, clerks + 1)))
        await asyncio.wait_for(half_served.wait(), 60)
        acknowledged = len(receipts)
        code, out, err = await _loyalty_bot(
            "backup",
            str(tmp_path / "copy.db"),
            cwd=tmp_path,
            env=_environment(BOT_TOKEN=TOKEN, DATABASE_PATH=str(database)),
        )
        await selling
    assert code == 0, err
    assert "checked" in out
    with closing(sqlite3.connect(tmp_path / "copy.db")) as copy:
        (sales,) = copy.execute("SELECT COUNT(*) FROM sales").fetchone()
        (integrity,) = copy.execute("PRAGMA integrity_check").fetchone()
    assert sales >= acknowledged and integrity == "ok"


async def test_restore_refuses_while_a_bot_runs_and_keeps_the_replaced_database(
    tmp_path: Path,
) -> None:
    database = tmp_path / "shop.db"
    await asyncio.to_thread(build, database, 3, 30, datetime.now(UTC))
    env = _environment(BOT_TOKEN=TOKEN, DATABASE_PATH=str(database))
    code, _, err = await _loyalty_bot("backup", str(tmp_path / "good.db"), cwd=tmp_path, env=env)
    assert code == 0, err
    with closing(sqlite3.connect(database)) as connection, connection:
        connection.execute("DELETE FROM sales")  # a mistake to undo
    with exclusive_use(database):  # what a running bot holds
        code, _, err = await _loyalty_bot(
            "restore", str(tmp_path / "good.db"), cwd=tmp_path, env=env
        )
    assert code == 2 and "another loyalty-bot is running" in err
    code, out, err = await _loyalty_bot("restore", str(tmp_path / "good.db"), cwd=tmp_path, env=env)
    assert code == 0, err
    assert "the database as it was is kept at" in out
    with closing(sqlite3.connect(database)) as connection:
        assert connection.execute("SELECT COUNT(*) FROM sales").fetchone()[0] > 0
    assert list((tmp_path / "backups").glob("loyalty-*-replaced.db"))
    code, _, err = await _loyalty_bot(
        "restore", str(tmp_path / "nothing.db"), cwd=tmp_path, env=env
    )
    assert code == 2 and "no such backup file" in err


async def test_restore_sees_through_a_link_and_takes_only_a_loyalty_bot_database(
    tmp_path: Path,
) -> None:
    """DATABASE_PATH a symbolic link to the file a running bot holds: still refused. A SQLite
    file of somebody else's (one table `t`): refused, and the database left as it was."""
    database = tmp_path / "shop.db"
    await asyncio.to_thread(build, database, 3, 30, datetime.now(UTC))
    link = tmp_path / "link.db"
    link.symlink_to(database)
    env = _environment(BOT_TOKEN=TOKEN, DATABASE_PATH=str(link))
    code, _, err = await _loyalty_bot("backup", str(tmp_path / "good.db"), cwd=tmp_path, env=env)
    assert code == 0, err
    with exclusive_use(database):  # the running bot, started on the file's own name
        code, _, err = await _loyalty_bot(
            "restore", str(tmp_path / "good.db"), cwd=tmp_path, env=env
        )
    assert code == 2 and "another loyalty-bot is running" in err
    stranger = tmp_path / "stranger.db"
    with closing(sqlite3.connect(stranger)) as connection, connection:
        connection.execute("CREATE TABLE t (x)")
    code, _, err = await _loyalty_bot("restore", str(stranger), cwd=tmp_path, env=env)
    assert code == 2 and "not a loyalty-bot database" in err
    with closing(sqlite3.connect(database)) as connection:
        assert connection.execute("SELECT COUNT(*) FROM sales").fetchone()[0] == 30
    env = _environment(BOT_TOKEN=TOKEN, DATABASE_PATH=str(stranger))
    code, _, err = await _loyalty_bot("check-config", cwd=tmp_path, env=env)
    assert code == 2 and "not a loyalty-bot database" in err


async def test_no_command_upgrades_the_database_under_a_running_bot_of_an_earlier_version(
    tmp_path: Path,
) -> None:
    """The new version installed, the old bot still running: check-config and run-job open
    the database as `run` does, and would upgrade it under the old bot. They say so instead;
    once it is stopped, the same check-config upgrades it (after its copy)."""
    database = tmp_path / "shop.db"
    latest = bundled_migrations()[-1][0]
    database_of_an_earlier_version(database, latest - 1)
    env = _environment(BOT_TOKEN=TOKEN, DATABASE_PATH=str(database))
    with exclusive_use(database):  # the earlier version's bot, running
        for command in (["check-config"], ["run-job", "digest"]):
            code, _, err = await _loyalty_bot(*command, cwd=tmp_path, env=env)
            assert code == 2 and "is an earlier version" in err, (command, err)
            assert pending_migrations(database) == [latest]
    assert not (tmp_path / "backups").exists()  # nothing was copied either
    code, out, err = await _loyalty_bot("check-config", cwd=tmp_path, env=env)
    assert code == 0, err
    assert "opened and up to date" in out and pending_migrations(database) == []
    assert list((tmp_path / "backups").glob("*-before-upgrade.db"))


async def test_the_database_its_log_and_its_copies_are_private_whatever_the_umask(
    tmp_path: Path,
) -> None:
    database = tmp_path / "shop.db"
    env = _environment(BOT_TOKEN=TOKEN, DATABASE_PATH=str(database))

    assert (await _loyalty_bot("check-config", cwd=tmp_path, env=env))[0] == 0
    code, _, err = await _loyalty_bot("backup", cwd=tmp_path, env=env)
    assert code == 0, err  # into the default folder, which it creates
    assert _modes(tmp_path) == ({"0o600"}, "0o700")


def _modes(folder: Path) -> tuple[set[str], str]:
    """The modes of the database's files and its copies, and of the backup folder."""
    backups = folder / "backups"
    made = [*folder.glob("shop.db*"), *backups.glob("loyalty-*.db")]
    assert len(made) == 4, made  # the database, its -wal and -shm, and one copy
    return {oct(path.stat().st_mode & 0o777) for path in made}, oct(backups.stat().st_mode & 0o777)


@pytest.mark.sqlite_only
async def test_the_daily_backup_keeps_the_newest_copies(bot: RunningBot) -> None:
    folder = bot.services.settings.backups
    await join(bot, 500)
    for _ in range(16):
        await bot.services.jobs.run("backup")
    kept = sorted(folder.glob("loyalty-*-daily.db"))
    assert len(kept) == bot.services.settings.backup_keep == 14
    with closing(sqlite3.connect(kept[-1])) as copy:
        assert copy.execute("SELECT name FROM customers").fetchone()[0] == "Cliente 500"


async def test_a_removed_reward_still_redeems_what_its_open_code_promised(
    bot: RunningBot,
) -> None:
    _, customer = await join(bot, 510)
    await buy(bot, customer, items=12)
    code = await bot.services.rewards.request_reward(customer, "free_bottle")
    assert not isinstance(code, Refused)
    program = bot.services.program
    changed = program.model_copy(
        update={"rewards": [reward for reward in program.rewards if reward.key != "free_bottle"]}
    )
    warnings = await check_setup(bot.services.settings, changed, bot.clock.now())
    assert any("'free_bottle' is not in the program file, and 1 open code" in w for w in warnings)
    restarted = RewardsService(bot.services.database, bot.clock, changed)
    view = await restarted.confirm(CLERK, code.code)
    assert not isinstance(view, Refused)
    assert view.reward is not None and view.reward.name.es == "una botella gratis"
    assert view.balance == 2


def test_starting_the_bot_does_not_import_matplotlib() -> None:
    """matplotlib costs most of a second and tens of megabytes: only /stats needs it."""
    probe = "import sys, bot.cli, bot.app, handlers; print('matplotlib' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


async def test_try_chats_with_the_real_bot_in_the_terminal(tmp_path: Path) -> None:
    """`loyalty-bot try` with no .env and no token: join as a customer by typing and tapping
    numbers, then as staff scan her card and sell; the card's photo is saved to a file."""
    script = "\n".join(
        ["/start", "1", "2", "24/12", "1", ":staff", ":scan", "12,50 1", "1", ":quit", ""]
    )
    code, text, err = await _loyalty_bot(
        "try", cwd=tmp_path, env=_environment(), timeout=120, typed=script
    )
    assert code == 0, err
    assert "1/4" in text and "¡Ya eres socio, Ana!" in text
    assert "1) Sí, quiero" in text  # buttons as numbered choices
    saved = re.search(r"\[photo saved: (\S+)\]", text)
    assert saved is not None and _is_png(Path(saved.group(1)))
    assert "Escribe el importe" in text  # the scan opened a sale for her
    assert "registrada" in text and text.rstrip().endswith("bye")
    assert "Traceback" not in err


def _is_png(path: Path) -> bool:
    return path.read_bytes().startswith(b"\x89PNG")


def test_one_scheduler_not_two(bot: RunningBot) -> None:
    """bot.timetable keeps the timetable; PTB's own JobQueue (APScheduler is installed for
    ours, so PTB would start one) is not created beside it."""
    with pytest.warns(PTBUserWarning, match="No `JobQueue` set up"):
        assert bot.application.job_queue is None


WHATSAPP = {
    "WHATSAPP_TOKEN": "EAAtoken",
    "WHATSAPP_PHONE_NUMBER_ID": "1001",
    "WHATSAPP_BUSINESS_NUMBER": "+593 99 111 0000",
    "WHATSAPP_APP_SECRET": "0123456789abcdef0123456789abcdef",
    "WHATSAPP_VERIFY_TOKEN": "a-word-nobody-guesses",
}


async def test_a_whatsapp_only_shop_needs_no_telegram_token(tmp_path: Path) -> None:
    env = _environment(**WHATSAPP, DATABASE_PATH=str(tmp_path / "bot.db"))
    code, _, err = await _loyalty_bot("check-config", cwd=tmp_path, env=env)
    assert code == 0, err
    assert "BOT_TOKEN" not in err


@pytest.mark.parametrize(
    ("setting", "value", "said"),
    [
        ("WHATSAPP_APP_SECRET", "x", "32 characters, 0-9 and a-f"),
        ("WHATSAPP_APP_SECRET", " ", "WHATSAPP_APP_SECRET missing"),
        ("WHATSAPP_APP_SECRET", "0123456789abcdef0123456789abcdeZ", "32 characters"),
        ("WHATSAPP_VERIFY_TOKEN", "short", "at least 16 characters"),
    ],
)
async def test_weak_whatsapp_secrets_are_refused_in_one_sentence(
    tmp_path: Path, setting: str, value: str, said: str
) -> None:
    env = _environment(**{**WHATSAPP, setting: value}, DATABASE_PATH=str(tmp_path / "bot.db"))
    code, _, err = await _loyalty_bot("check-config", cwd=tmp_path, env=env)
    assert code == 2
    assert said in err and "Traceback" not in err


async def test_whatsapp_half_set_up_is_named_setting_by_setting(tmp_path: Path) -> None:
    half = {key: value for key, value in WHATSAPP.items() if key != "WHATSAPP_APP_SECRET"}
    env = _environment(BOT_TOKEN=TOKEN, **half, DATABASE_PATH=str(tmp_path / "bot.db"))
    code, _, err = await _loyalty_bot("check-config", cwd=tmp_path, env=env)
    assert code == 2
    assert "WHATSAPP_APP_SECRET missing" in err and "Traceback" not in err


async def test_try_shows_the_whole_product_in_a_terminal_with_a_clock_to_move_on(
    tmp_path: Path,
) -> None:
    """`loyalty-bot try` in a pseudo-terminal: a customer joins with a birthday tomorrow, the
    owner sends a campaign, `:later` moves the try clock on (a day, then half a day, so one of
    them is outside the quiet hours whatever the hour of the run) and the birthday greeting
    and the campaign arrive; the card and the export are saved under their own names."""
    tomorrow = datetime.now(ZoneInfo("Europe/Madrid")) + timedelta(days=1)
    script = [
        "/start", "1", "2", f"{tomorrow.day}/{tomorrow.month}", "1", "/card",
        ":owner", "/broadcast", "Hoy cata gratis", "1", "1", "1",
        ":later 1d", ":later 12h", ":owner", "/export", ":quit",
    ]  # fmt: skip
    text = await _try_in_a_terminal(tmp_path, [], script)
    assert "¡Feliz cumpleaños, Ana!" in text and "(it is now" in text
    delivered = re.search(
        r"bot → customer \(Ana\):\n[^\n]*Bodega Familia Ruiz\n\s*Hoy cata gratis", text
    )
    assert delivered is not None, text  # the campaign reached her, not only the preview
    for name in ("tarjeta.png", "tarjeta-2.png", "clientes-", "fidelidad-"):
        assert re.search(rf"\[(photo|file) saved: \S*/{re.escape(name)}", text), name
    assert text.rstrip().endswith("bye")


async def test_try_on_whatsapp_shows_the_same_bot_as_whatsapp_does(tmp_path: Path) -> None:
    """`loyalty-bot try --whatsapp` in a pseudo-terminal: joining by a hello, reply buttons and
    lists as numbered choices, WhatsApp's own bold, the card saved under its name (and again
    when it is sent again by its media id), a sale by scanning the card's wa.me link, and
    the clock moved on."""
    script = [
        "hola", "1", "1", "1", "tarjeta", "tarjeta", ":scan", "12,50 1", "1", ":later 21h",
        ":quit",
    ]  # fmt: skip
    text = await _try_in_a_terminal(tmp_path, ["--whatsapp"], script)
    assert "Trying Bodega Familia Ruiz on WhatsApp" in text
    assert "¡Bienvenido al club de socios de *Bodega Familia Ruiz*!" in text  # its bold
    assert "1) Sí, quiero" in text and "1) ✅ Confirmar venta" in text
    assert re.search(r"\[photo saved: \S*/tarjeta\.png\]", text)
    assert re.search(r"\[photo saved: \S*/tarjeta-2\.png\]", text)
    assert "Has sumado *1 punto*" in text and "(it is now" in text
    assert text.rstrip().endswith("bye")


async def _try_in_a_terminal(tmp_path: Path, arguments: list[str], script: list[str]) -> str:
    """`loyalty-bot try ARGUMENTS` with a pseudo-terminal as its input and output, `script`
    typed into it; everything it printed."""
    primary, secondary = pty.openpty()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "try",
        *arguments,
        cwd=tmp_path,
        env={**_environment(), "PYTHONPATH": str(ROOT)},
        stdin=secondary,
        stdout=secondary,
        stderr=asyncio.subprocess.PIPE,
    )
    os.close(secondary)
    os.write(primary, ("\n".join(script) + "\n").encode())
    text = await asyncio.wait_for(asyncio.to_thread(_read_until_closed, primary), 120)
    await process.wait()
    assert process.returncode == 0, text
    return text


def _read_until_closed(primary: int) -> str:
    chunks = []
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # the bot closed the terminal: it has exited
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(primary)
    return b"".join(chunks).decode(errors="replace").replace("\r\n", "\n")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd here")
def test_the_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    """deploy/loyalty-bot.service as the README installs it, its ExecStart pointed at this
    install (verify insists the program exists)."""
    unit = (ROOT / "deploy" / "loyalty-bot.service").read_text()
    installed = Path(sys.executable).parent / "loyalty-bot"
    assert "/opt/loyalty-bot/.venv/bin/loyalty-bot" in unit and installed.exists()
    copy = tmp_path / "loyalty-bot.service"
    copy.write_text(unit.replace("/opt/loyalty-bot/.venv/bin/loyalty-bot", str(installed)))
    verified = subprocess.run(
        ["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, timeout=60
    )
    assert verified.returncode == 0, verified.stderr
    for setting in ("StateDirectory=loyalty-bot", "LimitNOFILE=", "RestartPreventExitStatus=2"):
        assert setting in unit
