"""The core's replies as Telegram shows them: HTML, options as an inline keyboard (its rows
kept), suggestions as a one-time reply keyboard (with a button that shares the phone number),
photos sent by Telegram's id once uploaded, documents streamed from disk. An answer to a tap
may replace the tapped message or take its buttons away, and every tap is acknowledged once
(a courtesy: its failure stops nothing)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from telegram import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)
from telegram.error import BadRequest, TelegramError
from telegram.ext import ExtBot

from bot.conversation.replies import Reply
from bot.messages import Messages

log = logging.getLogger(__name__)

UPLOAD_TIMEOUT = 300  # seconds: an export of a large shop is tens of megabytes
PHOTOS_KEPT = 100_000  # Telegram's ids of photos sent again by id (members' cards)
Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove | None


class TelegramReplies:
    """Renders one update's replies into its chat; `query`: the tap being answered."""

    def __init__(
        self,
        bot: ExtBot[None],
        messages: Messages,
        chat_id: int,
        query: CallbackQuery | None,
        photo_ids: dict[str, str],
    ) -> None:
        self._bot = bot
        self._messages = messages
        self._chat_id = chat_id
        self._query = query
        self._photo_ids = photo_ids
        self._acknowledged = query is None

    async def send(self, reply: Reply) -> None:
        text = self._messages.render(reply.language, reply.template, **reply.context)
        if reply.as_notice and self._query is not None and not self._acknowledged:
            await self._acknowledge(text.unescape())
            if reply.closes_prompt:
                await self._close_prompt()
            return
        await self._acknowledge()
        if reply.replaces_prompt and await self._replace_prompt(text, reply):
            return
        if reply.closes_prompt:
            await self._close_prompt()
        markup = _markup(reply)
        if reply.photo is not None:
            await self._photo(reply, text, markup)
        elif reply.document is not None:
            await self._document(reply, text)
        else:
            await self._bot.send_message(self._chat_id, text, reply_markup=markup)

    async def finish(self) -> None:
        """A tap that got no reply is still acknowledged, or its button keeps spinning."""
        await self._acknowledge()

    async def _acknowledge(self, notice: str | None = None) -> None:
        if self._acknowledged or self._query is None:
            return
        self._acknowledged = True
        try:
            await self._query.answer(notice, show_alert=notice is not None)
        except TelegramError as error:  # too old to answer: the work goes on
            log.info("could not acknowledge a tap (%s)", error)

    async def _replace_prompt(self, text: str, reply: Reply) -> bool:
        """The tapped message becomes the answer; False when Telegram will not edit it."""
        assert self._query is not None
        try:
            markup = _markup(reply)
            assert markup is None or isinstance(markup, InlineKeyboardMarkup)
            await self._query.edit_message_text(text, reply_markup=markup)
            return True
        except BadRequest as error:
            log.info("could not edit the prompt (%s); sending the answer instead", error)
            return False

    async def _close_prompt(self) -> None:
        if self._query is None:
            return
        with contextlib.suppress(BadRequest):  # gone already, or not ours to edit
            await self._query.edit_message_reply_markup(reply_markup=None)

    async def _photo(self, reply: Reply, caption: str, markup: Markup) -> None:
        photo = reply.photo
        assert photo is not None
        known = self._photo_ids.get(photo.reuse_key) if photo.reuse_key else None
        if known is not None:
            try:
                await self._bot.send_photo(
                    self._chat_id, known, caption=caption, reply_markup=markup
                )
                return
            except BadRequest:  # Telegram no longer knows that photo: upload it again
                del self._photo_ids[photo.reuse_key or ""]
        sent = await self._bot.send_photo(
            self._chat_id,
            await asyncio.to_thread(photo.draw),  # a card takes ~0.1 s: others go on
            caption=caption or None,
            filename=photo.filename,
            reply_markup=markup,
        )
        if photo.reuse_key and sent.photo and len(self._photo_ids) < PHOTOS_KEPT:
            self._photo_ids[photo.reuse_key] = sent.photo[-1].file_id

    async def _document(self, reply: Reply, caption: str) -> None:
        document = reply.document
        assert document is not None
        if document.content is not None:
            upload = InputFile(document.content, filename=document.filename)
            await self._bot.send_document(self._chat_id, upload, caption=caption)
            return
        assert document.path is not None
        handle = await asyncio.to_thread(Path(document.path).open, "rb")
        with handle:  # streamed from disk as it uploads
            await self._bot.send_document(
                self._chat_id,
                InputFile(handle, filename=document.filename, read_file_handle=False),
                caption=caption,
                write_timeout=UPLOAD_TIMEOUT,
                read_timeout=UPLOAD_TIMEOUT,
            )


def _markup(reply: Reply) -> Markup:
    if reply.options:
        return InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton(option.label, callback_data=option.tap.pack())
                    for option in row
                ]
                for row in reply.options
            ]
        )
    rows: list[list[KeyboardButton]] = []
    if reply.contact_button:
        rows.append([KeyboardButton(reply.contact_button, request_contact=True)])
    rows += [[KeyboardButton(suggestion)] for suggestion in reply.suggestions]
    if rows:
        return ReplyKeyboardMarkup(rows, resize_keyboard=True, one_time_keyboard=True)
    return ReplyKeyboardRemove() if reply.clears_suggestions else None
