"""The side process that draws the charts and writes the workbook: a job's result comes back,
and a child that dies fails only the job in hand; the next job gets a new child."""

from __future__ import annotations

import operator
import os
from concurrent.futures.process import BrokenProcessPool

import pytest

from bot.side_process import SideProcess


async def test_a_dead_child_fails_its_job_and_the_next_job_starts_another() -> None:
    side = SideProcess()
    try:
        side.prepare("operator")
        assert await side.run(operator.add, 2, 3) == 5
        with pytest.raises(BrokenProcessPool):
            await side.run(os._exit, 3)  # the child dies mid-job
        assert await side.run(operator.mul, 4, 5) == 20
    finally:
        side.close()
