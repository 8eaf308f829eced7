"""The real bot as its own process, for the benchmarks: what `loyalty-bot run` starts, with
the same settings from the environment, but without the timetable, so that scheduled jobs do
not land in the middle of a measurement (the benchmarks time the jobs themselves)."""

import asyncio

from bot.app import serve_until_stopped
from bot.config import load_settings
from bot.program import load_program


def main() -> None:
    settings = load_settings()
    program = load_program(settings.program_file)
    asyncio.run(serve_until_stopped(settings, program, background=False))


if __name__ == "__main__":
    main()
