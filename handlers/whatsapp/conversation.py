"""A WhatsApp message read into the core's terms, and the core's replies sent back.

There are no commands on WhatsApp: people type words in either language (`saldo`, `venta`:
labels.j2 `command_words`) or the `/command` forms, or tap options; a scanned card or an
invitation arrives as the text its wa.me link prefilled (`c_<code>`, `staff_<token>`)."""

from __future__ import annotations

import re
from datetime import datetime

from bot.bootstrap import Services
from bot.conversation.core import Conversation as Core
from bot.conversation.said import Said, Surface
from bot.domain.models import Identity
from bot.inbox import Received
from handlers.whatsapp.channel import MOST_ROWS, WhatsAppChannel
from handlers.whatsapp.render import SAY, render
from handlers.whatsapp.updates import CHANNEL, incoming

# Options sent before taps were typed carried a bare word ("skip", "balance").
OLD_OPTION = re.compile("[a-z]{1,16}")


class Conversation:
    def __init__(self, services: Services, channel: WhatsAppChannel) -> None:
        self._core = Core(services)
        self._channel = channel
        self._messages = services.messages
        self._surface = Surface(
            CHANNEL,
            command_menu=False,
            most_options=MOST_ROWS,
            joins_on_first_message=True,
            link=channel.start_link,
        )

    def people(self, received: Received) -> list[Identity]:
        """The sender, and the number WhatsApp gives with the message: an owner known by a
        business-scoped id is named by number in OWNER_PHONES."""
        phone = incoming(received).phone
        people = [Identity(CHANNEL, received.person)]
        return [*people, Identity(CHANNEL, phone.lstrip("+"))] if phone else people

    def sent_at(self, received: Received) -> datetime | None:
        return incoming(received).sent_at

    async def handle(self, received: Received) -> None:
        message = incoming(received)
        person = Identity(CHANNEL, message.person)
        if message.preference is not None:
            if message.preference in ("stop", "resume"):
                granted = message.preference == "resume"
                await self._core.offers_preference(self.people(received), message.phone, granted)
            return
        if message.kind == "reaction":  # a 👍 on a message asks for nothing
            return
        if message.kind == "unread":  # a sticker, a voice note: say what the bot reads
            reply = await self._core.in_their_language(person, "whatsapp/not_read")
            await render(self._channel, self._messages, person, reply)
            return
        text, tap = message.text, message.choice
        if tap is not None and tap.startswith(SAY):  # an option that types its text
            text, tap = tap.removeprefix(SAY), None
        elif tap is not None and OLD_OPTION.fullmatch(tap):  # read as its title, typed
            tap = None
        said = Said(
            person,
            self._surface,
            key=f"{CHANNEL}:{message.id}",
            text=text,
            tap=tap,
            profile_name=message.profile_name,
            phone=message.phone,
        )
        async for reply in self._core.answer(said):
            await render(self._channel, self._messages, person, reply)

    async def dropped(self, received: Received) -> None:
        """Nothing to acknowledge: the flood is simply not answered."""

    async def slow_down(self, received: Received) -> None:
        person = Identity(CHANNEL, received.person)
        await render(self._channel, self._messages, person, await self._core.slow_down(person))
