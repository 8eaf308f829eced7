"""Program health for the owner: the period's figures against the period before, and trends.

Every count comes from SQL (bot/storage/insights.py); this module holds the definitions:
NPS = % promoters (9-10) - % detractors (0-6); retention = share of the previous period's
buyers who bought again; repeat-purchase rate = share of the period's buyers who had bought
before; redemption rate = points redeemed / points earned; customer lifetime value = average
ticket x visits a year x expected years.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from bot.clock import Clock
from bot.domain.churn import map_lines
from bot.domain.parsing import InvalidInput
from bot.program import Program
from bot.storage.database import Database
from bot.storage.flags import FlagRepository
from bot.storage.follow_ups import FollowUps
from bot.storage.insights import (
    AutomationCounts,
    InsightsRepository,
    PeriodCounts,
    ProgramState,
)

DEFAULT_DAYS = 30
LONGEST_DAYS = 3650
YEAR = timedelta(days=365)


def parse_days(text: str) -> int:
    """The period of /stats: a whole number of days, 1 to 3650 ("90" or "90d")."""
    candidate = text.strip().lower().removesuffix("d")
    if not candidate.isascii() or not candidate.isdigit():
        raise InvalidInput("period_unreadable")
    days = int(candidate)
    if not 1 <= days <= LONGEST_DAYS:
        raise InvalidInput("period_out_of_range")
    return days


def ratio(part: int, whole: int) -> float | None:
    """part / whole, or None when there is nothing to divide by (shown as "no data")."""
    return part / whole if whole else None


def rounded_division(numerator: int, denominator: int) -> int:
    """Integer division rounded half up, for money in minor units."""
    return int((Decimal(numerator) / Decimal(denominator)).to_integral_value(ROUND_HALF_UP))


@dataclass(frozen=True)
class PeriodFigures:
    counts: PeriodCounts

    @property
    def average_ticket_minor(self) -> int | None:
        sales = self.counts.sales
        return rounded_division(self.counts.revenue_minor, sales) if sales else None

    @property
    def visits_per_active(self) -> float | None:
        return ratio(self.counts.sales, self.counts.active_customers)

    @property
    def retention(self) -> float | None:
        return ratio(self.counts.previous_buyers_kept, self.counts.previous_buyers)

    @property
    def repeat_rate(self) -> float | None:
        return ratio(self.counts.returning_buyers, self.counts.buyers)

    @property
    def redemption_rate(self) -> float | None:
        return ratio(self.counts.points_redeemed, max(self.counts.points_earned, 0))

    @property
    def nps_answers(self) -> int:
        return self.counts.promoters + self.counts.passives + self.counts.detractors

    @property
    def nps(self) -> int | None:
        return net_promoter_score(self.counts.promoters, self.counts.detractors, self.nps_answers)

    @property
    def nps_response_rate(self) -> float | None:
        return ratio(self.counts.nps_sent_answered, self.counts.nps_sent)

    @property
    def satisfaction_average(self) -> float | None:
        return ratio(self.counts.satisfaction_total, self.counts.satisfaction_answers)


def net_promoter_score(promoters: int, detractors: int, answers: int) -> int | None:
    if not answers:
        return None
    score = Decimal(100 * (promoters - detractors)) / Decimal(answers)
    return int(score.to_integral_value(ROUND_HALF_UP))


@dataclass(frozen=True)
class Lifetime:
    """A simple customer lifetime value estimate, with the inputs that make it."""

    average_ticket_minor: int | None
    visits_per_year: float | None
    expected_years: Decimal

    @property
    def value_minor(self) -> int | None:
        if self.average_ticket_minor is None or self.visits_per_year is None:
            return None
        value = (
            Decimal(self.average_ticket_minor)
            * Decimal(str(self.visits_per_year))
            * self.expected_years
        )
        return int(value.to_integral_value(ROUND_HALF_UP))


@dataclass(frozen=True)
class Report:
    days: int
    start: datetime
    end: datetime
    current: PeriodFigures
    previous: PeriodFigures
    standing: ProgramState
    flags: dict[str, int]
    quadrants: dict[str, int]
    lifetime: Lifetime
    active_days: int
    automations: AutomationCounts
    winback_revenue_days: int
    map_actions: int  # offers after an answer, and follow-ups closed, in the period
    moved_quadrant: int  # customers who stand elsewhere on the map now than at the action


@dataclass(frozen=True)
class WeekPoint:
    starts: date  # the local day the week starts
    sales: int
    buyers: int


@dataclass(frozen=True)
class MonthPoint:
    month: str  # YYYY-MM
    nps: int | None
    answers: int


@dataclass(frozen=True)
class Trends:
    """The charts' series; the quadrant map is drawn from the report's own counts."""

    weeks: list[WeekPoint]
    months: list[MonthPoint]


@dataclass(frozen=True)
class _Now:
    """The programme as it stands, its flags and map, and what the automations did."""

    standing: ProgramState
    flags: dict[str, int]
    quadrants: dict[str, int]
    automations: AutomationCounts
    actions: list[tuple[int, str]]  # map actions in the period: (customer, quadrant then)
    placed: dict[int, str]  # where those customers stand now


class InsightsService:
    """Reads through its own read-only connection, so a long report never holds up the counter."""

    def __init__(self, reader: Database, clock: Clock, program: Program, zone: ZoneInfo) -> None:
        self._db = reader
        self._clock = clock
        self._program = program
        self._zone = zone
        self._lines = map_lines(program)

    async def report(self, days: int = DEFAULT_DAYS) -> Report:
        rules = self._program.insights
        end = self._clock.now()
        start = end - timedelta(days=days)
        previous_start = start - timedelta(days=days)
        active = timedelta(days=rules.active_days)
        # Three reads at once: on PostgreSQL each takes a pool connection of its own and the
        # server works on them side by side (their snapshots milliseconds apart); SQLite's one
        # reader takes them in turn. (Three SQLite readers made the numbers twice as fast
        # alone, but /stats slower end to end beside the charts' side process, and cost 8 MB.)
        current, previous, now = await asyncio.gather(
            self._period(start, end, previous_start, end - active),
            self._period(
                previous_start, start, previous_start - timedelta(days=days), start - active
            ),
            self._now(start, end),
        )
        standing, actions = now.standing, now.actions
        lifetime = Lifetime(
            average_ticket_minor=(
                rounded_division(standing.year_revenue_minor, standing.year_sales)
                if standing.year_sales
                else None
            ),
            visits_per_year=ratio(standing.year_sales, standing.year_buyers),
            expected_years=rules.clv_expected_years,
        )
        return Report(
            days=days,
            start=start,
            end=end,
            current=PeriodFigures(current),
            previous=PeriodFigures(previous),
            standing=standing,
            flags=now.flags,
            quadrants=now.quadrants,
            lifetime=lifetime,
            active_days=rules.active_days,
            automations=now.automations,
            winback_revenue_days=self._program.churn.winback_revenue_days,
            map_actions=len(actions),
            moved_quadrant=len(
                {customer for customer, then in actions if now.placed.get(customer, then) != then}
            ),
        )

    async def _period(
        self, start: datetime, end: datetime, previous_start: datetime, active_from: datetime
    ) -> PeriodCounts:
        async with self._db.reading() as tx:
            return await InsightsRepository(tx).period(start, end, previous_start, active_from)

    async def _now(self, start: datetime, end: datetime) -> _Now:
        async with self._db.reading() as tx:
            insights, flags = InsightsRepository(tx), FlagRepository(tx)
            actions = await FollowUps(tx).actions_since(start, end)
            return _Now(
                standing=await insights.standing(end - YEAR, end),
                flags=await flags.open_counts(),
                quadrants=await flags.quadrant_counts(end, self._lines),
                automations=await insights.automations(
                    start, end, self._program.churn.winback_revenue_days
                ),
                actions=actions,
                placed=await flags.quadrants(end, self._lines) if actions else {},
            )

    async def trends(self) -> Trends:
        rules = self._program.insights
        end = self._clock.now()
        months = _local_months(end, self._zone, rules.chart_months)
        async with self._db.reading() as tx:
            insights = InsightsRepository(tx)
            weekly = {row.weeks_ago: row for row in await insights.weekly(end, rules.chart_weeks)}
            monthly = await insights.nps_monthly(months)
        weeks = []
        for weeks_ago in range(rules.chart_weeks - 1, -1, -1):
            row = weekly.get(weeks_ago)
            starts = (end - timedelta(weeks=weeks_ago + 1)).astimezone(self._zone).date()
            weeks.append(WeekPoint(starts, row.sales if row else 0, row.buyers if row else 0))
        answered = {row.month: row for row in monthly}
        points = []
        for label, _, _ in months:
            month = answered.get(label)
            points.append(
                MonthPoint(label, None, 0)
                if month is None
                else MonthPoint(
                    label,
                    net_promoter_score(month.promoters, month.detractors, month.answers),
                    month.answers,
                )
            )
        return Trends(weeks=weeks, months=points)


def _local_months(
    end: datetime, zone: ZoneInfo, count: int
) -> list[tuple[str, datetime, datetime]]:
    """The last `count` calendar months of the shop's time zone, up to `end`, oldest first:
    ("YYYY-MM", first instant, the next month's first instant or `end` for this month)."""
    local = end.astimezone(zone)
    this_month = local.year * 12 + local.month - 1
    firsts = [
        datetime(index // 12, index % 12 + 1, 1, tzinfo=zone)
        for index in range(this_month - count + 1, this_month + 1)
    ]
    ends = [*firsts[1:], end]
    return [
        (first.strftime("%Y-%m"), first, until) for first, until in zip(firsts, ends, strict=True)
    ]


def stats_charts(
    trends: Trends, quadrants: dict[str, int], words: dict[str, str]
) -> list[tuple[str, bytes | None]]:
    """The three charts of /stats as PNGs (None: not enough data), each with its title's key.
    Slow: the bot runs it in its side process (bot.side_process)."""
    # matplotlib costs tens of megabytes and most of a second to import: the bot never does.
    from bot import charts

    return [
        ("weekly_title", charts.weekly_sales(trends.weeks, words)),
        ("nps_title", charts.nps_by_month(trends.months, words)),
        ("map_title", charts.quadrant_map(quadrants, words)),
    ]
