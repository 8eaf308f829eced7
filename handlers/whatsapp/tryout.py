"""`loyalty-bot try --whatsapp`: the same bot as WhatsApp shows it, in this terminal: its
*bold* and _italic_, reply buttons and lists (numbered: type the number to tap), images and
documents saved to files, templates outside the 24-hour window. The bot serves its webhook
on a loopback port and sends through the Graph API stand-in in this process."""

from __future__ import annotations

import asyncio
import secrets
import tempfile
from pathlib import Path
from typing import Any, TextIO

from pydantic import SecretStr

from bot.bootstrap import Services, close_services, open_services
from bot.clock import MovableClock
from bot.config import load_settings
from bot.messages import Messages
from bot.program import load_program
from handlers import tryout
from handlers.http_server import free_port, serving_http
from handlers.tryout import Person, Terminal
from handlers.whatsapp.app import whatsapp_parts
from handlers.whatsapp.standin import FakeGraph, GraphCall, WhatsAppPerson

SHOP_NUMBER = "34600000000"
HANDLED_POLL = 0.01  # seconds between looks at the inbox


class WhatsAppTerminal(Terminal):
    def __init__(
        self,
        graph: FakeGraph,
        finished: Any,
        services: Services,
        clock: MovableClock,
        files: Path,
        out: TextIO,
    ) -> None:
        self._graph = graph
        self._finished = finished  # InboxWorker.finished: the bot has answered a message
        super().__init__("whatsapp", graph, services, clock, files, out)
        self._uploads: dict[str, GraphCall] = {}  # media id -> the upload

    def cast(self) -> list[Person]:
        return [Person("customer", "34600000003", "Ana"), Person("staff", "34600000002", "Pepe"),
                Person("owner", "34600000001", "Dueña")]  # fmt: skip

    def _person(self, person: Person) -> WhatsAppPerson:
        return self._graph.person(person.user_id, person.name)

    def scanned(self, member_code: str) -> str:
        """The card's wa.me link types this for whoever scans it."""
        return f"c_{member_code}"

    async def say(self, text: str) -> None:
        await self._answered(await self._person(self.speaker).send(text))

    async def tap(self, choice: Any) -> None:
        call, option_id, title = choice
        await self._answered(await self._person(self.speaker).tap_id(call, option_id, title))

    async def _answered(self, webhook: dict[str, Any]) -> None:
        message_id = webhook["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
        try:
            async with asyncio.timeout(tryout.REPLY_WAIT):
                while not await self._finished(message_id):  # noqa: ASYNC110
                    await asyncio.sleep(HANDLED_POLL)
        except TimeoutError:
            self.print("(the bot has not answered yet)")
        self.show_new()

    def show(self, call: GraphCall) -> None:
        if call.media_id is not None:
            self._uploads[call.media_id] = call
            return
        person = self.person_by_id(call.to)
        if person is None or call.message_id is None:
            return  # a read receipt, or what Meta refused
        lines = [f"bot → {person.role} ({person.name}) on WhatsApp:"]
        kind = call.body.get("type")
        if kind == "template":
            template = call.body["template"]
            values = [
                parameter.get("text", "")
                for component in template.get("components", [])
                for parameter in component.get("parameters", [])
            ]
            lines.append(f"  [template {template['name']} ({template['language']['code']}):"
                         f" {', '.join(values)}]")  # fmt: skip
        lines += [f"  {line}" for line in call.text.splitlines()]
        if kind in ("image", "document"):
            upload = self._uploads.get(call.body[kind].get("id", ""))
            if upload is not None:
                for name, content in upload.files.items():
                    saved = self.save(upload.file_names.get(name) or name, content)
                    lines.append(f"  [{'photo' if kind == 'image' else 'file'} saved: {saved}]")
        options = call.options()
        if options:
            person.choices = [(title, (call, option_id, title)) for option_id, title in options]
            lines += [f"  {number}) {title}" for number, (_, title) in enumerate(options, 1)]
        self.print("\n".join(lines))


async def _chat(lines: asyncio.Queue[str | None], out: TextIO) -> None:
    app_secret = secrets.token_hex(16)
    graph = FakeGraph(app_secret)
    await graph.start()
    files = Path(tempfile.mkdtemp(prefix="loyalty-try-files-"))  # kept, to look at afterwards
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="loyalty-try-") as folder:
        settings = load_settings().model_copy(
            update={
                "bot_token": None,
                "whatsapp_token": SecretStr("TRY-IN-THE-TERMINAL"),
                "whatsapp_phone_number_id": "1001",
                "whatsapp_business_number": SHOP_NUMBER,
                "whatsapp_app_secret": SecretStr(app_secret),
                "whatsapp_verify_token": SecretStr(secrets.token_hex(16)),
                "whatsapp_api_url": graph.url,
                "webhook_listen": f"127.0.0.1:{port}",
                "owner_ids": frozenset(),
                "owner_phones": frozenset({"+34600000001"}),
                "database_path": tryout.scratch_database(folder),
            }
        )
        program = load_program(settings.program_file)
        clock = MovableClock()
        graph.now = clock.now  # people write on the try clock too
        messages = Messages(settings.zone, program.shop.money)
        services = await open_services(settings, program, clock, messages)
        try:
            async with whatsapp_parts(services) as parts, serving_http(services, parts.routes):
                graph.webhook_url = f"http://127.0.0.1:{port}/whatsapp"
                stop = asyncio.Event()
                working = parts.start(services, stop)
                terminal = WhatsAppTerminal(
                    graph, parts.worker.finished, services, clock, files, out
                )
                intro = (
                    f"Trying {program.shop.name} on WhatsApp (database"
                    f" {settings.database_path}; photos and files go to {files})."
                )
                try:
                    await tryout.converse(terminal, intro, lines)
                finally:
                    stop.set()
                    await working
        finally:
            await close_services(services, None)
            await graph.stop()


def try_on_whatsapp() -> int:
    return tryout.in_terminal(_chat)
