"""`loyalty-bot`: start the bot (the default), or check the configuration without starting it."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from telegram.error import InvalidToken

from bot.app import build_application, run_job, serve_until_stopped
from bot.config import load_settings
from bot.errors import ConfigError
from bot.program import load_program
from bot.scheduler import JOB_NAMES
from bot.storage.database import StorageError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="loyalty-bot", description=__doc__)
    parser.add_argument(
        "command",
        nargs="?",
        default="run",
        choices=["run", "check-config", "run-job"],
        help="run: start the bot (default); check-config: validate .env and the program file;"
        " run-job JOB: run one scheduled job once, now",
    )
    parser.add_argument("job", nargs="?", choices=JOB_NAMES, help="with run-job: which job")
    arguments = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        settings = load_settings()
        program = load_program(settings.program_file)
        if arguments.command == "run-job":
            if arguments.job is None:
                parser.error("run-job needs a job: " + ", ".join(JOB_NAMES))
            result = asyncio.run(run_job(settings, program, arguments.job))
            delivery = result.delivery
            print(
                f"{result.job}: {result.queued} queued; delivered {delivery.sent},"
                f" unreachable {delivery.unreachable}, failed {delivery.failed},"
                f" to retry {delivery.retried}"
            )
            return 0
        if arguments.command == "check-config":
            settings.require_token()
            print(f"configuration is valid: {program.shop.name}, database {settings.database_path}")
            return 0
        asyncio.run(serve_until_stopped(build_application(settings, program)))
    except (ConfigError, StorageError) as error:
        print(f"loyalty-bot: {error}", file=sys.stderr)
        return 2
    except InvalidToken:
        print(
            "loyalty-bot: Telegram refused BOT_TOKEN; copy it again from @BotFather",
            file=sys.stderr,
        )
        return 2
    return 0
