"""The bot's HTTP client (aiohttp under python-telegram-bot): timeouts and dead endpoints become
PTB's own errors, which the push channel turns into a later retry."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from telegram import Bot
from telegram.error import NetworkError, TimedOut

from bot.channels import Choice, Delivered, Failed, Unreachable
from bot.domain.models import Identity, Language
from bot.messages import Messages
from bot.program import load_program
from handlers.telegram.aiohttp_request import AiohttpRequest
from handlers.telegram.channel import TelegramChannel
from handlers.telegram.standin import FakeTelegram, api_error

TOKEN = "123456:TRANSPORT"


async def test_a_reply_that_never_comes_times_out_and_the_push_is_tried_again_later(
    api: FakeTelegram,
) -> None:
    api.hold = lambda call: call.method == "sendMessage" and call.chat_id == 901
    program = load_program(None)
    request = AiohttpRequest(read_timeout=0.2)
    async with Bot(TOKEN, base_url=f"{api.url}/bot", request=request) as bot:
        messages = Messages(ZoneInfo("Europe/Madrid"), program.shop.money)
        channel = TelegramChannel(bot, messages)
        text = messages.render(Language.ES, "pushes/nps", shop=program.shop.name)
        held = await channel.send_text(Identity("telegram", "901"), text)
        answered = await channel.send_text(Identity("telegram", "902"), text)
    assert isinstance(held, Failed) and held.transient
    assert isinstance(answered, Delivered)  # and the next push goes out as usual


async def test_an_api_that_is_not_there_is_a_network_error() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    request = AiohttpRequest()
    await request.initialize()
    try:
        with pytest.raises(NetworkError) as raised:
            await request.post(f"http://127.0.0.1:{port}/bot{TOKEN}/getMe")
        assert not isinstance(raised.value, TimedOut)
    finally:
        await request.shutdown()


async def test_the_telegram_channel_sends_what_the_core_asks_and_says_who_is_gone(
    api: FakeTelegram,
) -> None:
    """The core's channel protocol on Telegram: text with a choice, a photo, a document, a
    request for the phone number; a person who blocked the bot is unreachable, not an error."""
    api.override = lambda call: (
        api_error(403, "Forbidden: bot was blocked by the user") if call.chat_id == 904 else None
    )
    person = Identity("telegram", "903")
    messages = Messages(ZoneInfo("Europe/Madrid"), load_program(None).shop.money)
    async with Bot(TOKEN, base_url=f"{api.url}/bot", request=AiohttpRequest()) as bot:
        channel = TelegramChannel(bot, messages)
        outcomes = [
            await channel.send_text(person, "¿Nos recomendarías?", Choice("survey", 7, (0, 1), 2)),
            await channel.send_photo(person, b"\x89PNG", "Tu tarjeta"),
            await channel.send_document(person, b"a,b\n", "export.csv", "Exportación"),
            await channel.ask_for_contact(person, "¿Tu teléfono?", "Compartir"),
        ]
        blocked = await channel.send_text(Identity("telegram", "904"), "Hola")
    assert outcomes == [Delivered()] * 4 and isinstance(blocked, Unreachable)
    text, photo, document, contact = [call for call in api.calls if call.chat_id == 903]
    assert [button["callback_data"] for button in text.inline_buttons()] == [
        "survey:7:0",
        "survey:7:1",
    ]
    assert (photo.method, photo.params["caption"]) == ("sendPhoto", "Tu tarjeta")
    assert document.method == "sendDocument" and document.files["document"] == b"a,b\n"
    assert contact.keyboard_buttons()[0]["request_contact"] is True
    assert channel.capabilities.free_form_allowed(None, datetime.now(UTC))
