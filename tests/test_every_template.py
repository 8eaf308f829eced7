"""A tour of every flow in each language: each template must render with what the code gives it.

StrictUndefined makes a template fail on any variable the code did not pass; this tour makes
sure every template is actually rendered, in both languages, by the real handlers.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.bootstrap import Services
from bot.domain.models import Identity, Language
from bot.domain.money import Currency
from bot.messages import Messages
from bot.program import Digest, Expiry, ExpiryMode, Program, load_program
from bot.qr import qr_png
from bot.timetable import Jobs
from handlers.telegram.app import build_application
from handlers.telegram.context import SERVICES_KEY
from handlers.telegram.standin import ApiCall, ChatUser, FakeTelegram, api_error
from tests.conftest import FakeClock, running, settings_for
from tests.flows import CONSENT_YES, register, sell

MESSAGES = Path(__file__).parent.parent / "messages"


class RecordingMessages(Messages):
    """The real renderer, noting which templates it rendered and what with."""

    def __init__(self) -> None:
        super().__init__(ZoneInfo("Europe/Madrid"), Currency("EUR", 2, ","))
        self.seen: set[tuple[str, str]] = set()
        self.contexts: dict[tuple[Language, str], list[dict[str, Any]]] = {}

    def render(self, language: Language, template_name: str, /, **context: Any) -> Any:
        self.seen.add((language.value, template_name))
        kept = self.contexts.setdefault((language, template_name), [])
        if len(kept) < CONTEXTS_KEPT:
            kept.append(context)
        return super().render(language, template_name, **context)


CONTEXTS_KEPT = 5  # per template: what the tour gave it, to render again with other counts
COUNTS = (0, 1, 2, 21)
# A number and a noun (or a verb before it) that disagree, in each language.
DISAGREEMENTS = {
    "es": re.compile(
        r"\b1 (puntos|clientes|filas|días|ventas|compras|respuestas|mensajes|cupones|socios"
        r"|unidades|veces)\b|\b(0|2|21) (punto|cliente|fila|día|venta|compra|respuesta"
        r"|mensaje|cupón|socio|unidad|vez)\b|quedan (<b>)?1 |queda (<b>)?(0|2|21) "
        r"|recibirán (<b>)?1 |recibirá (<b>)?(0|2|21) |faltan (<b>)?1 |falta (<b>)?(0|2|21) "
    ),
    "en": re.compile(
        r"\b1 (points|customers|rows|days|sales|purchases|answers|messages|coupons|members"
        r"|units|times)\b|\b(0|2|21) (point|customer|row|day|sale|purchase|answer|message"
        r"|coupon|member|unit)\b"
    ),
}


# Two sentences run together ("un gran día.Tu regalo"): a block tag ate the line break.
RUN_TOGETHER = re.compile(r"[a-záéíóúñ)][.!?][A-ZÁÉÍÓÚÑ¿¡]")


def _with_count(value: Any, n: int) -> Any:
    """`value` with every whole number in it (in its fields, entries and items) set to `n`."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return n
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changed = {
            field.name: _with_count(getattr(value, field.name), n)
            for field in dataclasses.fields(value)
            if field.init
        }
        return dataclasses.replace(value, **changed)
    if isinstance(value, dict):
        return {key: _with_count(item, n) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_with_count(item, n) for item in value)
    return value


def _disagreements(messages: RecordingMessages, language: str) -> list[str]:
    """Every template the tour rendered, again with each count in COUNTS in place of every
    number it was given: the sentences where a number and its words disagree."""
    found = []
    for (lang, name), contexts in messages.contexts.items():
        if lang.value != language:
            continue
        for context, n in itertools.product(contexts, COUNTS):
            try:
                changed = _with_count(context, n)
                text = Messages.render(messages, lang, name, **changed)
            except Exception:  # a number the template needs as it was (an index): not a count
                continue
            for wrong in (DISAGREEMENTS[language], RUN_TOGETHER):
                match = wrong.search(str(text))
                if match:
                    found.append(f"{name} with {n}: ...{match.group(0)}...")
    return sorted(set(found))


FLOOD = 60  # each person's allowance in the tour (its clock mostly stands still)


def _all_templates(language: str) -> set[str]:
    folder = MESSAGES / language
    names = {str(path.relative_to(folder)).removesuffix(".j2") for path in folder.rglob("*.j2")}
    # labels and commands are read through label() and command_descriptions(); macros by import;
    # WhatsApp's own by its tour (tests/test_whatsapp.py); setup's by tests/test_setup.py.
    return {name for name in names if not name.startswith(("_", "whatsapp/"))} - {
        "labels",
        "commands",
        "setup",
    }


@pytest.fixture
def program() -> Program:
    """The sample, with every automation that is off as shipped turned on."""
    sample = load_program(None)
    return sample.model_copy(
        update={
            "expiry": Expiry(mode=ExpiryMode.LOTS, months=1, warning_days=5, last_chance_days=2),
            "churn": sample.churn.model_copy(update={"automatic_winback": True}),
            "nudges": sample.nudges.model_copy(update={"near_reward_share": Decimal("0.05")}),
            "digest": Digest(enabled=True),
        }
    )


@pytest.mark.parametrize("language", ["es", "en"])
async def test_every_template_is_rendered_by_the_handlers(
    api: FakeTelegram, clock: FakeClock, program: Program, tmp_path: Path, language: str
) -> None:
    messages = RecordingMessages()
    settings = settings_for(
        api, tmp_path / "tour.db", default_language=language, owner_ids="900", flood_burst=FLOOD
    )
    application = build_application(settings, program, clock, messages, background=False)
    async with running(application):
        ana = api.user(1, "Ana", language)
        await ana.send("/balance")  # not a member yet
        await ana.send("/cancel")  # nothing to cancel
        await ana.send("/nosuchcommand")
        await ana.send("/start")
        await ana.share_contact("+34612345678")  # name expected
        await ana.send(" ")  # empty name
        await ana.send("/x" + "y" * 3)  # unknown command while registering
        await ana.send("a\u0007b")  # invalid name
        await ana.send("n" * 65)  # too long
        await ana.send("Ana")
        await ana.send("123")  # invalid phone
        await ana.share_contact("+34699999999", owner_id=2)  # not her own
        await ana.send("612345678")
        for wrong in ("mañana", "31/02", "24/12/1800"):
            await ana.send(wrong)
        await ana.send("24/12")
        await ana.send("yes")  # consent must be tapped
        _, consent = await api.wait_for(
            lambda call: call.callback_data_or_none(CONSENT_YES[language]) is not None
        )
        await ana.press(consent, CONSENT_YES[language])
        await ana.receive("sendPhoto")
        await ana.send("/cancel")  # after joining: nothing to cancel
        for command in ("/help", "/balance", "/rewards", "/card", "/invite", "/mydata"):
            await ana.send(command)
        # Telegram refuses the photo: the handler fails and the customer hears an apology.
        api.override = lambda call: (
            api_error(400, "Bad Request: IMAGE_PROCESS_FAILED")
            if call.method == "sendPhoto"
            else None
        )
        await ana.send("/card")
        await api.wait_for(
            lambda call: (
                call.chat_id == 1
                and "problems" not in call.text
                and call.method == "sendMessage"
                and ("algo ha fallado" in call.text or "went wrong" in call.text)
            )
        )
        api.override = None
        await ana.send("/notifications")
        _, panel = await api.wait_for(
            lambda call: (
                call.chat_id == 1
                and "inline_keyboard" in call.params.get("reply_markup", "")
                and "notify:" in call.params["reply_markup"]
            )
        )
        await ana.press_data(panel, "notify:promotions:off")
        await ana.send("/language")
        _, choose = await api.wait_for(
            lambda call: call.chat_id == 1 and "language:" in call.params.get("reply_markup", "")
        )
        await ana.press_data(choose, "language:" + language)
        await ana.press_data(choose, "forged")
        await ana.send("/forget")
        _, confirm = await api.wait_for(
            lambda call: call.chat_id == 1 and "forget:" in call.params.get("reply_markup", "")
        )
        await ana.press_data(confirm, "forget:no")
        await ana.press_data(confirm, "forget:yes")

        friend = api.user(2, "Bea", language)
        await friend.send("/start ref_WRONGCODE")
        await friend.send("/cancel")
        await register(friend, consent=False)
        await friend.send("/invite")
        invite = await friend.receive("sendMessage")
        code = invite.text.split("ref_")[1].split()[0]
        await friend.send(f"/start ref_{code}")  # her own link
        newcomer = api.user(3, "Cris", language)
        await newcomer.send(f"/start ref_{code}")
        await newcomer.send("/cancel")
        await friend.send("/start ref_WRONGCODE")  # a member with someone's link
        await api.handled(await friend.send("/help"))  # and every update before it
        await _counter_tour(api, clock, language)
        services = application.bot_data[SERVICES_KEY]
        assert isinstance(services, Services)
        await _pushes_tour(api, clock, services.jobs, language)
        await _automations_tour(api, clock, services, language)
        await _insights_tour(api)
        flooder = api.user(4, "Flo", language)
        for _ in range(FLOOD + 1):
            sent = await flooder.send("/help")
        await api.handled(sent)

    rendered = {name for lang, name in messages.seen if lang == language}
    assert _all_templates(language) - rendered == set()
    assert _disagreements(messages, language) == []


def _button(call: ApiCall, prefix: str) -> str:
    return next(
        str(b["callback_data"])
        for b in call.inline_buttons()
        if str(b["callback_data"]).startswith(prefix)
    )


def _code(call: ApiCall) -> str:
    return str(re.findall(r"<code>([A-Z0-9]+)</code>", call.text)[0])


async def _counter_tour(api: FakeTelegram, clock: FakeClock, language: str) -> None:
    owner, clerk, helper = (
        api.user(900, "Owner", language),
        api.user(901, "Clerk", language),
        api.user(902, "Helper", language),
    )
    carla, dani = api.user(10, "Carla", language), api.user(11, "Dani", language)
    await owner.send("/stats")  # nothing sold yet: no chart can be drawn
    for _ in range(3):
        await owner.receive("sendMessage")
    await register(carla, name="Carla Ruiz", phone="+34 600 000 001")
    await register(dani, name="Dani Ruiz", phone="+34 600 000 001", consent=False)
    await carla.send("/sale X 1 1")  # not allowed
    await carla.send("/coupon X 10")  # not allowed either, as the core's table says

    async def invitation() -> str:
        await owner.send("/staff")
        panel = await owner.receive_with_button("staff:invite")
        await owner.press_data(panel, "staff:invite")
        return (
            (await owner.receive_containing("start=staff_"))
            .text.split("start=staff_")[1]
            .split()[0]
        )

    token = await invitation()
    await clerk.send(f"/start staff_{token}")
    await helper.send(f"/start staff_{token}")  # used
    await helper.send("/start staff_bogus")  # unknown
    late = await invitation()
    clock.advance(timedelta(hours=25))
    await helper.send(f"/start staff_{late}")  # expired
    await helper.send(f"/start staff_{await invitation()}")
    await clerk.send(f"/start staff_{await invitation()}")  # already staff

    carla_code = await _member_code(api, carla)
    await clerk.send(f"/start c_{carla_code}")
    ask = await clerk.receive_with_button("sale:no:")
    pending = _button(ask, "sale:no:").rsplit(":", 1)[1]
    await clerk.press_data(ask, f"sale:ok:{pending}")  # no amount yet
    for typed in ("abc", "0 1", "1,234 1", "0.001 1", "99999 1", "10", "10 abc", "10 0", "100 10"):
        await clerk.send(typed)
    confirm = await clerk.receive_with_button("sale:ok:")
    await clerk.press_data(confirm, _button(confirm, "sale:ok:"))
    first_sale = re.findall(r"#(\d+)", (await clerk.receive_containing("/void")).text)[0]
    await clerk.press_data(confirm, _button(confirm, "sale:ok:"))  # already recorded
    await carla.send("/invite")
    referral = (await carla.receive_containing("start=ref_")).text.split("start=ref_")[1].split()[0]
    eva = api.user(12, "Eva", language)
    await register(eva, start=f"/start ref_{referral}")
    await clerk.send(f"/sale {await _member_code(api, eva)} 10 1")
    first_buy = await clerk.receive_with_button("sale:ok:")
    await clerk.press_data(first_buy, _button(first_buy, "sale:ok:"))  # both earn the bonus
    await clerk.send("/sale")
    await clerk.send("/sale +34600000001 10 1")  # two customers share it
    await clerk.send("/sale NOSUCH 10 1")
    await clerk.send(f"/sale {carla_code} 300 30")
    cancel = await clerk.receive_with_button("sale:no:")
    await clerk.press_data(cancel, _button(cancel, "sale:no:"))
    await clerk.press_data(confirm, _button(confirm, "sale:no:"))  # long closed
    await clerk.send(f"/sale {carla_code} 300 30")
    confirm = await clerk.receive_with_button("sale:ok:")
    await clerk.press_data(confirm, _button(confirm, "sale:ok:"))  # tier up
    for command in ("/void x", "/void 999 err", f"/void {first_sale}"):
        await clerk.send(command)
    await helper.send(f"/void {first_sale} err")  # not theirs
    await clerk.send(f"/void {first_sale} err")
    await clerk.send(f"/void {first_sale} err")  # already voided
    for command in ("/customer", "/customer Ruiz", "/customer Carla"):
        await clerk.send(command)

    async def reward_code(button: str) -> str:
        await carla.send("/rewards")
        catalogue = await carla.receive_with_button(button)
        await carla.press_data(catalogue, _button(catalogue, button))
        return _code(await carla.receive("sendPhoto"))

    code = await reward_code("reward:free_bottle")
    await clerk.send("/redeem")
    await clerk.send("/redeem BOGUS")
    await clerk.send(f"/start r_{code}")
    review = await clerk.receive_with_button("redeem:")
    await clerk.press_data(review, _button(review, "redeem:"))
    await clerk.send(f"/redeem {code}")  # used
    await carla.press_data(review, "reward:nosuch")
    await dani.press_data(review, "reward:tasting_for_two")
    stale = await reward_code("reward:free_bottle")
    clock.advance(timedelta(minutes=16))
    await clerk.send(f"/redeem {stale}")  # expired
    code = await reward_code("reward:free_bottle")  # 20 points
    assert await reward_code("reward:free_bottle") == code  # one open code per reward
    await clerk.send(f"/redeem {code}")
    review = await clerk.receive_with_button("redeem:")
    await api.handled(await owner.send(f"/adjust {carla_code} -15 spent"))
    await api.handled(await clerk.press_data(review, _button(review, "redeem:")))  # too few
    await api.handled(await owner.send(f"/adjust {carla_code} +15 back"))

    for command in ("/adjust", f"/adjust {carla_code} +2 fair", f"/adjust {carla_code} -999 x"):
        await owner.send(command)
    for command in (f"/adjust {carla_code} 0 x", f"/adjust {carla_code} -1"):
        await owner.send(command)
    for command in ("/coupon", "/coupon NOSUCH 10", f"/coupon {carla_code} 15 5"):
        coupon = await owner.send(command)
    await api.handled(coupon)  # told of the coupon, she looks at her rewards
    await carla.send("/rewards")
    catalogue = await carla.receive_with_button("coupon:")
    await carla.press_data(catalogue, _button(catalogue, "coupon:"))
    await carla.press_data(catalogue, _button(catalogue, "coupon:"))
    both = [_code(await carla.receive("sendPhoto")) for _ in range(2)]
    reviews = []
    for code in both:
        await clerk.send(f"/redeem {code}")
        reviews.append(await clerk.receive_with_button("redeem:"))
    for review in reviews:
        pressed = await clerk.press_data(review, _button(review, "redeem:"))  # 2nd: coupon used
    await api.handled(pressed)
    await carla.press_data(catalogue, _button(catalogue, "coupon:"))  # used, from the old list
    await carla.press_data(catalogue, "coupon:99999")
    await owner.send(f"/coupon {carla_code} 10 1")
    await carla.send("/rewards")
    catalogue = await carla.receive_with_button("coupon:")
    clock.advance(timedelta(days=2))
    await carla.press_data(catalogue, _button(catalogue, "coupon:"))  # expired

    await owner.send("/staff")
    panel = await owner.receive_with_button("staff:remove:")
    remove = next(b["callback_data"] for b in panel.inline_buttons() if "Helper" in b["text"])
    await owner.press_data(panel, remove)
    await owner.press_data(panel, remove)  # gone already
    mark = len(api.calls)
    await owner.send("/help")
    await api.wait_for(lambda call: call.chat_id == 900 and "/coupon" in call.text, start=mark)


async def _insights_tour(api: FakeTelegram) -> None:
    owner = api.user(900, "Owner")
    for command in ("/stats 1 2", "/stats abc", "/stats 0", "/stats 90"):
        await owner.send(command)
    await owner.receive("sendPhoto")  # the numbers came first; now the charts
    await owner.send("/export")
    await owner.receive("sendDocument")
    await owner.receive("sendDocument")


async def _member_code(api: FakeTelegram, user: ChatUser) -> str:
    await user.send("/card")
    return _code(await user.receive("sendPhoto"))


async def _pushes_tour(api: FakeTelegram, clock: FakeClock, jobs: Jobs, language: str) -> None:
    owner, clerk = api.user(900, "Owner", language), api.user(901, "Clerk", language)
    await owner.send("/churn")  # nobody at risk yet
    await owner.receive_containing("🎉")
    # The day after tomorrow at 11:00 local: Fede's birthday, and inside the survey hours.
    madrid = ZoneInfo("Europe/Madrid")
    day = clock.now().astimezone(madrid).date() + timedelta(days=2)
    fede = api.user(13, "Fede", language)
    await register(fede, name="Fede", birthday=f"{day.day}/{day.month}")
    await clerk.send(f"/sale {await _member_code(api, fede)} 10 1")
    sale = await clerk.receive_with_button("sale:ok:")
    await clerk.press_data(sale, _button(sale, "sale:ok:"))
    await clerk.receive_containing("/void")
    clock.advance(datetime(day.year, day.month, day.day, 11, tzinfo=madrid) - clock.now())
    await jobs.run("birthdays")
    await fede.receive_containing("🎂")
    await jobs.run("surveys")
    carla, eva = api.user(10, "Carla", language), api.user(12, "Eva", language)
    satisfaction = await fede.receive_with_button("survey:")
    nps = await carla.receive_with_button("survey:")
    late = await eva.receive_with_button("survey:")
    await fede.press_data(satisfaction, _button(satisfaction, "survey:")[:-1] + "1")  # detractor
    await fede.receive_with_button("survey:")  # what is the main reason?
    await fede.send("Too sour")
    await fede.receive("sendMessage")  # thanks for the reason
    await fede.press_data(satisfaction, _button(satisfaction, "survey:")[:-1] + "2")  # answered
    await carla.press_data(nps, _button(nps, "survey:")[:-1] + "10")
    skip = await carla.receive_with_button("survey:")
    await carla.press_data(skip, _button(skip, "survey:"))  # the skip button
    await carla.press_data(nps, "survey:99999:3")  # unknown
    clock.advance(timedelta(days=8))
    await eva.press_data(late, _button(late, "survey:"))  # expired
    await owner.send("/churn")
    listing = await owner.receive_with_button("winback:")
    await owner.press_data(listing, _button(listing, "winback:"))
    await owner.press_data(listing, _button(listing, "winback:"))  # already sent
    await owner.press_data(listing, "winback:99999")  # nobody flagged
    mark = len(api.calls)
    await owner.send("/help")
    await api.wait_for(lambda call: call.chat_id == 900 and "/coupon" in call.text, start=mark)


async def _automations_tour(
    api: FakeTelegram, clock: FakeClock, services: Services, language: str
) -> None:
    """Points expiry (a month, in this tour's program), nudges, win-back, fraud alerts and the
    owner's digest."""
    jobs = services.jobs
    madrid = ZoneInfo("Europe/Madrid")
    fede_member = await services.membership.member(Identity("telegram", "13"))
    assert fede_member is not None
    for _ in range(5):  # five purchases in a day: the owner is alerted
        await sell(services.sales, fede_member)
    clock.advance(timedelta(days=1))
    await jobs.run("digest")
    fede = api.user(13, "Fede", language)
    await fede.send("/balance")  # with his next expiry
    expiring = re.search(r"⏳.* (\d\d/\d\d/\d{4})", (await fede.receive_containing("⏳")).text)
    assert expiring is not None
    day = datetime.strptime(expiring[1], "%d/%m/%Y").replace(hour=10, tzinfo=madrid)
    clock.advance(day - timedelta(days=2) - clock.now())
    await jobs.run("nudges")  # Fede has been away for weeks, close to a reward
    await jobs.run("expiry")  # Fede's last chance
    clock.advance(timedelta(days=2))
    await jobs.run("expiry")  # and his points expire
    clock.advance(timedelta(days=70))
    await jobs.run("winback")
    owner = api.user(900, "Owner", language)
    await owner.send("/churn")  # Fede's unhappy answer opened a follow-up
    follow_ups = await owner.receive_with_button("followup:")
    await owner.press_data(follow_ups, _button(follow_ups, "followup:"))
    await owner.press_data(follow_ups, _button(follow_ups, "followup:"))  # closed already
    await owner.press_data(follow_ups, "followup:99999:called")
    # Carla, happy and a regular by now, is asked the NPS question again and promotes us.
    carla = api.user(10, "Carla", language)
    carla_member = await services.membership.member(Identity("telegram", "10"))
    assert carla_member is not None
    for _ in range(4):
        await sell(services.sales, carla_member)
    clock.advance(timedelta(days=10))
    await jobs.run("surveys")
    nps = await carla.receive_with_button("survey:")
    await carla.press_data(nps, _button(nps, "survey:")[:-1] + "10")
    await carla.receive_with_button("survey:")  # the reason, which she skips
    await jobs.deliver()  # the apostle is asked to share her link
    await carla.receive_containing("start=ref_")
    await _campaigns_tour(owner, jobs)


async def _campaigns_tour(owner: ChatUser, jobs: Jobs) -> None:
    await owner.send("/campaigns")  # none yet
    await owner.receive_containing("/broadcast")
    await owner.send("/broadcast")
    await owner.receive_containing("📣")
    await owner.send("   ")  # empty
    await owner.send("x" * 1001)  # too long
    await owner.send_photo(b"\xff\xd8" * (3 * 1024 * 1024), "Grande")  # over WhatsApp's 5 MB
    await owner.send("Vino nuevo")
    audiences = await owner.receive_with_button("campaign:")
    await owner.press_data(audiences, _ending(audiences, ":audience:birthday"))  # nobody
    coupons = await owner.receive_with_button("campaign:")
    await owner.press_data(coupons, _ending(coupons, ":coupon:0"))
    await owner.receive_containing("/broadcast")
    for decision in ("cancel", "send"):
        await owner.send("/broadcast")
        await owner.receive_containing("📣")
        await owner.send("Vino nuevo")
        audiences = await owner.receive_with_button("campaign:")
        await owner.press_data(audiences, _ending(audiences, ":audience:everyone"))
        coupons = await owner.receive_with_button("campaign:")
        await owner.press_data(coupons, _ending(coupons, ":coupon:10"))
        preview = await owner.receive_with_button("campaign:")
        await owner.press_data(preview, _ending(preview, f":{decision}:"))
        await owner.receive_containing("/campaigns" if decision == "send" else "")
    await owner.press_data(preview, _ending(preview, ":send:"))  # sent already
    await owner.press_data(preview, "campaign:99999:send:")
    await owner.send("/broadcast")  # with a photo: the owner sees it as customers will
    await owner.receive_containing("📣")
    await owner.send_photo(qr_png("https://example.com/vino"), "Vino nuevo, con foto")
    audiences = await owner.receive_with_button("campaign:")
    await owner.press_data(audiences, _ending(audiences, ":audience:everyone"))
    coupons = await owner.receive_with_button("campaign:")
    await owner.press_data(coupons, _ending(coupons, ":coupon:0"))
    assert (await owner.receive("sendPhoto")).method == "sendPhoto"
    preview = await owner.receive_with_button("campaign:")
    await owner.press_data(preview, _ending(preview, ":cancel:"))
    await jobs.deliver()
    await owner.send("/campaigns")
    await owner.receive_containing("14")


def _ending(call: ApiCall, suffix: str) -> str:
    return next(
        str(b["callback_data"])
        for b in call.inline_buttons()
        if str(b["callback_data"]).endswith(suffix)
    )
