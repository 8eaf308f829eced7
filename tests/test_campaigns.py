"""/broadcast and /campaigns: written, aimed, previewed and confirmed by the owner in the chat;
sent only with consent and within the cap, once, with a one-tap opt-out; followed for 14 days."""

from __future__ import annotations

from datetime import timedelta

from bot.domain.models import Actor, ConsentTopic, Identity, Refused, Role
from bot.domain.promotions import Promotion, promote
from bot.domain.pushes import PushMessage
from tests.conftest import RunningBot
from tests.flows import CLERK, buy, campaign_draft, join

OWNER = Actor(Identity("telegram", "1"), Role.OWNER)


async def test_the_owner_sends_a_campaign_with_a_coupon_and_follows_it(bot: RunningBot) -> None:
    ana_chat, ana = await join(bot, 601)
    bea_chat, bea = await join(bot, 602)
    await join(bot, 603, consent=False)
    owner = bot.api.user(1, "Dueña", "es")
    await owner.send("/broadcast")
    await owner.receive_containing("Nueva campaña")
    await owner.send("¡Llega el vino nuevo! Ven a probarlo este sábado.")
    audience = await owner.receive_containing("¿Quién lo recibe?")
    await owner.press(audience, "Todos los que aceptan ofertas")
    coupon = await owner.receive_containing("cupón de descuento")
    await owner.press(coupon, "10%")
    preview = await owner.receive_containing("Lo recibir")
    assert "<b>2 clientes</b>" in preview.text
    assert "¡Llega el vino nuevo!" in preview.text and "10% de descuento" in preview.text
    await owner.press(preview, "Enviar")
    sent = await owner.receive_containing("En marcha")
    assert "2 mensajes salen" in sent.text
    await owner.press(preview, "Enviar")  # a second tap sends nothing more
    await owner.receive_containing("ya se envió")
    assert (await bot.services.jobs.deliver()).sent >= 2
    message = await ana_chat.receive_containing("vino nuevo")
    await bea_chat.receive_containing("vino nuevo")
    assert bot.api.calls_to("sendMessage")[-1].chat_id in (601, 602)
    assert not [c for c in bot.api.calls_to("sendMessage") if c.chat_id == 603]
    await ana_chat.press(message, "No más ofertas")  # the one-tap opt-out
    await ana_chat.receive_containing("Ofertas")
    ana_now = await bot.services.membership.member(ana.identity)
    assert ana_now is not None and not ana_now.promotions_consent
    [bea_coupon] = await bot.services.rewards.open_coupons(bea)
    code = await bot.services.rewards.request_coupon(bea, bea_coupon.id)
    assert not isinstance(code, Refused)
    await bot.services.rewards.confirm(CLERK, code.code)
    await buy(bot, bea, 3)
    bot.clock.advance(timedelta(days=20))
    await buy(bot, bea, 5)  # after the 14 days followed
    await owner.send("/campaigns")
    listing = await owner.receive_containing("Últimas campañas")
    assert "Destinatarios: 2 · enviados: 2 · bloqueados: 0 · se dieron de baja: 1" in listing.text
    assert "Cupones canjeados: 1 · compras de los destinatarios: 30,00 EUR" in listing.text


async def test_a_campaign_confirmed_in_the_quiet_hours_says_when_it_starts_and_counts_as_waiting(
    bot: RunningBot,
) -> None:
    await join(bot, 621)
    bot.clock.advance(timedelta(hours=11, minutes=30))  # 22:30 in Madrid: quiet until 9:00
    owner = bot.api.user(1, "Dueña", "es")
    await owner.send("/broadcast")
    await owner.receive_containing("Nueva campaña")
    await owner.send("Mañana, cata gratis.")
    await owner.press(await owner.receive_containing("¿Quién lo recibe?"), "Todos")
    await owner.press(await owner.receive_containing("cupón de descuento"), "Sin cupón")
    await owner.press(await owner.receive_containing("Lo recibir"), "Enviar")
    sent = await owner.receive_containing("En marcha")
    assert "empezarán a salir el 25/11/2026 a las 09:00" in sent.text
    await bot.services.jobs.deliver()  # the dispatcher holds it: still the quiet hours
    await owner.send("/campaigns")
    listing = await owner.receive_containing("Últimas campañas")
    assert "Destinatarios: 1 · enviados: 0 · pendientes: 1 · bloqueados: 0" in listing.text


async def test_a_campaign_reaches_only_its_audience_and_respects_the_cap(bot: RunningBot) -> None:
    _, regular = await join(bot, 611)
    _, newcomer = await join(bot, 612)
    _, busy = await join(bot, 613)
    for _ in range(30):
        await buy(bot, regular)  # 30 points this year: Silver
    campaigns = bot.services.campaigns
    async with bot.services.database.transaction() as tx:  # two offers this week already
        offers = [
            Promotion(busy, "nudge", f"earlier:{n}", PushMessage("pushes/nudge"), "near_reward")
            for n in range(2)
        ]
        await promote(tx, offers, bot.clock.now(), bot.services.program.contact)
    counts = {}
    for code in ("everyone", "tier:bronze", "tier:silver", "tier:gold", "idle:30", "birthday"):
        campaign = await campaign_draft(campaigns, OWNER)
        await campaigns.write(OWNER, "Hola")
        await campaigns.choose_audience(OWNER, campaign.id, code)
        preview = await campaigns.choose_coupon(OWNER, campaign.id, None)
        assert not isinstance(preview, Refused)
        counts[code] = preview.recipients
    assert counts == {
        "everyone": 3,
        "tier:bronze": 2,
        "tier:silver": 1,
        "tier:gold": 0,
        "idle:30": 0,
        "birthday": 0,
    }
    campaign = await campaign_draft(campaigns, OWNER)
    await campaigns.write(OWNER, "Para todos")
    await campaigns.choose_audience(OWNER, campaign.id, "everyone")
    await campaigns.choose_coupon(OWNER, campaign.id, None)
    sent = await campaigns.send(OWNER, campaign.id)
    assert not isinstance(sent, Refused)
    assert (sent.queued, sent.capped) == (2, 1)
    assert await _campaign_recipients(bot, campaign.id) == {regular.id, newcomer.id}


async def test_only_the_owner_may_broadcast(bot: RunningBot) -> None:
    stranger = bot.api.user(620, "Curioso", "es")
    await stranger.send("/broadcast")
    await stranger.receive_containing("No tienes permiso")
    assert await bot.services.campaigns.recent() == []


async def test_campaign_opt_out_is_the_consent_itself(bot: RunningBot) -> None:
    _, ana = await join(bot, 631)
    await bot.services.membership.set_consent(ana, ConsentTopic.PROMOTIONS, False)
    campaigns = bot.services.campaigns
    campaign = await campaign_draft(campaigns, OWNER)
    await campaigns.write(OWNER, "Hola")
    await campaigns.choose_audience(OWNER, campaign.id, "everyone")
    preview = await campaigns.choose_coupon(OWNER, campaign.id, 15)
    assert not isinstance(preview, Refused) and preview.recipients == 0


async def _campaign_recipients(bot: RunningBot, campaign_id: int) -> set[int]:
    async with bot.services.database.reading() as tx:
        rows = await tx.fetch_all(
            "SELECT customer_id FROM outbox WHERE kind = 'campaign' AND dedupe_key LIKE ?",
            (f"campaign:{campaign_id}:%",),
        )
    return {row["customer_id"] for row in rows}


async def test_a_forged_coupon_tap_is_refused_politely(bot: RunningBot) -> None:
    owner = bot.api.user(1, "Dueña", "es")
    campaign = await campaign_draft(bot.services.campaigns, OWNER)
    await bot.services.campaigns.write(OWNER, "Hola")
    await bot.services.campaigns.choose_audience(OWNER, campaign.id, "everyone")
    await owner.send("/help")
    prompt = await owner.receive("sendMessage")
    for forged in (f"campaign:{campaign.id}:coupon:", f"campaign:{campaign.id}:coupon:7"):
        await owner.press_data(prompt, forged)
        await owner.receive_containing("No encuentro esa campaña")


PHOTO = b"\xff\xd8\xff\xe0" + b"a photo of the new wine" * 100


async def test_a_campaign_with_a_photo_goes_as_the_photo_with_its_caption(
    bot: RunningBot,
) -> None:
    ana_chat, _ = await join(bot, 641)
    bea_chat, _ = await join(bot, 642)
    owner = bot.api.user(1, "Dueña", "es")
    await owner.send("/broadcast")
    await owner.receive_containing("Nueva campaña")
    await owner.send_photo(PHOTO, "Mirad el vino nuevo")
    audience = await owner.receive_containing("¿Quién lo recibe?")
    await owner.press(audience, "Todos los que aceptan ofertas")
    coupon = await owner.receive_containing("cupón de descuento")
    await owner.press(coupon, "Sin cupón")
    shown = await owner.receive("sendPhoto")  # the photo first, then the preview under it
    assert shown.files
    preview = await owner.receive_containing("Lo recibir")
    assert "Mirad el vino nuevo" in preview.text
    await owner.press(preview, "Enviar")
    await owner.receive_containing("En marcha")
    await bot.services.jobs.deliver()
    first = await ana_chat.receive("sendPhoto")
    second = await bea_chat.receive("sendPhoto")
    assert "Mirad el vino nuevo" in first.text and "No más ofertas" in str(first.markup())
    uploads = [call for call in (first, second) if call.files]
    assert len(uploads) == 1  # the second goes by Telegram's id for the photo
    await bea_chat.press(second, "No más ofertas")
    await bea_chat.receive_containing("Ofertas")


async def test_a_photo_too_large_for_whatsapp_is_refused(bot: RunningBot) -> None:
    await campaign_draft(bot.services.campaigns, OWNER)
    refused = await bot.services.campaigns.write(OWNER, "Hola", b"\xff\xd8" * (3 * 1024 * 1024))
    assert refused == Refused("campaign_photo_too_large")
