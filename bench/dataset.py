"""A large shop's database for the benchmarks, written straight into SQLite after the bot's own
migrations (building a million sales through the domain would take hours).

Shapes follow a real shop loosely: customers joined over two years, each with their own purchase
rhythm, 1% of sales voided, a ledger row per sale and per void, some rewards redeemed, a share
of customers who answered NPS and satisfaction surveys, and some referrals.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.storage.database import to_sql_time
from bot.storage.sqlite import SqliteDatabase

HISTORY = timedelta(days=730)
FIRST_CLERK_ID = 20_000_000  # staff members' Telegram ids, for the counter benchmarks


def clerk_user_id(number: int) -> int:
    return FIRST_CLERK_ID + number


def customer_user_id(number: int) -> int:
    return 10_000_000 + number


def member_code(number: int) -> str:
    return f"M{number:07d}"


def build(
    path: Path, customers: int, sales: int, now: datetime, seed: int = 7, clerks: int = 1
) -> None:
    asyncio.run(_migrate(path))
    random_ = random.Random(seed)
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = OFF")
    start = now - HISTORY
    with connection:
        joined = [
            start + timedelta(seconds=random_.randrange(int(HISTORY.total_seconds())))
            for _ in range(customers)
        ]
        connection.executemany(
            "INSERT INTO customers (id, channel, channel_user_id, member_code, referral_code,"
            " name, phone, birthday_day, birthday_month, birthday_year, language,"
            " promotions_consent, surveys_enabled, referred_by, created_at)"
            " VALUES (?, 'telegram', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
            (
                (
                    number,
                    str(customer_user_id(number)),
                    member_code(number),
                    f"R{number:07d}",
                    f"Cliente {number}",
                    f"+346{number:08d}",
                    random_.randint(1, 28),
                    random_.randint(1, 12),
                    random_.choice((None, random_.randint(1950, 2005))),
                    random_.choice(("es", "es", "en")),
                    int(random_.random() < 0.7),
                    random_.randint(1, number - 1)
                    if number > 1 and random_.random() < 0.1
                    else None,
                    to_sql_time(joined[number - 1]),
                )
                for number in range(1, customers + 1)
            ),
        )
        connection.execute(
            "INSERT INTO customer_identities (channel, channel_user_id, customer_id, added_at)"
            " SELECT channel, channel_user_id, id, created_at FROM customers"
        )
        connection.executemany(
            "INSERT INTO staff (channel, channel_user_id, name, language, added_by, added_at)"
            " VALUES ('telegram', ?, ?, 'es', 'owner:telegram:1', ?)",
            (
                (str(clerk_user_id(number)), f"Clerk {number}", to_sql_time(start))
                for number in range(1, clerks + 1)
            ),
        )
        sale_rows, ledger_rows = _sales(random_, joined, sales, now)
        connection.executemany(
            "INSERT INTO sales (id, customer_id, recorded_by, amount_minor, items, points,"
            " idempotency_key, created_at, voided_at, voided_by, void_reason)"
            " VALUES (?, ?, 'staff:telegram:2', ?, ?, ?, ?, ?, ?, ?, ?)",
            sale_rows,
        )
        connection.executemany(
            "INSERT INTO points_ledger (customer_id, delta, reason, actor, idempotency_key,"
            " created_at) VALUES (?, ?, ?, 'staff:telegram:2', ?, ?)",
            ledger_rows,
        )
        connection.executemany(
            "INSERT INTO surveys (customer_id, kind, created_at, expires_at, score, answered_at,"
            " reason_state) VALUES (?, ?, ?, ?, ?, ?, 'skipped')",
            _surveys(random_, joined, now),
        )
        requested = (
            (
                random_.randint(1, customers),
                to_sql_time(now - timedelta(days=random_.random() * 700)),
            )
            for _ in range(customers // 5)
        )
        connection.executemany(
            "INSERT INTO invite_requests (customer_id, day, requested_at, times)"
            " VALUES (?, substr(?2, 1, 10), ?2, 1) ON CONFLICT DO UPDATE SET times = times + 1",
            requested,
        )
    connection.execute("PRAGMA optimize")
    connection.close()


async def _migrate(path: Path) -> None:
    database = await SqliteDatabase.open(path)
    await database.close()


def _sales(
    random_: random.Random, joined: list[datetime], count: int, now: datetime
) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """Sales and their ledger rows with ids in the order of their times, as a shop writes
    them: expiry takes spending from the earliest earnings by ledger id."""
    customers = len(joined)
    # Some customers buy much more often than others: weight by a long-tailed rhythm.
    weights = [random_.paretovariate(1.5) for _ in range(customers)]
    chosen = random_.choices(range(1, customers + 1), weights=weights, k=count)
    drawn = []
    for customer_id in chosen:
        since = joined[customer_id - 1]
        span = max((now - since).total_seconds() - 4 * 86400, 1)  # none in the last days
        at = to_sql_time(since + timedelta(seconds=random_.random() * span))
        drawn.append((at, customer_id, random_.randint(1, 6), random_.random(), random_.random()))
    sale_rows: list[tuple[object, ...]] = []
    ledger_rows: list[tuple[object, ...]] = []
    for sale_id, (at, customer_id, items, void_draw, reward_draw) in enumerate(
        sorted(drawn), start=1
    ):
        voided = void_draw < 0.01
        sale_rows.append(
            (
                sale_id,
                customer_id,
                items * random_.choice((650, 800, 1250)),
                items,
                items,
                f"bench:{sale_id}",
                at,
                at if voided else None,
                "owner:telegram:1" if voided else None,
                "bench" if voided else None,
            )
        )
        ledger_rows.append((customer_id, items, "purchase", f"sale:{sale_id}", at))
        if voided:
            ledger_rows.append((customer_id, -items, "reversal", f"void:{sale_id}", at))
        elif reward_draw < 0.05:
            ledger_rows.append((customer_id, -items, "reward", f"redeem:bench{sale_id}", at))
    return sale_rows, ledger_rows


def _surveys(
    random_: random.Random, joined: list[datetime], now: datetime
) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for customer_id, since in enumerate(joined, start=1):
        if random_.random() > 0.4:
            continue
        for kind, scores in (("nps", range(0, 11)), ("satisfaction", range(1, 6))):
            sent = since + (now - since) * random_.random()
            answered = sent + timedelta(hours=random_.randint(1, 48))
            rows.append(
                (
                    customer_id,
                    kind,
                    to_sql_time(sent),
                    to_sql_time(sent + timedelta(days=7)),
                    random_.choice(scores) if answered < now else None,
                    to_sql_time(answered) if answered < now else None,
                )
            )
    return rows


def fixed_now() -> datetime:
    """The benchmarks' "now": today at 11:00 in Madrid (inside the survey hours), in UTC."""
    madrid = datetime.now(ZoneInfo("Europe/Madrid"))
    return madrid.replace(hour=11, minute=0, second=0, microsecond=0).astimezone(UTC)
