"""A loopback stand-in for the WhatsApp Cloud API (the Graph API's messages and media
endpoints, with Meta's answers and errors, and the limits Meta enforces), and the people who
write to the shop: their messages reach the bot as webhooks signed with the app secret.

The tests and `bench` use it as they use handlers/telegram/standin.py."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

from handlers.recording import Recording
from handlers.whatsapp.addresses import BUSINESS_SCOPED_ID, WA_ID

OUTSIDE_WINDOW = 131047
PARAMETER_FORMAT = 132018


@dataclass
class GraphCall:
    """One request the bot made: its path, its JSON body or form fields, any files."""

    path: str
    body: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)
    message_id: str | None = None
    media_id: str | None = None  # what Meta answered an upload with
    file_names: dict[str, str] = field(default_factory=dict)  # each upload's name, as sent

    @property
    def to(self) -> str | None:
        return self.body.get("to") or self.body.get("recipient")

    @property
    def kind(self) -> str | None:
        kind = self.body.get("type")
        if kind == "interactive":
            return f"interactive/{self.body['interactive']['type']}"
        return kind

    @property
    def text(self) -> str:
        kind = self.body.get("type")
        if kind == "text":
            return str(self.body["text"]["body"])
        if kind == "interactive":
            return str(self.body["interactive"]["body"]["text"])
        if kind in ("image", "document"):
            return str(self.body[kind].get("caption", ""))
        return ""

    def options(self) -> list[tuple[str, str]]:
        """(id, title) of each reply button or list row."""
        interactive = self.body.get("interactive") or {}
        action = interactive.get("action") or {}
        if interactive.get("type") == "button":
            return [(b["reply"]["id"], b["reply"]["title"]) for b in action.get("buttons", [])]
        rows = [row for section in action.get("sections", []) for row in section["rows"]]
        return [(row["id"], row.get("description") or row["title"]) for row in rows]

    def option(self, title_part: str) -> tuple[str, str]:
        found = [option for option in self.options() if title_part in option[1]]
        assert found, f"no option with {title_part!r} in {self.options()}"
        return found[0]


def meta_error(code: int, message: str, status: int = 400) -> web.Response:
    return web.json_response(
        {
            "error": {
                "message": f"(#{code}) {message}",
                "type": "OAuthException",
                "code": code,
                "fbtrace_id": "AbCdEf",
            }
        },
        status=status,
    )


class FakeGraph(Recording[GraphCall]):
    def __init__(self, app_secret: str) -> None:
        super().__init__()
        self.app_secret = app_secret
        self.outside_window: set[str] = set()  # people whose 24 hours are over
        self.webhook_url = ""  # the bot's webhook, where people's messages are posted
        self.url = ""
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._people: dict[str, WhatsAppPerson] = {}
        self._session: aiohttp.ClientSession | None = None
        # Sends for which this returns True get no answer until the stand-in stops.
        self.hold: Callable[[GraphCall], bool] | None = None
        self._released = asyncio.Event()
        self.holding = 0  # requests held now
        # When people send their messages (Meta's `timestamp`): the tests' clock, if they set it.
        self.now: Callable[[], datetime] = lambda: datetime.now(UTC)

    async def start(self, port: int = 0) -> str:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/{version}/{phone_id}/messages", self._messages)
        app.router.add_post("/{version}/{phone_id}/media", self._media)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        self._session = aiohttp.ClientSession()
        return self.url

    async def stop(self) -> None:
        self._released.set()
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def release(self) -> None:
        """Let the held requests through; later ones are held again while `hold` says so."""
        self._released.set()
        self._released = asyncio.Event()

    def person(self, wa_id: str, name: str = "Ana", user_id: str | None = None) -> WhatsAppPerson:
        known = self._people.get(wa_id)
        if known is None:
            known = self._people[wa_id] = WhatsAppPerson(self, wa_id, name, user_id)
        return known

    # --- webhooks ----------------------------------------------------------------------

    def sign(self, body: bytes, secret: str | None = None) -> str:
        key = (secret or self.app_secret).encode()
        return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()

    async def post_webhook(
        self, body: bytes, *, signature: str | None = None, signed: bool = True
    ) -> int:
        """POST `body` to the bot as Meta does; the HTTP status the bot answered."""
        assert self._session is not None and self.webhook_url
        headers = {"Content-Type": "application/json"}
        if signed:
            headers["X-Hub-Signature-256"] = signature or self.sign(body)
        async with self._session.post(self.webhook_url, data=body, headers=headers) as answer:
            return answer.status

    # --- watching what the bot sends -----------------------------------------------------

    # --- the HTTP side -----------------------------------------------------------------

    async def _messages(self, request: web.Request) -> web.Response:
        body = await request.json()
        call = GraphCall(request.path, body)
        if self.hold is not None and self.hold(call):
            self.holding += 1
            await self._released.wait()
            self.holding -= 1
        refused = self._refused(call)
        if refused is not None:
            await self._record(call)
            return refused
        call.message_id = f"wamid.OUT{next(self._ids)}"
        await self._record(call)
        to = call.to or ""
        contact = {"input": to, "user_id": to} if "recipient" in call.body else {"input": to}
        if "to" in call.body:
            contact["wa_id"] = to
        return web.json_response(
            {
                "messaging_product": "whatsapp",
                "contacts": [contact],
                "messages": [{"id": call.message_id}],
            }
        )

    async def _media(self, request: web.Request) -> web.Response:
        fields: dict[str, Any] = {}
        files: dict[str, bytes] = {}
        names: dict[str, str] = {}
        reader = await request.multipart()
        async for part in reader:
            if isinstance(part, aiohttp.BodyPartReader) and part.name:
                data = await part.read()
                if part.filename:
                    files[part.name] = bytes(data)
                    names[part.name] = part.filename
                else:
                    fields[part.name] = bytes(data).decode()
        media_id = str(900_000_000 + next(self._ids))  # as Meta's: digits
        await self._record(
            GraphCall(request.path, fields, files, media_id=media_id, file_names=names)
        )
        return web.json_response({"id": media_id})

    def _refused(self, call: GraphCall) -> web.Response | None:
        """Meta's answers to what breaks its rules."""
        body = call.body
        if not _addressed_to_a_person(body):
            return meta_error(100, "Invalid parameter: recipient")
        if call.to in self.outside_window and body.get("type") != "template":
            return meta_error(OUTSIDE_WINDOW, "Re-engagement message")
        if body.get("type") == "template" and not _parameters_valid(body["template"]):
            return meta_error(PARAMETER_FORMAT, "Param text cannot have new-line/tab characters")
        if body.get("type") == "text" and len(body["text"]["body"]) > 4096:
            return meta_error(100, "Invalid parameter: text too long")
        interactive = body.get("interactive")
        if interactive:
            text = interactive["body"]["text"]
            action = interactive["action"]
            if interactive["type"] == "button":
                buttons = action["buttons"]
                titles_ok = all(len(b["reply"]["title"]) <= 20 for b in buttons)
                if len(buttons) > 3 or not titles_ok or len(text) > 1024:
                    return meta_error(100, "Invalid parameter: buttons")
            if interactive["type"] == "list":
                rows = [row for section in action["sections"] for row in section["rows"]]
                rows_ok = all(
                    len(row["title"]) <= 24 and len(row.get("description", "")) <= 72
                    for row in rows
                )
                if len(rows) > 10 or not rows_ok or len(text) > 4096 or len(action["button"]) > 20:
                    return meta_error(100, "Invalid parameter: list")
        return None


def _parameters_valid(template: dict[str, Any]) -> bool:
    """Meta's rule for a body parameter: no new lines or tabs, at most four spaces in a row."""
    texts = [
        str(parameter.get("text", ""))
        for component in template.get("components") or []
        for parameter in component.get("parameters") or []
    ]
    return not any("\n" in text or "\t" in text or "     " in text for text in texts)


def _addressed_to_a_person(body: dict[str, Any]) -> bool:
    """Meta's rule: one person, by number (`to`) or by business-scoped id (`recipient`)."""
    if body.get("recipient_type", "individual") != "individual":
        return False
    if "recipient" in body:
        return bool(BUSINESS_SCOPED_ID.fullmatch(str(body["recipient"]))) and "to" not in body
    return bool(WA_ID.fullmatch(str(body.get("to", ""))))


class WhatsAppPerson:
    """Someone writing to the shop from WhatsApp, and reading what the bot sends them."""

    def __init__(self, graph: FakeGraph, wa_id: str, name: str, user_id: str | None) -> None:
        self.graph = graph
        self.wa_id = wa_id
        self.name = name
        self.user_id = user_id
        self._ids = itertools.count(1)
        self._read = 0

    def webhook(self, message: dict[str, Any]) -> dict[str, Any]:
        """A webhook body carrying `message` from this person, as Meta sends it."""
        contact: dict[str, Any] = {"profile": {"name": self.name}, "wa_id": self.wa_id}
        if self.user_id:
            contact["user_id"] = self.user_id
        return {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": "WABA",
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {"display_phone_number": "1", "phone_number_id": "1"},
                                "contacts": [contact],
                                "messages": [
                                    {"from": self.wa_id, "timestamp": self._sent_at(), **message}
                                ],
                            },
                        }
                    ],
                }
            ],
        }

    def _sent_at(self) -> str:
        return str(int(self.graph.now().timestamp()))

    def _next_id(self) -> str:
        """Opaque, as Meta's are to the bot (whatever they encode)."""
        return f"wamid.IN{hashlib.sha256(self.wa_id.encode()).hexdigest()[:12]}.{next(self._ids)}"

    async def send(self, text: str) -> dict[str, Any]:
        body = self.webhook({"id": self._next_id(), "type": "text", "text": {"body": text}})
        assert await self.graph.post_webhook(json.dumps(body).encode()) == 200
        return body

    async def tap(self, on: GraphCall, title_part: str) -> dict[str, Any]:
        """Tap the reply button or list row whose title contains `title_part`."""
        option_id, title = on.option(title_part)
        return await self.tap_id(on, option_id, title)

    async def tap_id(self, on: GraphCall, option_id: str, title: str = "…") -> dict[str, Any]:
        """A tap answering `on` with `option_id`, whether `on` offered it or not (forged)."""
        kind = "button_reply" if on.kind == "interactive/button" else "list_reply"
        body = self.webhook(
            {
                "id": self._next_id(),
                "type": "interactive",
                "context": {"id": on.message_id},
                "interactive": {"type": kind, kind: {"id": option_id, "title": title}},
            }
        )
        assert await self.graph.post_webhook(json.dumps(body).encode()) == 200
        return body

    async def receive(self, timeout: float = 10.0) -> GraphCall:
        """The next message the bot sent this person that they have not read yet."""
        index, call = await self.graph.wait_for(
            lambda call: call.to in (self.wa_id, self.user_id) and call.message_id is not None,
            start=self._read,
            timeout=timeout,
        )
        self._read = index + 1
        return call

    async def receive_containing(self, part: str, timeout: float = 10.0) -> GraphCall:
        while True:
            call = await self.receive(timeout)
            if part in call.text:
                return call
