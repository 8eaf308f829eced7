"""What `GET /healthz` reports: whether each long-running task of the bot is alive, and what
the outbox holds. Tasks report here (bot/supervisor.py); a channel that must show signs of
life (Telegram's long poll answering) also beats, and is alive only while its beats are fresh.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from bot.clock import Clock

State = Literal["starting", "running", "failing", "stopped"]


@dataclass
class TaskHealth:
    state: State = "starting"
    problem: str | None = None
    last_beat: datetime | None = None
    beat_within: timedelta | None = None  # alive only with a beat this recent

    def alive(self, now: datetime) -> bool:
        if self.state != "running":
            return False
        if self.beat_within is None:
            return True
        return self.last_beat is not None and now - self.last_beat <= self.beat_within


@dataclass
class Health:
    clock: Clock
    tasks: dict[str, TaskHealth] = field(default_factory=dict)

    def expect(self, name: str, beat_within: timedelta | None = None) -> None:
        """`name` is configured: until it runs, the bot is not healthy."""
        self.tasks[name] = TaskHealth(beat_within=beat_within)

    def expects(self, name: str) -> bool:
        """Whether `name` is configured (it may still be starting)."""
        return name in self.tasks

    def running(self, name: str) -> None:
        task = self.tasks.setdefault(name, TaskHealth())
        task.state, task.problem = "running", None

    def failing(self, name: str, problem: str) -> None:
        task = self.tasks.setdefault(name, TaskHealth())
        task.state, task.problem = "failing", problem

    def stopped(self, name: str) -> None:
        self.tasks.setdefault(name, TaskHealth()).state = "stopped"

    def beat(self, name: str) -> None:
        task = self.tasks.setdefault(name, TaskHealth())
        task.last_beat = self.clock.now()
        if task.state in ("starting", "failing"):
            task.state, task.problem = "running", None

    def report(self) -> tuple[bool, dict[str, object]]:
        now = self.clock.now()
        tasks = {
            name: {
                "alive": task.alive(now),
                "state": task.state,
                **({"problem": task.problem} if task.problem else {}),
                **(
                    {"last_answer_seconds_ago": round((now - task.last_beat).total_seconds(), 1)}
                    if task.last_beat
                    else {}
                ),
            }
            for name, task in self.tasks.items()
        }
        return all(task.alive(now) for task in self.tasks.values()), {"tasks": tasks}
