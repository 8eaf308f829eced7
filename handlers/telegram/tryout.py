"""`loyalty-bot try`: chat with the real bot in this terminal, no Telegram and no token needed.

The bot runs as it does for a shop, against the loopback Bot API stand-in in this process. You
speak as a customer, a staff member or the owner (`:customer`, `:staff`, `:owner`); buttons are
numbered, and typing the number taps one; photos and documents are saved to files whose paths
are printed. The database is temporary unless DATABASE_PATH is set in the environment.
"""

from __future__ import annotations

import asyncio
import html
import os
import re
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TextIO

from pydantic import SecretStr

from bot.bootstrap import Services
from bot.clock import MovableClock
from bot.config import load_settings
from bot.domain.models import Actor, Identity, Language, Refused, Role
from bot.inbox import InboxWorker
from bot.program import load_program
from handlers.telegram.app import build_application, serving
from handlers.telegram.context import INBOX_KEY, SERVICES_KEY
from handlers.telegram.standin import ApiCall, ChatUser, FakeTelegram

TRY_TOKEN = "123456789:TRY-IN-THE-TERMINAL"
REPLY_WAIT = 30.0
_TAG = re.compile(r"<[^>]+>")

HELP = """Type as the person would; a number taps that button of the last message.
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
    user: ChatUser
    choices: list[tuple[str, Any]] = field(default_factory=list)  # (label, what a tap sends)


class Terminal:
    def __init__(
        self,
        api: FakeTelegram,
        services: Services,
        clock: MovableClock,
        files: Path,
        out: TextIO,
    ) -> None:
        self._api = api
        self._services = services
        self._clock = clock
        self._files = files
        self._out = out
        self._shown = 0
        self._photos: dict[str, Path] = {}  # Telegram's id for a photo -> where it was saved
        self.people = {
            "customer": Person("customer", api.user(1001, "Ana", "es")),
            "staff": Person("staff", api.user(2001, "Pepe", "es")),
            "owner": Person("owner", api.user(1, "Dueña", "es")),
        }
        self.speaker = self.people["customer"]

    async def hire_the_staff_member(self) -> None:
        staff = self._services.staff
        owner = Actor(Identity("telegram", "1"), Role.OWNER)
        invite = await staff.invite(owner)
        assert not isinstance(invite, Refused)  # the owner's
        await staff.accept(Identity("telegram", "2001"), invite.token, "Pepe", Language.ES)

    async def handle(self, line: str) -> bool:
        """One line typed at the prompt; False when the person wants to leave."""
        text = line.strip()
        if text in (":quit", ":exit"):
            return False
        if text == ":help":
            self._say(HELP)
        elif text.startswith(":") and text[1:] in self.people:
            self.speaker = self.people[text[1:]]
            self._say(f"(you are now the {self.speaker.role})")
        elif text == ":scan":
            await self._scan()
        elif text.startswith(":later"):
            await self._later(text)
        elif text.isdigit() and 1 <= int(text) <= len(self.speaker.choices):
            await self._tap(int(text) - 1)
        elif text:
            await self._send(await self.speaker.user.send(text))
        return True

    async def _scan(self) -> None:
        member = await self._services.membership.member(Identity("telegram", "1001"))
        if member is None:
            self._say("(the customer has not joined yet: join as :customer first)")
            return
        staff = self.people["staff"]
        self.speaker = staff
        await self._send(await staff.user.send(f"/start c_{member.member_code}"))

    async def _later(self, text: str) -> None:
        """Move the clock on, a day at a time (a job runs once a day), running every job the
        bot runs on its own after each step, then what they queued is delivered."""
        asked = LATER.match(text)
        if asked is None:
            self._say("(try :later 1d, :later 3h or :later 2w)")
            return
        left = int(asked.group(1)) * UNITS[asked.group(2)]
        jobs = self._services.jobs
        while left > timedelta():
            step = min(left, timedelta(days=1))
            self._clock.move(step)
            left -= step
            for name in jobs.scheduled:
                if name not in NOT_IN_TRY:
                    await jobs.decide(name)
            await jobs.deliver()
        local = self._clock.now().astimezone(self._services.settings.zone)
        self._say(f"(it is now {local:%A %d/%m/%Y %H:%M} at the shop)")
        await asyncio.sleep(0)
        self.show_new()

    async def _tap(self, index: int) -> None:
        user = self.speaker.user
        _, action = self.speaker.choices[index]
        if isinstance(action, tuple):  # an inline button: (message, callback data)
            update = await user.press_data(action[0], action[1])
        elif isinstance(action, dict) and action.get("request_contact"):
            update = await user.share_contact("+34 612 345 678")
        else:
            update = await user.send(str(action["text"]))
        await self._send(update)

    async def _send(self, update: dict[str, Any]) -> None:
        try:
            await self._api.handled(update, timeout=REPLY_WAIT)
        except TimeoutError:
            self._say("(the bot has not answered yet)")
        self.show_new()

    def show_new(self) -> bool:
        """Print what the bot sent since last time; whether there was anything."""
        new = self._api.calls[self._shown :]
        for call in new:
            self._show(call)
        self._shown += len(new)
        return bool(new)

    async def follow(self) -> None:
        """What arrives while the person is typing (a report worked out beside the chat, as
        /stats is) is printed as it comes, followed by the prompt again."""
        while True:
            try:
                await self._api.wait_until(lambda: len(self._api.calls) > self._shown, 3600)
            except TimeoutError:
                continue
            if self.show_new():
                self.prompt()

    def prompt(self) -> None:
        print(f"{self.speaker.role}> ", end="", file=self._out, flush=True)

    def _show(self, call: ApiCall) -> None:
        person = next((p for p in self.people.values() if p.user.id == call.chat_id), None)
        if call.method == "answerCallbackQuery" and call.params.get("text"):
            self._say(f"  [pop-up] {call.params['text']}")
            return
        if person is None or call.method not in {
            "sendMessage",
            "sendPhoto",
            "sendDocument",
            "editMessageText",
        }:
            return
        lines = [f"bot → {person.role} ({person.user.first_name}):"]
        lines += [f"  {line}" for line in _plain(call.text).splitlines()]
        kind = "photo" if call.method == "sendPhoto" else "file"
        for name, content in call.files.items():
            path = self._save(call.file_names.get(name) or f"{name}.png", content)
            if call.method == "sendPhoto" and call.message_id is not None:
                self._photos[f"photo{call.message_id}"] = path
            lines.append(f"  [{kind} saved: {path}]")
        again = self._photos.get(call.params.get("photo", "")) if not call.files else None
        if again is not None:  # sent again by Telegram's id for it: saved again all the same
            path = self._save(again.name, again.read_bytes())
            lines.append(f"  [photo saved: {path}]")
        choices: list[tuple[str, Any]] = [
            (button["text"], (call, button["callback_data"]))
            for button in call.inline_buttons()
            if "callback_data" in button
        ]
        choices += [(button["text"], button) for button in call.keyboard_buttons()]
        if choices:
            person.choices = choices
            lines += [f"  {number}) {label}" for number, (label, _) in enumerate(choices, 1)]
        self._say("\n".join(lines))

    def _say(self, text: str) -> None:
        print(text, file=self._out, flush=True)

    def _save(self, name: str, content: bytes) -> Path:
        """Under the name the bot gave it (tarjeta.png, clientes-2026-12-02.csv); a second
        file of that name gets a number, so nothing shown earlier is overwritten."""
        path = self._files / Path(name).name
        number = 1
        while path.exists():
            number += 1
            path = self._files / f"{Path(name).stem}-{number}{Path(name).suffix}"
        path.write_bytes(content)
        return path


def _plain(text: str) -> str:
    return html.unescape(_TAG.sub("", text))


def _database_path(scratch: str) -> Path:
    """The environment's DATABASE_PATH only: the one in .env is the shop's real database."""
    chosen = os.environ.get("DATABASE_PATH")
    return Path(chosen).absolute() if chosen else Path(scratch) / "try.db"


async def _chat(lines: asyncio.Queue[str | None], out: TextIO) -> None:
    settings = load_settings()
    files = Path(tempfile.mkdtemp(prefix="loyalty-try-files-"))  # kept, to look at afterwards
    with tempfile.TemporaryDirectory(prefix="loyalty-try-") as folder:
        api = FakeTelegram()
        await api.start()
        try:
            settings = settings.model_copy(
                update={
                    "bot_token": SecretStr(TRY_TOKEN),
                    "telegram_api_url": api.url,
                    "database_path": _database_path(folder),
                    "owner_ids": frozenset({1}),
                    "polling_timeout": 1,
                    "limit_outgoing_rate": False,
                }
            )
            program = load_program(settings.program_file)
            clock = MovableClock()
            api.now = clock.now  # people write on the try clock too
            # No timetable on the wall clock: `:later` runs the jobs on the try clock. The
            # dispatcher runs, so messages to others (campaigns, notices) arrive as they would.
            application = build_application(settings, program, clock, background=False)
            async with serving(application):
                services = application.bot_data[SERVICES_KEY]
                assert isinstance(services, Services)
                worker: InboxWorker = application.bot_data[INBOX_KEY]
                api.handled_check = lambda update_id: worker.finished(str(update_id))
                stop_delivering = asyncio.Event()
                delivering = asyncio.create_task(services.jobs.deliver_forever(stop_delivering))
                terminal = Terminal(api, services, clock, files, out)
                await terminal.hire_the_staff_member()
                await asyncio.sleep(0)
                terminal.show_new()
                print(
                    f"Trying {program.shop.name} (database {settings.database_path};"
                    f" photos and files go to {files}).\n{HELP}",
                    file=out,
                    flush=True,
                )
                following = asyncio.create_task(terminal.follow())
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
        finally:
            await api.stop()
        print("bye", file=out)


def try_in_terminal() -> int:
    async def run() -> None:
        lines: asyncio.Queue[str | None] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def read() -> None:
            for line in sys.stdin:
                loop.call_soon_threadsafe(lines.put_nowait, line)
            loop.call_soon_threadsafe(lines.put_nowait, None)

        # A daemon thread: a line still being waited for must not keep the process alive.
        threading.Thread(target=read, daemon=True).start()
        await _chat(lines, sys.stdout)

    asyncio.run(run())
    return 0
