"""The member card: a picture with the shop, the member, their tier and points, the QR code (it
still scans) and the code in large type; the same on both apps; a new one once points change."""

from __future__ import annotations

import io
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import zxingcpp
from PIL import Image

from bot.card import MARGIN, SMALLEST, WIDTH, CardFace, draw_card, layout
from bot.domain.models import Language, LedgerReason
from bot.messages import Messages
from bot.program import load_program
from bot.storage.ledger import LedgerRepository
from handlers.telegram.standin import BOT_USERNAME
from tests.conftest import RunningBot
from tests.flows import join

LONGEST_NAME = "María de los Ángeles Fernández Villamayo"  # 40 characters
assert len(LONGEST_NAME) == 40


def _scanned(png: bytes) -> str:
    [found] = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    return str(found.text)


async def test_the_card_shows_who_and_where_and_its_qr_scans(bot: RunningBot) -> None:
    user, member = await join(bot, 3101)
    await user.send("/card")
    sent = await user.receive("sendPhoto")
    png = sent.files["photo"]
    assert _scanned(png) == f"https://t.me/{BOT_USERNAME}?start=c_{member.member_code}"
    card = Image.open(io.BytesIO(png))
    assert card.size[0] == WIDTH and card.size[1] > WIDTH  # upright, as a phone holds it
    assert sent.file_names["photo"] == "tarjeta.png"  # named for people
    async with bot.services.database.transaction() as tx:
        await LedgerRepository(tx).append(
            member.id,
            12,
            LedgerReason.PURCHASE,
            actor="test",
            idempotency_key="card:1",
            at=bot.clock.now(),
        )
    await user.send("/card")
    again = await user.receive("sendPhoto")
    assert again.files, "points changed: the card is drawn again, not sent by its old id"
    await user.send("/card")
    assert (await user.receive("sendPhoto")).files == {}  # unchanged: by Telegram's id


@pytest.mark.parametrize("language", ["es", "en"])
def test_a_forty_character_name_fits_the_card_in_either_language(language: str) -> None:
    program = load_program(None)
    messages = Messages(ZoneInfo("Europe/Madrid"), program.shop.money)
    tier = max(program.tiers, key=lambda tier: len(tier.name.get(Language(language))))
    standing = messages.plain(Language(language), "card_face", tier=tier, points=123_456)
    link = "https://t.me/x?start=c_G8UC56XR"
    face = CardFace(program.shop.name, LONGEST_NAME, standing, "G8UC56XR", link)
    lines = layout(face)
    assert [line.text for line in lines] == [program.shop.name, LONGEST_NAME, standing, "G8UC56XR"]
    for line in lines:
        assert line.width <= WIDTH - 2 * MARGIN and line.size >= SMALLEST
    assert _scanned(draw_card(face)) == face.link


def test_the_shops_logo_and_colour_come_from_the_program_file(tmp_path: Path) -> None:
    logo = tmp_path / "logo.png"
    Image.new("RGB", (300, 200), "#00ff00").save(logo)
    sample = (Path(__file__).parent.parent / "bot" / "data" / "program.toml").read_text()
    text = sample.replace('card_colour = "#6b1d3a"', 'card_colour = "#003366"\nlogo = "logo.png"')
    (tmp_path / "program.toml").write_text(text)
    shop = load_program(tmp_path / "program.toml").shop
    assert shop.logo == tmp_path / "logo.png"
    face = CardFace(
        shop.name, "Ana", "Oro · 1 punto", "G8UC56XR", "c_G8UC56XR", shop.card_colour, shop.logo
    )
    card = Image.open(io.BytesIO(draw_card(face))).convert("RGB")
    assert card.getpixel((WIDTH - 5, 5)) == (0, 0x33, 0x66)  # the header in the shop's colour
    assert card.getpixel((MARGIN + 10, 100)) == (0, 255, 0)  # the logo on it
    assert _scanned(draw_card(face)) == "c_G8UC56XR"
