"""Rows for the owner's exports, streamed: a million ledger rows never sit in memory at once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from bot.domain.models import Birthday
from bot.storage.customers import birthday_of
from bot.storage.database import Transaction, from_sql_time, to_sql_time
from bot.storage.dialect import Dialect
from bot.storage.flags import QUADRANTS_SQL, MapLines


@dataclass(frozen=True)
class CustomerRow:
    member_code: str
    name: str | None
    phone: str | None
    birthday: Birthday | None
    language: str
    joined_at: datetime
    promotions_consent: bool
    surveys_enabled: bool
    reachable: bool
    referred_by: str | None  # the referrer's member code
    qualifying_points: int
    balance: int
    visits: int
    spend_minor: int
    last_purchase_at: datetime | None
    flags: list[str]
    quadrant: str | None
    erased_at: datetime | None


@dataclass(frozen=True)
class LedgerRow:
    id: int
    at: datetime
    member_code: str
    points: int
    reason: str
    actor: str
    note: str | None
    reward_key: str | None = None  # the reward a redemption paid for


# The year's purchase points read from the slice of the covering index (audiences.py says why
# "+customer_id"); CAST gives the result the integer type again, so that SQLite indexes it for
# the join instead of scanning it once per customer.
def _customers(sql: Dialect) -> str:
    return f"""
    WITH qualifying AS (
        SELECT CAST(+customer_id AS BIGINT) AS customer_id, SUM(delta) AS points
        FROM points_ledger
        WHERE reason IN ('purchase', 'reversal') AND created_at >= :year_start
        GROUP BY +customer_id),
    open_flags AS (
        SELECT customer_id, {sql.joined("flag", "|")} AS flags
        FROM (SELECT customer_id, flag FROM risk_flags WHERE cleared_at IS NULL
              ORDER BY customer_id, flag) AS open_ones
        GROUP BY customer_id),
    placed AS ({QUADRANTS_SQL})
    SELECT c.*, r.member_code AS referrer_code,
           COALESCE(q.points, 0) AS qualifying, f.flags, p.quadrant
    FROM customers c
    LEFT JOIN customers r ON r.id = c.referred_by
    LEFT JOIN qualifying q ON q.customer_id = c.id
    LEFT JOIN open_flags f ON f.customer_id = c.id
    LEFT JOIN placed p ON p.customer_id = c.id
    ORDER BY c.id
"""


def _time(text: str | None) -> datetime | None:
    return from_sql_time(text) if text else None


class ExportRepository:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def customers(
        self, now: datetime, year_start: datetime, lines: MapLines
    ) -> AsyncIterator[CustomerRow]:
        parameters = {**lines.parameters(now, None), "year_start": to_sql_time(year_start)}
        async for row in self._tx.stream(_customers(self._tx.dialect), parameters):
            yield CustomerRow(
                member_code=row["member_code"],
                name=row["name"],
                phone=row["phone"],
                birthday=birthday_of(row),
                language=row["language"],
                joined_at=from_sql_time(row["created_at"]),
                promotions_consent=bool(row["promotions_consent"]),
                surveys_enabled=bool(row["surveys_enabled"]),
                reachable=row["unreachable_at"] is None and row["erased_at"] is None,
                referred_by=row["referrer_code"],
                qualifying_points=row["qualifying"],
                balance=row["balance"],
                visits=row["visits"],
                spend_minor=row["spend_minor"],
                last_purchase_at=_time(row["last_purchase_at"]),
                flags=row["flags"].split("|") if row["flags"] else [],
                quadrant=row["quadrant"],
                erased_at=_time(row["erased_at"]),
            )

    async def ledger(self) -> AsyncIterator[LedgerRow]:
        """Every ledger row in order, with the customer's member code (looked up here: a join
        per row would cost more than the whole scan) and the reward a redemption paid for."""
        codes: list[str] = []  # by customer id: ids are handed out in order, none deleted
        async for row in self._tx.stream("SELECT id, member_code FROM customers ORDER BY id"):
            codes.extend([""] * (row["id"] - len(codes)))
            codes.append(row["member_code"])
        async for row in self._tx.stream(
            "SELECT l.id, l.created_at, l.customer_id, l.delta, l.reason, l.actor, l.note,"
            " CASE WHEN l.idempotency_key LIKE 'redeem:%' THEN (SELECT r.reward_key"
            " FROM redemptions r WHERE r.code = substr(l.idempotency_key, 8)) END AS reward_key"
            " FROM points_ledger l ORDER BY l.id"
        ):
            yield LedgerRow(
                id=row["id"],
                at=from_sql_time(row["created_at"]),
                member_code=codes[row["customer_id"]],
                points=row["delta"],
                reason=row["reason"],
                actor=row["actor"],
                note=row["note"],
                reward_key=row["reward_key"],
            )

    async def ledger_rows(self) -> int:
        row = await self._tx.fetch_one("SELECT COUNT(*) AS n FROM points_ledger")
        return int(row["n"]) if row else 0

    async def staff_names(self) -> dict[str, str]:
        """Each member of staff's name by the id the ledger names them with (channel:user),
        those removed included; the latest name where someone was hired twice."""
        rows = await self._tx.fetch_all(
            "SELECT channel || ':' || channel_user_id AS who, name FROM staff ORDER BY id"
        )
        return {row["who"]: row["name"] for row in rows}
