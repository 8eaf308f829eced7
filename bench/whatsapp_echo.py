"""The WhatsApp floor: a bare pywa echo bot on the same webhook server stack and the same
Graph API stand-in. pywa checks the signature and hands each message to its handler, which
only echoes it; no handler can answer faster."""

import asyncio
import os

from aiohttp import web
from pywa_async.client import WhatsApp
from pywa_async.types.message import Message

from bot.config import load_settings
from handlers.whatsapp.app import WEBHOOK_PATH, graph_session, whatsapp_client


async def serve() -> None:
    settings = load_settings()
    async with graph_session(settings) as session:
        client: WhatsApp = whatsapp_client(settings, session)
        background: set[asyncio.Task[tuple[str, int]]] = set()

        @client.on_message()  # type: ignore[misc]  # pywa types its decorators loosely
        async def echo(_: WhatsApp, message: Message) -> None:
            await message.reply_text(message.text or "")  # type: ignore[misc]

        async def receive(request: web.Request) -> web.Response:
            body = await request.read()
            refused = await client.webhook_update_validator(
                body, request.headers.get("X-Hub-Signature-256")
            )
            if refused is not None:
                return web.Response(text=refused[0], status=refused[1])
            # As pywa's own server does: acknowledge at once, handle in the background.
            handling = asyncio.create_task(client.webhook_update_handler(body))
            background.add(handling)
            handling.add_done_callback(background.discard)
            return web.Response(text="ok")

        app = web.Application()

        async def verify(request: web.Request) -> web.Response:
            challenge, status = await client.webhook_challenge_handler(
                request.query.get("hub.verify_token"), request.query.get("hub.challenge")
            )
            return web.Response(text=challenge or "", status=status)

        app.router.add_get(WEBHOOK_PATH, verify)
        app.router.add_post(WEBHOOK_PATH, receive)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        host, port = settings.listen_host_port
        await web.TCPSite(runner, host, port).start()
        await asyncio.Event().wait()


if __name__ == "__main__":
    os.environ.setdefault("BOT_TOKEN", "")
    asyncio.run(serve())
