"""`loyalty-bot try`: chat with the real bot in this terminal, no Telegram and no token needed.

The bot runs as it does for a shop, against the loopback Bot API stand-in in this process (the
terminal itself: handlers/tryout.py). Buttons are numbered, and typing the number taps one.
The database is temporary unless DATABASE_PATH is set in the environment.
"""

from __future__ import annotations

import asyncio
import html
import re
import tempfile
from pathlib import Path
from typing import Any, TextIO

from pydantic import SecretStr

from bot.bootstrap import Services
from bot.clock import MovableClock
from bot.config import load_settings
from bot.inbox import InboxWorker
from bot.program import load_program
from handlers.telegram.app import build_application, serving
from handlers.telegram.context import INBOX_KEY, SERVICES_KEY
from handlers.telegram.standin import ApiCall, ChatUser, FakeTelegram
from handlers.tryout import (
    REPLY_WAIT,
    Person,
    Terminal,
    converse,
    in_terminal,
    scratch_database,
)

TRY_TOKEN = "123456789:TRY-IN-THE-TERMINAL"
_TAG = re.compile(r"<[^>]+>")
SHOWN = frozenset({"sendMessage", "sendPhoto", "sendDocument", "editMessageText"})


class TelegramTerminal(Terminal):
    def __init__(
        self,
        api: FakeTelegram,
        services: Services,
        clock: MovableClock,
        files: Path,
        out: TextIO,
    ) -> None:
        self._api = api
        super().__init__("telegram", api, services, clock, files, out)
        self._photos: dict[str, Path] = {}  # Telegram's id for a photo -> where it was saved

    def cast(self) -> list[Person]:
        return [Person("customer", "1001", "Ana"), Person("staff", "2001", "Pepe"),
                Person("owner", "1", "Dueña")]  # fmt: skip

    def _user(self, person: Person) -> ChatUser:
        return self._api.user(int(person.user_id), person.name, "es")

    async def say(self, text: str) -> None:
        await self._answered(await self._user(self.speaker).send(text))

    async def tap(self, choice: Any) -> None:
        user = self._user(self.speaker)
        if isinstance(choice, tuple):  # an inline button: (message, callback data)
            update = await user.press_data(choice[0], choice[1])
        elif isinstance(choice, dict) and choice.get("request_contact"):
            update = await user.share_contact("+34 612 345 678")
        else:
            update = await user.send(str(choice["text"]))
        await self._answered(update)

    async def _answered(self, update: dict[str, Any]) -> None:
        try:
            await self._api.handled(update, timeout=REPLY_WAIT)
        except TimeoutError:
            self.print("(the bot has not answered yet)")
        self.show_new()

    def show(self, call: ApiCall) -> None:
        person = self.person_by_id(str(call.chat_id))
        if call.method == "answerCallbackQuery" and call.params.get("text"):
            self.print(f"  [pop-up] {call.params['text']}")
            return
        if person is None or call.method not in SHOWN:
            return
        lines = [f"bot → {person.role} ({person.name}):"]
        lines += [f"  {line}" for line in _plain(call.text).splitlines()]
        kind = "photo" if call.method == "sendPhoto" else "file"
        for name, content in call.files.items():
            path = self.save(call.file_names.get(name) or f"{name}.png", content)
            if call.method == "sendPhoto" and call.message_id is not None:
                self._photos[f"photo{call.message_id}"] = path
            lines.append(f"  [{kind} saved: {path}]")
        again = self._photos.get(call.params.get("photo", "")) if not call.files else None
        if again is not None:  # sent again by Telegram's id for it: saved again all the same
            lines.append(f"  [photo saved: {self.save(again.name, again.read_bytes())}]")
        choices: list[tuple[str, Any]] = [
            (button["text"], (call, button["callback_data"]))
            for button in call.inline_buttons()
            if "callback_data" in button
        ]
        choices += [(button["text"], button) for button in call.keyboard_buttons()]
        if choices:
            person.choices = choices
            lines += [f"  {number}) {label}" for number, (label, _) in enumerate(choices, 1)]
        self.print("\n".join(lines))


def _plain(text: str) -> str:
    return html.unescape(_TAG.sub("", text))


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
                    "database_path": scratch_database(folder),
                    "owner_ids": frozenset({1}),
                    "polling_timeout": 1,
                    "limit_outgoing_rate": False,
                }
            )
            program = load_program(settings.program_file)
            clock = MovableClock()
            api.now = clock.now  # people write on the try clock too
            application = build_application(settings, program, clock, background=False)
            async with serving(application):
                services = application.bot_data[SERVICES_KEY]
                assert isinstance(services, Services)
                worker: InboxWorker = application.bot_data[INBOX_KEY]
                api.handled_check = lambda update_id: worker.finished(str(update_id))
                terminal = TelegramTerminal(api, services, clock, files, out)
                intro = (
                    f"Trying {program.shop.name} on Telegram (database"
                    f" {settings.database_path}; photos and files go to {files})."
                )
                await converse(terminal, intro, lines)
        finally:
            await api.stop()


def try_in_terminal() -> int:
    return in_terminal(_chat)
