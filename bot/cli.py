"""`loyalty-bot`: start the bot (the default), set up or check the shop, run a job, back up or
restore.

Every failure an operator can act on ends in one sentence on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from telegram.error import InvalidToken

from bot.app import migrate_database, run_job, serve_until_stopped
from bot.config import Settings, load_settings
from bot.errors import ConfigError, StorageError
from bot.program import Program, load_program
from bot.setup_check import check_setup
from bot.setup_wizard import Wizard, add_arguments
from bot.storage.backups import PRIVATE_FOLDER, exclusive_use, make_backup, restore_backup
from bot.storage.dumps import dump, restore
from bot.timetable import JOB_NAMES, JobResult, LeftQueued
from handlers.telegram.app import check_online
from handlers.telegram.tryout import try_in_terminal
from handlers.whatsapp.tryout import try_on_whatsapp

log = logging.getLogger("loyalty-bot")
HEALTH_TIMEOUT_SECONDS = 5
PRIVATE_UMASK = 0o077


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="loyalty-bot", description=__doc__)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("run", help="start the bot (what plain `loyalty-bot` does)")
    check = commands.add_parser(
        "check-config", help="check .env, the program file and the database without starting"
    )
    check.add_argument("--online", action="store_true", help="also ask Telegram for the bot")
    job = commands.add_parser("run-job", help="run one scheduled job once, now")
    job.add_argument("job", choices=JOB_NAMES)
    backup = commands.add_parser(
        "backup", help="a consistent copy of the database, safe while the bot runs"
    )
    backup.add_argument("path", nargs="?", type=Path, help="file or folder (default: BACKUP_DIR)")
    restore = commands.add_parser(
        "restore", help="put a backup in place of the database (the bot must be stopped)"
    )
    restore.add_argument("path", type=Path)
    setup = commands.add_parser(
        "setup", help="make the program yours: a few questions, then program.toml and .env"
    )
    add_arguments(setup)
    tryout = commands.add_parser(
        "try", help="chat with the bot in this terminal, no Telegram needed"
    )
    tryout.add_argument(
        "--whatsapp", action="store_true", help="as WhatsApp shows it (buttons, lists, templates)"
    )
    move = commands.add_parser(
        "migrate-db",
        help="copy this shop's database to an empty one (PostgreSQL, or a SQLite file)",
    )
    move.add_argument(
        "--to", required=True, help="postgresql://user:password@host/dbname, or a .db path"
    )
    commands.add_parser(
        "health", help="ask the running bot's GET /healthz; exit code 0 only while it is alive"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    # Whatever the bot writes (the database, its copies, exports) is its user's alone.
    os.umask(PRIVATE_UMASK)
    command = arguments.command or "run"
    logging.basicConfig(
        # `try` shares the terminal with a conversation, `setup` with questions: only what
        # needs a look.
        level={"try": logging.ERROR, "setup": logging.WARNING}.get(command, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Their debug lines carry whole requests (people's numbers and messages), and httpx
    # would log every message WhatsApp sends: the log names people by internal ids only.
    for chatty in ("httpx", "pywa", "pywa_async"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    try:
        if command == "try":
            return try_on_whatsapp() if arguments.whatsapp else try_in_terminal()
        if command == "setup":
            return _setup(arguments)
        settings = load_settings()
        program = load_program(settings.program_file)
        return _run(command, arguments, settings, program)
    except (ConfigError, StorageError) as error:
        print(f"loyalty-bot: {error}", file=sys.stderr)
        return 2
    except InvalidToken:
        print(
            "loyalty-bot: Telegram refused BOT_TOKEN; copy it again from @BotFather",
            file=sys.stderr,
        )
        return 2


def _setup(arguments: argparse.Namespace) -> int:
    """The wizard, then check-config on what it wrote."""
    wizard = Wizard(arguments, input, sys.stdout)
    try:
        _, env_file = wizard.run()
    except (EOFError, KeyboardInterrupt):
        print("\nloyalty-bot: setup stopped before the end; nothing was written", file=sys.stderr)
        return 2
    print(wizard.words["checking"])
    settings = load_settings(_env_file=env_file)
    program = load_program(settings.program_file)
    for line in asyncio.run(check_setup(settings, program, datetime.now(UTC))):
        print(line)
    token = settings.bot_token.get_secret_value().strip() if settings.bot_token else ""
    if not token and not settings.whatsapp_enabled:
        print(wizard.words["no_channel"])
    print(wizard.words["next"])
    return 0


def ask_health(settings: Settings) -> tuple[bool, str]:
    """The running bot's own answer on WEBHOOK_LISTEN, on this machine."""
    host, port = settings.listen_host_port
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    url = f"http://{host}:{port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=HEALTH_TIMEOUT_SECONDS) as answer:
            return True, answer.read().decode()
    except urllib.error.HTTPError as refused:
        return False, refused.read().decode()
    except OSError as error:
        return False, f"no bot answers at {url} ({getattr(error, 'reason', error)})"


def _job_report(result: JobResult) -> str:
    if result.left_queued is LeftQueued.BOT_RUNNING:
        return (
            f"{result.job}: {result.queued} queued; the running bot delivers them"
            " (and whatever else is due)"
        )
    if result.left_queued is LeftQueued.CHANNEL_UNREACHABLE:
        return (
            f"{result.job}: {result.queued} queued; not delivered now: Telegram cannot be"
            " reached. They wait in the outbox: `loyalty-bot run` sends them once it reaches"
            " Telegram"
        )
    delivery = result.delivery
    return (
        f"{result.job}: {result.queued} queued; delivered {delivery.sent},"
        f" unreachable {delivery.unreachable}, failed {delivery.failed},"
        f" to retry {delivery.retried}, held for a later day {delivery.deferred},"
        f" waiting for the quiet hours to end {delivery.quiet}"
    )


def _run(command: str, arguments: argparse.Namespace, settings: Settings, program: Program) -> int:
    if command == "check-config":
        if settings.telegram_enabled:
            settings.require_token()
            settings.telegram_webhook  # noqa: B018 (a webhook without its secret is refused)
        for line in asyncio.run(check_setup(settings, program, datetime.now(UTC))):
            print(line)
        if arguments.online and settings.telegram_enabled:
            print(asyncio.run(check_online(settings)))
        return 0
    if command == "run-job":
        result = asyncio.run(run_job(settings, program, arguments.job))
        print(_job_report(result))
        return 0
    if command == "health":
        alive, report = ask_health(settings)
        print(report)
        return 0 if alive else 1
    if command == "backup":
        if arguments.path is None:  # the backup folder, which a first backup creates
            settings.backups.mkdir(parents=True, exist_ok=True, mode=PRIVATE_FOLDER)
        target = arguments.path or settings.backups
        if settings.postgresql_url:
            backup = dump(settings.postgresql_url, target)
        else:
            backup = make_backup(settings.database_path, target)
        print(f"backup written to {backup.path} ({backup.size_bytes} bytes), checked")
        return 0
    if command == "migrate-db":
        target = arguments.to
        if not target.startswith(("postgresql://", "postgres://")):
            target = str(Path(target).expanduser().absolute())
        for line in asyncio.run(migrate_database(settings, target)):
            print(line)
        return 0
    if command == "restore" and settings.postgresql_url:
        restore(arguments.path, settings.postgresql_url)
        print(f"restored {arguments.path} into {settings.database_shown}")
        return 0
    if command == "restore":
        with exclusive_use(settings.database_path):
            kept = restore_backup(arguments.path, settings.database_path, settings.backups)
        print(f"restored {arguments.path} into {settings.database_path}")
        if kept is not None:
            print(f"the database as it was is kept at {kept}")
        return 0
    asyncio.run(serve_until_stopped(settings, program))
    return 0
