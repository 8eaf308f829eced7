"""A loopback stand-in for the Telegram Bot API.

An aiohttp server on 127.0.0.1 that answers the bot's real HTTP requests: it hands out updates
through getUpdates (long polling, offsets confirmed the way Telegram does) or, once the bot
calls setWebhook, posts them to its webhook with the secret header, again until answered 200
(each person's updates one at a time and in order, different people's side by side). It
records every other call with its parameters and uploaded files, and answers them with
plausible objects. Tests, benchmarks and `loyalty-bot try` play Telegram users through
`ChatUser`, which builds the updates a real client would cause.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import BodyPartReader, ClientError, ClientSession, web

from handlers.recording import Recording

WEBHOOK_CONNECTIONS = 40  # Telegram's default max_connections
WEBHOOK_RETRY_SECONDS = 0.05  # Telegram waits longer; tests need not
BOT_ID = 7000000001
BOT_USERNAME = "bodega_loyalty_bot"


@dataclass
class ApiCall:
    """One request the bot made: the method, its form fields as sent, and any uploaded files."""

    method: str
    params: dict[str, str]
    files: dict[str, bytes] = field(default_factory=dict)
    message_id: int | None = None
    file_names: dict[str, str] = field(default_factory=dict)  # each upload's name, as sent

    @property
    def chat_id(self) -> int | None:
        raw = self.params.get("chat_id")
        return int(raw) if raw is not None else None

    @property
    def text(self) -> str:
        return self.params.get("text") or self.params.get("caption") or ""

    def markup(self) -> dict[str, Any] | None:
        raw = self.params.get("reply_markup")
        return json.loads(raw) if raw else None

    def inline_buttons(self) -> list[dict[str, Any]]:
        markup = self.markup() or {}
        return [button for row in markup.get("inline_keyboard", []) for button in row]

    def keyboard_buttons(self) -> list[dict[str, Any]]:
        markup = self.markup() or {}
        return [
            button if isinstance(button, dict) else {"text": button}
            for row in markup.get("keyboard", [])
            for button in row
        ]

    def callback_data_or_none(self, text_part: str) -> str | None:
        """The data of the inline button whose label contains `text_part`, if there is one."""
        for button in self.inline_buttons():
            if text_part in button["text"]:
                return str(button["callback_data"])
        return None

    def callback_data(self, text_part: str) -> str:
        data = self.callback_data_or_none(text_part)
        assert data is not None, f"no inline button with {text_part!r} in {self.inline_buttons()}"
        return data


HANDLED_POLL = 0.005  # seconds between looks at the bot's inbox
SERVING: dict[str, FakeTelegram] = {}  # each running stand-in by its address


class FakeTelegram(Recording[ApiCall]):
    def __init__(self) -> None:
        super().__init__()
        self._pending: list[dict[str, Any]] = []  # kept until the bot's offset confirms them
        self._replays: list[dict[str, Any]] = []  # handed out once more, whatever the offset
        self._update_ids = itertools.count(1)
        self.confirmed_below = 0  # the highest offset the bot has sent: updates below are done
        self._message_ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._closing = False
        self._users: dict[int, ChatUser] = {}
        self.url = ""
        # Tests may install a function that answers a call instead of the default (faults).
        self.override: Callable[[ApiCall], web.Response | None] | None = None
        # Calls for which this returns True get no answer until the stand-in stops (timeouts).
        self.hold: Callable[[ApiCall], bool] | None = None
        self._released = asyncio.Event()
        self.files: dict[str, bytes] = {}  # file_id -> the bytes a person sent (their photos)
        # When messages are sent (their `date`): the tests' clock, if they set it.
        self.now: Callable[[], datetime] = lambda: datetime.now(UTC)
        # Whether the bot has handled an update id: it confirms updates once they are in its
        # inbox, before handling them, so whoever runs the bot says how to look there.
        self.handled_check: Callable[[int], Awaitable[bool]] | None = None
        # Webhook mode (setWebhook): where updates are posted, and how they were answered.
        self.webhook: tuple[str, str] | None = None
        self.webhook_answers: list[tuple[int, float]] = []  # (HTTP status, seconds to answer)
        # A load balancer in front of several bot processes (benchmarks): each post goes to
        # the next of these addresses, and on to the next one when that cannot be reached.
        self.balance_over: list[str] = []
        self._next_target = itertools.count()
        self._posting: dict[int, asyncio.Queue[dict[str, Any]]] = {}
        self._posted_ok: set[int] = set()
        self._posters: list[asyncio.Task[None]] = []

    def sent_at(self) -> int:
        return int(self.now().timestamp())

    async def start(self, port: int = 0) -> str:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{file_id}", self._file)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        SERVING[self.url] = self
        return self.url

    async def stop(self) -> None:
        for poster in self._posters:
            poster.cancel()
        await asyncio.gather(*self._posters, return_exceptions=True)
        # Release long polls still open on the server side, or cleanup waits out their timeout.
        self._released.set()
        async with self._changed:
            self._closing = True
            self._changed.notify_all()
        if self._runner is not None:
            await self._runner.cleanup()
        SERVING.pop(self.url, None)

    # --- feeding updates -------------------------------------------------------------------

    async def push(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Queue a new update (the update_id is assigned here) and wake the bot's long poll."""
        update = {"update_id": next(self._update_ids), **payload}
        if self.webhook is not None:
            self._post(update)
            return update
        async with self._changed:
            self._pending.append(update)
            self._changed.notify_all()
        return update

    def _post(self, update: dict[str, Any]) -> None:
        """Into the line of the person it is from (one line per connection Telegram keeps)."""
        sender = next(
            (v["from"]["id"] for v in update.values() if isinstance(v, dict) and "from" in v), 0
        )
        line = sender % WEBHOOK_CONNECTIONS
        if line not in self._posting:
            self._posting[line] = asyncio.Queue()
            self._posters.append(asyncio.create_task(self._poster(self._posting[line])))
        self._posting[line].put_nowait(update)

    async def _answered(self, update_id: int) -> None:
        """Confirmed once it and every update before it were answered 200."""
        async with self._changed:
            self._posted_ok.add(update_id)
            first_unanswered = max(self.confirmed_below, 1)
            while first_unanswered in self._posted_ok:
                first_unanswered += 1
            self.confirmed_below = first_unanswered
            self._changed.notify_all()

    async def _poster(self, line: asyncio.Queue[dict[str, Any]]) -> None:
        async with ClientSession() as session:
            while True:
                update = await line.get()
                while self.webhook is not None:
                    url, secret = self.webhook
                    if self.balance_over:
                        url = self.balance_over[next(self._next_target) % len(self.balance_over)]
                    started = asyncio.get_running_loop().time()
                    try:
                        async with session.post(
                            url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": secret}
                        ) as response:
                            status = response.status
                    except (ClientError, OSError):
                        status = 0
                    took = asyncio.get_running_loop().time() - started
                    self.webhook_answers.append((status, took))
                    if status == 200:
                        await self._answered(update["update_id"])
                        break
                    await asyncio.sleep(WEBHOOK_RETRY_SECONDS)

    async def redeliver(self, update: dict[str, Any]) -> None:
        """Hand out an already handled update again, as Telegram may after a crash or a timeout."""
        async with self._changed:
            self._replays.append(update)
            self._changed.notify_all()

    def user(
        self, user_id: int, first_name: str = "Ana", language_code: str | None = "es"
    ) -> ChatUser:
        """The person with this id; asking again gives the same reader of the chat, so what
        they have already read stays read."""
        known = self._users.get(user_id)
        if known is None:
            known = self._users[user_id] = ChatUser(self, user_id, first_name, language_code)
        return known

    # --- watching what the bot sends -------------------------------------------------------

    async def handled(self, update: dict[str, Any], timeout: float = 10.0) -> None:
        """Wait until the bot has confirmed `update` and every update before it and (with
        `handled_check`) handled them: the way to know that one person's update took effect
        before another's is sent (the bot handles different people's updates side by side)."""
        await self.wait_until(lambda: self.confirmed_below > update["update_id"], timeout)
        check = self.handled_check
        if check is None:
            return
        # The inbox may be in another process's database: there is no event to wait on.
        async with asyncio.timeout(timeout):
            while not await check(update["update_id"]):  # noqa: ASYNC110
                await asyncio.sleep(HANDLED_POLL)

    def calls_to(self, method: str) -> list[ApiCall]:
        return [call for call in self.calls if call.method == method]

    # --- the HTTP side ---------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params: dict[str, str] = {}
        files: dict[str, bytes] = {}
        file_names: dict[str, str] = {}
        if request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            async for part in reader:
                if not isinstance(part, BodyPartReader) or part.name is None:
                    continue
                body = await part.read()
                if part.filename:
                    files[part.name] = bytes(body)
                    file_names[part.name] = part.filename
                else:
                    params[part.name] = bytes(body).decode("utf-8")
        else:
            form = await request.post()
            params = {key: str(value) for key, value in form.items()}
        call = ApiCall(method, params, files, file_names=file_names)
        if self.hold is not None and self.hold(call):
            await self._released.wait()
        if self.override is not None:
            answer = self.override(call)
            if answer is not None:
                if method != "getUpdates":
                    await self._record(call)
                return answer
        if method == "getUpdates":
            if self.webhook is not None:
                return api_error(
                    409, "Conflict: can't use getUpdates method while webhook is active"
                )
            return _ok(await self._get_updates(params))
        result = self._answer(call)
        await self._record(call)
        return _ok(result)

    async def _get_updates(self, params: dict[str, str]) -> list[dict[str, Any]]:
        offset = int(params.get("offset", "0") or 0)
        timeout = float(params.get("timeout", "0") or 0)
        async with self._changed:
            # Telegram forgets updates below the offset: the bot has confirmed them.
            if offset > self.confirmed_below:
                self.confirmed_below = offset
                self._changed.notify_all()
            self._pending = [u for u in self._pending if u["update_id"] >= offset]
            if not (self._pending or self._replays) and timeout > 0:
                try:
                    await asyncio.wait_for(
                        self._changed.wait_for(
                            lambda: bool(self._pending or self._replays or self._closing)
                        ),
                        timeout,
                    )
                except TimeoutError:
                    return []
            # Replays first, so the last update handed out still carries the highest id.
            limit = int(params.get("limit", "100") or 100)
            handed = self._replays + self._pending[: max(limit - len(self._replays), 0)]
            self._replays = []
        return handed

    def _answer(self, call: ApiCall) -> Any:
        method = call.method
        if method == "getMe":
            return {
                "id": BOT_ID,
                "is_bot": True,
                "first_name": "Bodega",
                "username": BOT_USERNAME,
                "can_join_groups": False,
                "can_read_all_group_messages": False,
                "supports_inline_queries": False,
            }
        if method in {"sendMessage", "sendPhoto", "sendDocument", "editMessageText"}:
            return self._message(call)
        if method == "editMessageReplyMarkup":
            return self._message(call)
        if method == "setWebhook":
            self.webhook = (call.params["url"], call.params.get("secret_token", ""))
            return True
        if method == "deleteWebhook":
            self.webhook = None
            return True
        if method == "getFile":
            file_id = call.params["file_id"]
            size = len(self.files.get(file_id, b""))
            return {
                "file_id": file_id,
                "file_unique_id": file_id,
                "file_size": size,
                "file_path": file_id,
            }
        return True

    async def _file(self, request: web.Request) -> web.Response:
        """A file's download, as Telegram serves it from its file URL."""
        content = self.files.get(request.match_info["file_id"])
        if content is None:
            return web.Response(status=404)
        return web.Response(body=content)

    def _message(self, call: ApiCall) -> dict[str, Any]:
        if "message_id" in call.params:
            call.message_id = int(call.params["message_id"])
        else:
            call.message_id = next(self._message_ids)
        chat_id = call.chat_id or 0
        message: dict[str, Any] = {
            "message_id": call.message_id,
            "date": self.sent_at(),
            "chat": {"id": chat_id, "type": "private"},
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "Bodega"},
        }
        if call.method == "sendPhoto":
            message["photo"] = [
                {
                    "file_id": f"photo{call.message_id}",
                    "file_unique_id": f"p{call.message_id}",
                    "width": 400,
                    "height": 400,
                }
            ]
            message["caption"] = call.params.get("caption", "")
        elif call.method == "sendDocument":
            message["document"] = {
                "file_id": f"doc{call.message_id}",
                "file_unique_id": f"d{call.message_id}",
            }
        else:
            message["text"] = call.params.get("text", "")
        return message


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def api_error(status: int, description: str, retry_after: int | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return web.json_response(body, status=status)


class ChatUser:
    """A Telegram user in a private chat with the bot."""

    def __init__(
        self, api: FakeTelegram, user_id: int, first_name: str, language_code: str | None
    ) -> None:
        self.api = api
        self.id = user_id
        self.first_name = first_name
        self.language_code = language_code
        self._seen = 0  # index into api.calls up to which this user has read the bot's replies
        self._message_ids = itertools.count(1)

    def _user(self) -> dict[str, Any]:
        user: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.language_code is not None:
            user["language_code"] = self.language_code
        return user

    def _message(self, **content: Any) -> dict[str, Any]:
        return {
            "message": {
                "message_id": next(self._message_ids),
                "date": self.api.sent_at(),
                "chat": {"id": self.id, "type": "private", "first_name": self.first_name},
                "from": self._user(),
                **content,
            }
        }

    async def send(self, text: str) -> dict[str, Any]:
        """Type and send `text`; a leading /command is marked as one, as Telegram clients do."""
        content: dict[str, Any] = {"text": text}
        if text.startswith("/"):
            command = text.split()[0]
            content["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        return await self.api.push(self._message(**content))

    async def send_photo(self, photo: bytes, caption: str) -> dict[str, Any]:
        """Send a photo with a caption; the stand-in keeps its bytes for `getFile`."""
        file_id = f"sent{len(self.api.files) + 1}"
        self.api.files[file_id] = photo
        size = {"file_id": file_id, "file_unique_id": file_id, "width": 800, "height": 600}
        return await self.api.push(self._message(photo=[size], caption=caption))

    async def share_contact(self, phone: str, owner_id: int | None = None) -> dict[str, Any]:
        contact = {
            "phone_number": phone,
            "first_name": self.first_name,
            "user_id": owner_id or self.id,
        }
        return await self.api.push(self._message(contact=contact))

    async def press(self, on: ApiCall, label_part: str) -> dict[str, Any]:
        return await self.press_data(on, on.callback_data(label_part))

    async def press_data(self, on: ApiCall, data: str) -> dict[str, Any]:
        """Tap an inline button on the bot's message `on`, sending `data` (forged data too)."""
        assert on.message_id is not None
        query = {
            "id": f"{self.id}-{next(self._message_ids)}",
            "from": self._user(),
            "chat_instance": str(self.id),
            "data": data,
            "message": {
                "message_id": on.message_id,
                "date": self.api.sent_at(),
                "chat": {"id": self.id, "type": "private"},
                "from": {"id": BOT_ID, "is_bot": True, "first_name": "Bodega"},
                "text": on.text,
            },
        }
        return await self.api.push({"callback_query": query})

    async def receive(self, method: str | None = None, timeout: float = 10.0) -> ApiCall:
        """The next thing the bot sent to this chat (of `method`, if given) that we haven't read."""

        def addressed_to_me(call: ApiCall) -> bool:
            if call.chat_id != self.id:
                return False
            return method is None or call.method == method

        index, call = await self.api.wait_for(addressed_to_me, self._seen, timeout)
        self._seen = index + 1
        return call

    async def receive_containing(self, part: str, timeout: float = 10.0) -> ApiCall:
        """Read on until a message from the bot contains `part`; earlier ones count as read."""
        while True:
            call = await self.receive(timeout=timeout)
            if part in call.text:
                return call

    async def receive_with_button(self, data_prefix: str, timeout: float = 10.0) -> ApiCall:
        """Read on until a message carries an inline button whose data starts with the prefix."""
        while True:
            call = await self.receive(timeout=timeout)
            if any(
                str(b.get("callback_data", "")).startswith(data_prefix)
                for b in call.inline_buttons()
            ):
                return call

    async def receive_text(self, timeout: float = 10.0) -> str:
        return (await self.receive("sendMessage", timeout)).text
