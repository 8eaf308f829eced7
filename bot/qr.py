"""Member cards and redemption codes as QR images a phone camera can read."""

import io

import segno


def qr_png(content: str, scale: int = 10) -> bytes:
    """A PNG of `content` with a quiet zone wide enough for phone cameras to lock on."""
    buffer = io.BytesIO()
    segno.make(content, error="m", micro=False).save(buffer, kind="png", scale=scale, border=4)
    return buffer.getvalue()
