"""Work that holds the processor for seconds (the /stats charts, the /export workbook) runs in
one child process beside the bot, so that the bot's own process goes on answering everyone
else. A thread would not do: Python threads share one interpreter lock, and a chart or a
100,000-row workbook in a thread slows every other reply. The child also keeps matplotlib and
openpyxl, and the memory they take, out of the bot's process.

The child is started by the first such job (not at start-up: most days nobody asks) with the
`spawn` method, which copies nothing of the bot's threads, sockets or event loop; one job runs
at a time, the next waits its turn. Should the child die, the job in hand fails (the person
who asked is told, as for any failed reply) and the next job starts a new child.
"""

from __future__ import annotations

import asyncio
import importlib
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

T = TypeVar("T")


class SideProcess:
    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None

    async def run(self, work: Callable[..., T], *arguments: Any) -> T:
        """`work(*arguments)` in the child; `work` is a module-level function and the
        arguments and result are plain data, as they travel between processes by pickle."""
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._started(), work, *arguments
            )
        except BrokenProcessPool:
            self._pool = None  # the child died: the next job starts another
            raise

    def prepare(self, module: str) -> None:
        """Start the child and import `module` there now, while the caller gathers the data
        for its job: a first job would otherwise wait a second or two for both."""
        try:
            self._started().submit(importlib.import_module, module)
        except BrokenProcessPool:
            self._pool = None  # the job itself will start another

    def _started(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn")
            )
        return self._pool

    def close(self) -> None:
        """Stop the child, dropping what waits; a job under way is not waited for."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
