"""The bot's HTTP client (aiohttp under python-telegram-bot): timeouts and dead endpoints become
PTB's own errors, which the push channel turns into a later retry."""

from __future__ import annotations

import socket
from zoneinfo import ZoneInfo

import pytest
from telegram import Bot
from telegram.error import NetworkError, TimedOut

from bot.domain.models import Identity, Language
from bot.domain.pushes import Delivered, Failed, PushMessage
from bot.messages import Messages
from bot.program import load_program
from handlers.telegram.aiohttp_request import AiohttpRequest
from handlers.telegram.push_channel import TelegramPushChannel
from handlers.telegram.standin import FakeTelegram

TOKEN = "123456:TRANSPORT"


async def test_a_reply_that_never_comes_times_out_and_the_push_is_tried_again_later(
    api: FakeTelegram,
) -> None:
    api.hold = lambda call: call.method == "sendMessage" and call.chat_id == 901
    program = load_program(None)
    request = AiohttpRequest(read_timeout=0.2)
    async with Bot(TOKEN, base_url=f"{api.url}/bot", request=request) as bot:
        channel = TelegramPushChannel(bot, Messages(ZoneInfo("Europe/Madrid"), program.shop.money))
        message = PushMessage("pushes/nps", {"shop": program.shop.name})
        held = await channel.deliver(Identity("telegram", "901"), Language.ES, message)
        answered = await channel.deliver(Identity("telegram", "902"), Language.ES, message)
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
