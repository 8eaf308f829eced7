"""Telegram's inline buttons: each carries a tap of the core's (bot/taps.py) as its data."""

from __future__ import annotations

from telegram import InlineKeyboardButton

from bot.taps import Button


def inline(label: str, button: Button) -> InlineKeyboardButton:
    return InlineKeyboardButton(label, callback_data=button.pack())
