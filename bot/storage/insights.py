"""The owner's figures, counted and summed in SQL: one query a group, never a loop over rows.

Periods are half-open, [start, end), in UTC text as stored, so that consecutive periods never
count a row twice. Ratios and scores are left to the domain; this layer only counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.domain.scores import CUT_OFFS, NPS_DETRACTOR_UP_TO, NPS_PROMOTER_FROM
from bot.storage.database import Transaction, to_sql_time
from bot.storage.dialect import Dialect

_VALID_SALE = "voided_at IS NULL"
_IN_PERIOD = "created_at >= :start AND created_at < :end"


@dataclass(frozen=True)
class PeriodCounts:
    """What happened in one period; the domain turns these into rates and scores."""

    new_customers: int
    sales: int
    revenue_minor: int
    buyers: int
    returning_buyers: int  # buyers who had bought before the period
    active_customers: int  # bought in the active window that ends with the period
    previous_buyers: int  # bought in the period before this one ...
    previous_buyers_kept: int  # ... and again in this one
    points_earned: int
    points_redeemed: int
    links_shared: int
    friends_joined: int
    friends_first_purchase: int
    nps_sent: int
    nps_sent_answered: int
    promoters: int
    passives: int
    detractors: int
    satisfaction_answers: int
    satisfaction_total: int


@dataclass(frozen=True)
class AutomationCounts:
    """What the program did on its own in a period, and what it brought."""

    winbacks_sent: int
    winbacks_redeemed: int
    winback_revenue_minor: int  # spent by those who redeemed one, in the days after
    nudges_sent: int
    offers_capped: int
    points_expired: int


# The sale a coupon is used on is typed just before or just after its code is confirmed.
# Expiry rows are found by their keys ("expiry:<customer>:<day>", a range of the unique
# index), not by a scan of the whole ledger.
def _automations(sql: Dialect) -> str:
    return f"""
    SELECT
      (SELECT COUNT(*) FROM coupons WHERE kind = 'winback'
         AND created_at >= :start AND created_at < :end) AS winbacks_sent,
      (SELECT COUNT(*) FROM coupons WHERE kind = 'winback'
         AND redeemed_at >= :start AND redeemed_at < :end) AS winbacks_redeemed,
      (SELECT COALESCE(SUM(s.amount_minor), 0) FROM coupons k JOIN sales s
         ON s.customer_id = k.customer_id AND s.voided_at IS NULL
         AND {sql.days("s.created_at")} >= {sql.days("k.redeemed_at")} - 1.0 / 24
         AND {sql.days("s.created_at")} < {sql.days("k.redeemed_at")} + :revenue_days
       WHERE k.kind = 'winback' AND k.redeemed_at >= :start AND k.redeemed_at < :end)
         AS winback_revenue_minor,
      (SELECT COUNT(*) FROM promotions WHERE kind = 'nudge' AND outcome = 'queued'
         AND decided_at >= :start AND decided_at < :end) AS nudges_sent,
      (SELECT COUNT(*) FROM promotions WHERE outcome = 'capped'
         AND decided_at >= :start AND decided_at < :end) AS offers_capped,
      (SELECT COALESCE(-SUM(delta), 0) FROM points_ledger
         WHERE idempotency_key >= 'expiry:' AND idempotency_key < 'expiry;'
         AND created_at >= :start AND created_at < :end) AS points_expired
"""


@dataclass(frozen=True)
class DayCounts:
    """One day for the owner's morning digest, with the usual day of the weeks before."""

    sales: int
    revenue_minor: int
    usual_sales: int  # a day's average over the weeks before, rounded
    usual_revenue_minor: int
    new_members: int
    answers: int
    promoters: int
    detractors: int
    flags_raised: int
    alerts: int


_DAY = """
    SELECT
      (SELECT COUNT(*) FROM sales WHERE voided_at IS NULL AND created_at >= :start
         AND created_at < :end) AS sales,
      (SELECT COALESCE(SUM(amount_minor), 0) FROM sales WHERE voided_at IS NULL
         AND created_at >= :start AND created_at < :end) AS revenue_minor,
      (SELECT ROUND(COUNT(*) * 1.0 / :usual_days) FROM sales WHERE voided_at IS NULL
         AND created_at >= :usual_start AND created_at < :start) AS usual_sales,
      (SELECT ROUND(COALESCE(SUM(amount_minor), 0) * 1.0 / :usual_days) FROM sales
         WHERE voided_at IS NULL AND created_at >= :usual_start AND created_at < :start)
         AS usual_revenue_minor,
      (SELECT COUNT(*) FROM customers WHERE created_at >= :start AND created_at < :end)
         AS new_members,
      (SELECT COUNT(*) FROM surveys WHERE answered_at >= :start AND answered_at < :end)
         AS answers,
      (SELECT COUNT(*) FROM surveys WHERE kind = 'nps' AND score >= :nps_promoter_from
         AND answered_at >= :start AND answered_at < :end) AS promoters,
      (SELECT COUNT(*) FROM surveys WHERE answered_at >= :start AND answered_at < :end
         AND ((kind = 'nps' AND score <= :nps_detractor_up_to)
              OR (kind = 'satisfaction' AND score <= :satisfaction_detractor_up_to)))
         AS detractors,
      (SELECT COUNT(*) FROM risk_flags WHERE raised_at >= :start AND raised_at < :end)
         AS flags_raised,
      (SELECT COUNT(*) FROM audit_log WHERE at >= :start AND at < :end
         AND action = 'fraud_alert') AS alerts
"""


@dataclass(frozen=True)
class ProgramState:
    """The programme as it stands now."""

    customers: int
    reachable: int
    consenting: int
    outstanding_points: int
    year_sales: int
    year_revenue_minor: int
    year_buyers: int


@dataclass(frozen=True)
class WeekRow:
    weeks_ago: int
    sales: int
    buyers: int


@dataclass(frozen=True)
class MonthRow:
    month: str  # YYYY-MM
    promoters: int
    detractors: int
    answers: int


class InsightsRepository:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def period(
        self, start: datetime, end: datetime, previous_start: datetime, active_from: datetime
    ) -> PeriodCounts:
        window = {
            "start": to_sql_time(start),
            "end": to_sql_time(end),
            "previous_start": to_sql_time(previous_start),
            "active_from": to_sql_time(active_from),
            **CUT_OFFS,
        }
        # One pass over the sales from the earliest window asked, grouped by customer: the
        # period's sales and buyers, who was active, who bought in the period before and who
        # of those came back (three passes over the same months before).
        sales = await self._one(
            "SELECT COALESCE(SUM(sales), 0) AS sales, COALESCE(SUM(revenue), 0) AS revenue,"
            " COUNT(*) FILTER (WHERE sales > 0) AS buyers,"
            " COUNT(*) FILTER (WHERE active = 1) AS active,"
            " COUNT(*) FILTER (WHERE before = 1) AS before,"
            " COUNT(*) FILTER (WHERE before = 1 AND sales > 0) AS kept FROM ("
            "SELECT customer_id,"
            " SUM(CASE WHEN created_at >= :start THEN 1 ELSE 0 END) AS sales,"
            " SUM(CASE WHEN created_at >= :start THEN amount_minor ELSE 0 END) AS revenue,"
            " MAX(CASE WHEN created_at >= :active_from THEN 1 ELSE 0 END) AS active,"
            " MAX(CASE WHEN created_at >= :previous_start AND created_at < :start THEN 1"
            " ELSE 0 END) AS before"
            f" FROM sales WHERE {_VALID_SALE} AND created_at >= :earliest AND created_at < :end"
            " GROUP BY customer_id) AS bought",
            {**window, "earliest": to_sql_time(min(previous_start, active_from))},
        )
        # A buyer of the period bought before it, or made their first purchase in it: the
        # customers' rows keep the first purchase (migration 0024), no pass over the sales.
        firsts = await self._one(
            "SELECT COUNT(*) AS n, COUNT(*) FILTER (WHERE referred_by IS NOT NULL) AS friends"
            " FROM customers WHERE first_purchase_at >= :start AND first_purchase_at < :end",
            window,
        )
        points = await self._one(
            "SELECT COALESCE(SUM(CASE WHEN reason NOT IN ('reward', 'expiry') THEN delta END), 0)"
            " AS earned, COALESCE(-SUM(CASE WHEN reason = 'reward' THEN delta END), 0) AS redeemed"
            f" FROM points_ledger WHERE {_IN_PERIOD}",
            window,
        )
        people = await self._one(
            "SELECT COUNT(*) AS new, COUNT(referred_by) AS referred"
            f" FROM customers WHERE {_IN_PERIOD}",
            window,
        )
        shared = await self._one(
            "SELECT COUNT(DISTINCT customer_id) AS n FROM invite_requests"
            " WHERE requested_at >= :start AND requested_at < :end",
            window,
        )
        nps = await self._one(
            "SELECT COUNT(*) FILTER (WHERE score >= :nps_promoter_from) AS promoters,"
            " COUNT(*) FILTER (WHERE score > :nps_detractor_up_to AND score < :nps_promoter_from)"
            " AS passives, COUNT(*) FILTER (WHERE score <= :nps_detractor_up_to) AS detractors"
            " FROM surveys"
            " WHERE kind = 'nps' AND answered_at >= :start AND answered_at < :end",
            window,
        )
        nps_sent = await self._one(
            "SELECT COUNT(*) AS sent, COUNT(answered_at) AS answered FROM surveys"
            f" WHERE kind = 'nps' AND {_IN_PERIOD}",
            window,
        )
        satisfaction = await self._one(
            "SELECT COUNT(*) AS answers, COALESCE(SUM(score), 0) AS total FROM surveys"
            " WHERE kind = 'satisfaction' AND answered_at >= :start AND answered_at < :end",
            window,
        )
        return PeriodCounts(
            new_customers=people["new"],
            sales=sales["sales"],
            revenue_minor=sales["revenue"],
            buyers=sales["buyers"],
            returning_buyers=sales["buyers"] - firsts["n"],
            active_customers=sales["active"],
            previous_buyers=sales["before"],
            previous_buyers_kept=sales["kept"],
            points_earned=points["earned"],
            points_redeemed=points["redeemed"],
            links_shared=shared["n"],
            friends_joined=people["referred"],
            friends_first_purchase=firsts["friends"],
            nps_sent=nps_sent["sent"],
            nps_sent_answered=nps_sent["answered"],
            promoters=nps["promoters"],
            passives=nps["passives"],
            detractors=nps["detractors"],
            satisfaction_answers=satisfaction["answers"],
            satisfaction_total=satisfaction["total"],
        )

    async def standing(self, year_start: datetime, end: datetime) -> ProgramState:
        window = {"start": to_sql_time(year_start), "end": to_sql_time(end)}
        # Points outstanding: the balances the customers' rows keep (migration 0023).
        people = await self._one(
            "SELECT COUNT(*) AS customers,"
            " COUNT(*) FILTER (WHERE unreachable_at IS NULL) AS reachable,"
            " COUNT(*) FILTER (WHERE unreachable_at IS NULL AND promotions_consent = 1)"
            " AS consenting, COALESCE(SUM(balance), 0) AS points"
            " FROM customers WHERE erased_at IS NULL",
            {},
        )
        # Buyers since the year's start, from the last purchase each customer row keeps: the
        # year's sales are only counted and summed, not told apart by customer.
        year = await self._one(
            "SELECT COUNT(*) AS sales, COALESCE(SUM(amount_minor), 0) AS revenue, (SELECT COUNT(*)"
            " FROM customers WHERE last_purchase_at >= :start) AS buyers"
            f" FROM sales WHERE {_VALID_SALE} AND {_IN_PERIOD}",
            window,
        )
        return ProgramState(
            customers=people["customers"],
            reachable=people["reachable"],
            consenting=people["consenting"],
            outstanding_points=people["points"],
            year_sales=year["sales"],
            year_revenue_minor=year["revenue"],
            year_buyers=year["buyers"],
        )

    async def automations(
        self, start: datetime, end: datetime, revenue_days: int
    ) -> AutomationCounts:
        counts = await self._one(
            _automations(self._tx.dialect),
            {"start": to_sql_time(start), "end": to_sql_time(end), "revenue_days": revenue_days},
        )
        return AutomationCounts(**counts)

    async def day(self, start: datetime, end: datetime, usual_days: int) -> DayCounts:
        """[start, end), and the usual day over the `usual_days` days before it."""
        counts = await self._one(
            _DAY,
            {
                "start": to_sql_time(start),
                "end": to_sql_time(end),
                "usual_start": to_sql_time(start - timedelta(days=usual_days)),
                "usual_days": usual_days,
                **CUT_OFFS,
            },
        )
        return DayCounts(**counts)

    async def weekly(self, end: datetime, weeks: int) -> list[WeekRow]:
        """Sales and distinct buyers per week, counted back from `end` (0 = the last 7 days)."""
        sql = self._tx.dialect
        weeks_ago = sql.whole(f"({sql.days(':end')} - {sql.days('created_at')}) / 7")
        rows = await self._tx.fetch_all(
            f"SELECT {weeks_ago} AS weeks_ago,"
            " COUNT(*) AS sales, COUNT(DISTINCT customer_id) AS buyers"
            f" FROM sales WHERE {_VALID_SALE} AND {_IN_PERIOD}"
            " GROUP BY weeks_ago ORDER BY weeks_ago",
            {"start": to_sql_time(end - timedelta(weeks=weeks)), "end": to_sql_time(end)},
        )
        return [WeekRow(row["weeks_ago"], row["sales"], row["buyers"]) for row in rows]

    async def nps_monthly(self, months: list[tuple[str, datetime, datetime]]) -> list[MonthRow]:
        """NPS answers in each (label, from, until) month, as the caller's calendar draws
        them (the shop's, not UTC's), oldest first; months without answers are left out."""
        bounds = ", ".join("(?, ?, ?)" for _ in months)
        rows = await self._tx.fetch_all(
            f"WITH months (label, starts, ends) AS (VALUES {bounds})"
            " SELECT months.label AS month, COUNT(*) FILTER (WHERE score >= ?) AS promoters,"
            " COUNT(*) FILTER (WHERE score <= ?) AS detractors, COUNT(*) AS answers"
            " FROM months JOIN surveys ON surveys.kind = 'nps'"
            " AND surveys.answered_at >= months.starts AND surveys.answered_at < months.ends"
            " GROUP BY months.label, months.starts ORDER BY months.starts",
            [
                *(
                    value
                    for label, starts, ends in months
                    for value in (label, to_sql_time(starts), to_sql_time(ends))
                ),
                NPS_PROMOTER_FROM,
                NPS_DETRACTOR_UP_TO,
            ],
        )
        return [
            MonthRow(row["month"], row["promoters"], row["detractors"], row["answers"])
            for row in rows
        ]

    async def _one(self, sql: str, parameters: Mapping[str, object]) -> dict[str, int]:
        row = await self._tx.fetch_one(sql, parameters)
        assert row is not None  # aggregates always return one row
        return {key: int(row[key] or 0) for key in row.keys()}  # noqa: SIM118 (sqlite3.Row)
