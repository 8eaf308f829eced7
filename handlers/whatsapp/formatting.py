"""Templates render the bot's markup (Telegram's HTML subset, escaped); WhatsApp shows
`*bold*`, `_italic_`, `~strike~` and ```mono``` instead, and no HTML at all."""

from __future__ import annotations

import html
import re

_TAGS = {
    "b": "*",
    "strong": "*",
    "i": "_",
    "em": "_",
    "s": "~",
    "code": "```",
    "pre": "```",
}
_TAG = re.compile(r"<(/?)([a-z]+)(?:\s[^>]*)?>")
_LINK = re.compile(r'<a\s+href="([^"]*)">(.*?)</a>', re.DOTALL)


def to_whatsapp(markup: str) -> str:
    def link(found: re.Match[str]) -> str:
        target, label = html.unescape(found[1]), found[2]
        return label if html.unescape(label) == target else f"{label} ({target})"

    text = _LINK.sub(link, markup)
    text = _TAG.sub(lambda found: _TAGS.get(found[2], ""), text)
    return html.unescape(text)
