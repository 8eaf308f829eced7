"""`loyalty-bot try`, whatever the app: the terminal a newcomer types in, speaking as a customer,
a staff member or the owner; numbered choices to tap; files saved under their own names; and
a clock to move on (`:later 1d`) that runs what the bot does on its own. Each app's terminal
(handlers/telegram/tryout.py, handlers/whatsapp/tryout.py) says how a person writes and taps
there, and how what the bot sent looks."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import threading
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TextIO

from bot.bootstrap import Services
from bot.clock import MovableClock
from bot.domain.models import Actor, Identity, Language, Refused, Role
from handlers.recording import Recording

REPLY_WAIT = 30.0
HELP = """Type as the person would; a number taps that choice of the last message.
  :customer  :staff  :owner   speak as someone else (the owner invited the staff member)
  :scan      as staff, scan the customer's member card
  :later 1d  move the clock on (1d, 3h, 2w) and run what falls due: birthdays, surveys,
             win-backs, expiry, nudges, the owner's digest, and the messages they send
  :help      this text
  :quit      leave (Ctrl-D too)"""
LATER = re.compile(r"^:later\s+(\d{1,3})\s*([hdw])$")
UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
NOT_IN_TRY = ("backup",)  # the daily backup would only copy the scratch database


@dataclass
class Person:
    role: str
    user_id: str  # on the app
    name: str
    choices: list[tuple[str, Any]] = field(default_factory=list)  # (label, what a tap sends)


class Terminal(ABC):
    def __init__(
        self,
        channel: str,
        stand_in: Recording[Any],
        services: Services,
        clock: MovableClock,
        files: Path,
        out: TextIO,
    ) -> None:
        self.channel = channel
        self._stand_in = stand_in  # what the bot sent the app, call by call
        self._shown = 0
        self.services = services
        self._clock = clock
        self._files = files
        self._out = out
        self.people = {person.role: person for person in self.cast()}
        self.speaker = self.people["customer"]

    @abstractmethod
    def cast(self) -> list[Person]:
        """The customer, the staff member and the owner, with their ids on the app."""

    @abstractmethod
    async def say(self, text: str) -> None:
        """The speaker writes `text`; returns once the bot has answered it."""

    @abstractmethod
    async def tap(self, choice: Any) -> None:
        """The speaker taps one of the last message's choices."""

    @abstractmethod
    def show(self, call: Any) -> None:
        """Print one call the bot made to the app, if a person sees it."""

    def show_new(self) -> bool:
        """Print what the bot sent since last time; whether there was anything."""
        new = self._stand_in.calls[self._shown :]
        for call in new:
            self.show(call)
        self._shown += len(new)
        return bool(new)

    async def wait_for_news(self) -> None:
        """Until the bot sends something (or an hour passes)."""
        stand_in = self._stand_in
        try:
            await stand_in.wait_until(lambda: len(stand_in.calls) > self._shown, 3600)
        except TimeoutError:
            return

    async def hire_the_staff_member(self) -> None:
        staff = self.services.staff
        owner = Actor(Identity(self.channel, self.people["owner"].user_id), Role.OWNER)
        invite = await staff.invite(owner)
        assert not isinstance(invite, Refused)  # the owner's
        clerk = self.people["staff"]
        await staff.accept(
            Identity(self.channel, clerk.user_id), invite.token, clerk.name, Language.ES
        )

    async def handle(self, line: str) -> bool:
        """One line typed at the prompt; False when the person wants to leave."""
        text = line.strip()
        if text in (":quit", ":exit"):
            return False
        if text == ":help":
            self.print(HELP)
        elif text.startswith(":") and text[1:] in self.people:
            self.speaker = self.people[text[1:]]
            self.print(f"(you are now the {self.speaker.role})")
        elif text == ":scan":
            await self._scan()
        elif text.startswith(":later"):
            await self._later(text)
        elif text.isdigit() and 1 <= int(text) <= len(self.speaker.choices):
            await self.tap(self.speaker.choices[int(text) - 1][1])
        elif text:
            await self.say(text)
        return True

    async def _scan(self) -> None:
        customer = Identity(self.channel, self.people["customer"].user_id)
        member = await self.services.membership.member(customer)
        if member is None:
            self.print("(the customer has not joined yet: join as :customer first)")
            return
        self.speaker = self.people["staff"]
        await self.say(self.scanned(member.member_code))

    def scanned(self, member_code: str) -> str:
        """What the staff member's phone sends on scanning the card."""
        return f"/start c_{member_code}"

    async def _later(self, text: str) -> None:
        """Move the clock on, a day at a time (a job runs once a day), running every job the
        bot runs on its own after each step, then what they queued is delivered."""
        asked = LATER.match(text)
        if asked is None:
            self.print("(try :later 1d, :later 3h or :later 2w)")
            return
        left = int(asked.group(1)) * UNITS[asked.group(2)]
        jobs = self.services.jobs
        while left > timedelta():
            step = min(left, timedelta(days=1))
            self._clock.move(step)
            left -= step
            for name in jobs.scheduled:
                if name not in NOT_IN_TRY:
                    await jobs.decide(name)
            await jobs.deliver()
        local = self._clock.now().astimezone(self.services.settings.zone)
        self.print(f"(it is now {local:%A %d/%m/%Y %H:%M} at the shop)")
        await asyncio.sleep(0)
        self.show_new()

    async def follow(self) -> None:
        """What arrives while the person is typing (a report worked out beside the chat, a
        campaign) is printed as it comes, followed by the prompt again."""
        while True:
            await self.wait_for_news()
            if self.show_new():
                self.prompt()

    def prompt(self) -> None:
        print(f"{self.speaker.role}> ", end="", file=self._out, flush=True)

    def print(self, text: str) -> None:
        print(text, file=self._out, flush=True)

    def save(self, name: str, content: bytes) -> Path:
        """Under the name the bot gave it (tarjeta.png, clientes-2026-12-02.csv); a second
        file of that name gets a number, so nothing shown earlier is overwritten."""
        path = self._files / Path(name).name
        number = 1
        while path.exists():
            number += 1
            path = self._files / f"{Path(name).stem}-{number}{Path(name).suffix}"
        path.write_bytes(content)
        return path

    def person_by_id(self, user_id: str | None) -> Person | None:
        return next((p for p in self.people.values() if p.user_id == user_id), None)


async def converse(terminal: Terminal, intro: str, lines: asyncio.Queue[str | None]) -> None:
    """The conversation at the prompt, until :quit or the end of the input."""
    await terminal.hire_the_staff_member()
    await asyncio.sleep(0)
    terminal.show_new()
    terminal.print(f"{intro}\n{HELP}")
    following = asyncio.create_task(terminal.follow())
    stop_delivering = asyncio.Event()
    # No timetable on the wall clock: `:later` runs the jobs on the try clock. The dispatcher
    # runs, so messages to others (campaigns, notices) arrive as they would for a shop.
    delivering = asyncio.create_task(terminal.services.jobs.deliver_forever(stop_delivering))
    try:
        while True:
            terminal.prompt()
            line = await lines.get()
            if line is None or not await terminal.handle(line):
                break
    finally:
        following.cancel()
        stop_delivering.set()
        await delivering


def scratch_database(folder: str) -> Path:
    """The environment's DATABASE_PATH only: the one in .env is the shop's real database."""
    chosen = os.environ.get("DATABASE_PATH")
    return Path(chosen).absolute() if chosen else Path(folder) / "try.db"


def in_terminal(chat: Callable[[asyncio.Queue[str | None], TextIO], Awaitable[None]]) -> int:
    """Run `chat` with the lines typed on standard input."""

    async def run() -> None:
        lines: asyncio.Queue[str | None] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def read() -> None:
            for line in sys.stdin:
                loop.call_soon_threadsafe(lines.put_nowait, line)
            loop.call_soon_threadsafe(lines.put_nowait, None)

        # A daemon thread: a line still being waited for must not keep the process alive.
        threading.Thread(target=read, daemon=True).start()
        await chat(lines, sys.stdout)
        print("bye", file=sys.stdout, flush=True)

    asyncio.run(run())
    return 0
