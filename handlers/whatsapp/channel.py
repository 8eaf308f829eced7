"""WhatsApp as the core's `Channel`, and the rules of its messages that pywa does not check:
at most 3 reply buttons with titles of 20 characters and a body of 1024; lists of at most 10
rows (titles 24, descriptions 72, body 4096); text of 4096. Longer choices become a list, then
numbered text; longer titles are shortened; longer text is split."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import mimetypes
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote

import httpx
from pywa.types.callback import Button, Section, SectionList, SectionRow
from pywa.types.sent_update import SentMessage, SentTemplate
from pywa.types.templates import BodyText, TemplateLanguage
from pywa_async.client import WhatsApp
from pywa_async.errors import WhatsAppError

from bot.channels import Capabilities, Choice, Delivered, Failed, Outcome, RetryLater, Unreachable
from bot.domain.models import ConsentTopic, Identity, Language
from handlers.whatsapp.addresses import recipient
from handlers.whatsapp.formatting import to_whatsapp

log = logging.getLogger(__name__)

MOST_BUTTONS = 3
BUTTON_TITLE = 20
BODY_WITH_BUTTONS = 1024
MOST_ROWS = 10
ROW_TITLE = 24
ROW_DESCRIPTION = 72
TEXT = 4096
OUTSIDE_WINDOW = 131047
UNDELIVERABLE = 131026
RATE_LIMITS = (130429, 131056)
WAIT_AFTER_RATE_LIMIT = 60.0


def whatsapp(daily_first_contacts: int) -> Capabilities:
    return Capabilities(
        formatting="whatsapp",
        most_buttons=MOST_BUTTONS,
        longest_button_title=BUTTON_TITLE,
        longest_text=TEXT,
        free_form_window=timedelta(hours=24),
        daily_first_contacts=daily_first_contacts,
    )


@dataclass(frozen=True)
class Option:
    """One answer to offer: what comes back when it is chosen, and what it says."""

    id: str
    title: str


OPT_OUT = f"notify:{ConsentTopic.PROMOTIONS.value}:off"
JPEG = b"\xff\xd8"  # how a JPEG file starts (a photo from a phone); the bot's own images are PNG


def wa_link(business_number: str, text: str) -> str:
    """A wa.me link that opens a chat with the shop, `text` typed in."""
    return f"https://wa.me/{business_number}?text={quote(text)}"


class WhatsAppChannel:
    def __init__(self, client: WhatsApp, daily_first_contacts: int, business_number: str) -> None:
        self._client = client
        self._capabilities = whatsapp(daily_first_contacts)
        self._business_number = business_number
        # a photo's sha256 (or its key) -> WhatsApp's media id and type
        self._media_ids: dict[str, tuple[str, str]] = {}

    def start_link(self, payload: str) -> str:
        return wa_link(self._business_number, payload)

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    async def send_text(
        self,
        to: Identity,
        text: str,
        choice: Choice | None = None,
        opt_out: str | None = None,
    ) -> Outcome:
        if opt_out is not None:  # the same tap as the opt-out in "avisos"
            return await self.send_options(to, text, [Option(OPT_OUT, opt_out)])
        if choice is None or len(choice.values) > MOST_ROWS:
            return await self.send_options(to, text, [])  # the question names its scale
        options = [
            Option(f"{choice.question}:{choice.about}:{value}", str(value))
            for value in choice.values
        ]
        return await self.send_options(to, text, options, f"{choice.values[0]}-{choice.values[-1]}")

    async def send_options(
        self, to: Identity, markup: str, options: list[Option], list_title: str = "…"
    ) -> Outcome:
        """`markup` (the bot's HTML) as WhatsApp text, with `options` as reply buttons, a
        list, or (more than a list holds) numbered lines the person answers by typing."""
        text = to_whatsapp(markup)
        if len(options) > MOST_ROWS:
            lines = (f"{number}. {option.title}" for number, option in enumerate(options, 1))
            text += "\n\n" + "\n".join(lines)
            options = []
        *before, last = _pieces(text, TEXT)
        for piece in before:
            outcome = await self._send(self._client.send_message(recipient(to), piece))
            if not isinstance(outcome, Delivered):
                return outcome
        fits_buttons = len(options) <= MOST_BUTTONS and len(last) <= BODY_WITH_BUTTONS
        if not options:
            buttons: list[Button] | SectionList | None = None
        elif fits_buttons and all(len(option.title) <= BUTTON_TITLE for option in options):
            buttons = [Button(option.title, option.id) for option in options]
        else:
            rows = [
                SectionRow(
                    _short(option.title, ROW_TITLE),
                    option.id,
                    # A title too long for the row is read whole in its description.
                    _short(option.title, ROW_DESCRIPTION)
                    if len(option.title) > ROW_TITLE
                    else None,
                )
                for option in options
            ]
            buttons = SectionList(_short(list_title, BUTTON_TITLE), [Section(" ", rows)])
        return await self._send(self._client.send_message(recipient(to), last, buttons=buttons))

    async def send_photo(
        self,
        to: Identity,
        photo: bytes | Callable[[], bytes],
        caption: str,
        opt_out: str | None = None,
        key: str | None = None,
        filename: str | None = None,
    ) -> Outcome:
        """A photo is uploaded to WhatsApp once and sent by its media id after that (Meta keeps
        it 30 days): a campaign to thousands uploads it once. `photo` may be drawn on demand,
        and `key` names a picture that is always the same (a member's card): known by that
        key, it is neither drawn nor uploaded again. `filename`: what a saved copy is called."""
        buttons = [Button(opt_out, OPT_OUT)] if opt_out else None
        image = b""
        if key is None or key not in self._media_ids:
            # Drawn in a thread (a member card takes ~0.1 s): the others are answered meanwhile.
            image = await asyncio.to_thread(photo) if callable(photo) else photo
            key = key or hashlib.sha256(image).hexdigest()
        try:
            if key not in self._media_ids:
                mime_type = mimetypes.types_map[".jpg" if image.startswith(JPEG) else ".png"]
                uploaded = await self._client.upload_media(
                    image, mime_type, filename=filename, media_type="image"
                )
                self._media_ids[key] = (uploaded.id, mime_type)
        except WhatsAppError as error:
            return Failed(f"{error.code}: {error.message}", transient=bool(error.is_transient))
        except httpx.HTTPError as error:
            return Failed(f"{type(error).__name__}: {error}", transient=True)
        media_id, mime_type = self._media_ids[key]
        return await self._send(
            self._client.send_image(
                recipient(to),
                media_id,
                caption=_short(to_whatsapp(caption), BODY_WITH_BUTTONS),
                buttons=buttons,
                mime_type=mime_type,
            )
        )

    async def send_document(
        self, to: Identity, document: bytes, filename: str, caption: str
    ) -> Outcome:
        mime_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        return await self._send(
            self._client.send_document(
                recipient(to),
                document,
                filename=filename,
                caption=_short(to_whatsapp(caption), BODY_WITH_BUTTONS),
                mime_type=mime_type,
            )
        )

    async def ask_for_contact(self, to: Identity, text: str, button_label: str) -> Outcome:
        """WhatsApp knows the number already: the question is enough."""
        return await self.send_options(to, text, [])

    async def send_template(
        self, to: Identity, name: str, language: Language, parameters: list[str]
    ) -> Outcome:
        values = [template_parameter(value) for value in parameters]
        # pywa declares params without self; called on the class it takes the values.
        body = [BodyText.params(*values)] if values else None  # type: ignore[arg-type]
        return await self._send(
            self._client.send_template(recipient(to), name, TemplateLanguage(language.value), body)
        )

    async def _send(self, call: Awaitable[SentMessage | SentTemplate]) -> Outcome:
        try:
            sent = await call
        except WhatsAppError as error:
            if error.code == OUTSIDE_WINDOW:  # only an approved template may go now
                return Failed(f"{error.code}: outside the 24-hour window", transient=False)
            if error.code == UNDELIVERABLE:
                return Unreachable(f"{error.code}: {error.message}")
            if error.code in RATE_LIMITS:
                return RetryLater(WAIT_AFTER_RATE_LIMIT)
            return Failed(f"{error.code}: {error.message}", transient=bool(error.is_transient))
        except httpx.HTTPError as error:
            return Failed(f"{type(error).__name__}: {error}", transient=True)
        return Delivered(sent.id)


def template_parameter(text: str) -> str:
    """A value as Meta takes it in a template's body (error 132018 otherwise): no new lines
    or tabs, no more than four spaces in a row, and the body's 1,024 characters at most. The
    owner's paragraphs are kept apart by a middle dot."""
    lines = (" ".join(line.split()) for line in text.splitlines())
    return _short(" · ".join(line for line in lines if line), BODY_WITH_BUTTONS)


def _short(text: str, most: int) -> str:
    return text if len(text) <= most else text[: most - 1] + "…"


def _pieces(text: str, most: int) -> list[str]:
    """`text` in pieces of at most `most` characters, cut between paragraphs where it can."""
    pieces = []
    while len(text) > most:
        cut = text.rfind("\n\n", 0, most)
        cut = cut if cut > 0 else most
        pieces.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    return [*pieces, text]
