"""The real bot as its own process, for the benchmarks: what `loyalty-bot run` starts, with
the same settings from the environment, but without the timetable, so that scheduled jobs do
not land in the middle of a measurement (the benchmarks time the jobs themselves). With
BENCH_BACKGROUND=true (bench.cluster), as `loyalty-bot run` is: leader election, timetable and
dispatcher included."""

import asyncio
import logging
import os

from bot.app import serve_until_stopped
from bot.config import load_settings
from bot.program import load_program


def main() -> None:
    # bench.cluster reads the log to know which process leads.
    logging.basicConfig(level=os.environ.get("BENCH_LOG_LEVEL", "WARNING"))
    settings = load_settings()
    program = load_program(settings.program_file)
    background = os.environ.get("BENCH_BACKGROUND") == "true"
    asyncio.run(serve_until_stopped(settings, program, background=background))


if __name__ == "__main__":
    main()
