"""Campaigns: the owner's drafts, what was sent, and the numbers /campaigns shows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.storage.database import Row, Transaction, from_sql_time, to_sql_time


@dataclass(frozen=True)
class Campaign:
    id: int
    created_by: str
    text: str | None
    audience: str | None
    coupon_percent: int | None
    status: str
    recipients: int | None
    created_at: datetime
    sent_at: datetime | None
    has_photo: bool = False


@dataclass(frozen=True)
class CampaignCounts:
    queued: int  # messages queued (consenting, within the cap)
    capped: int  # held back by the weekly cap
    delivered: int  # handed to the app (Telegram or WhatsApp accepted it)
    pending: int  # waiting: the sending pace, the quiet hours, WhatsApp's daily limit
    failed: int  # not sent, or not known to be (a crash mid-send)
    blocked: int  # the customer blocked the bot or left the app
    opted_out: int  # turned offers off in the days after
    coupons_redeemed: int
    revenue_minor: int  # what recipients spent in the days after


# Recipients are the campaign's queued promotions, keyed "campaign:<id>:<customer>" (its
# coupons too): a range of the unique index, [low, high), finds them without a scan.
_COUNTS = """
    WITH recipients AS (
        SELECT customer_id, dedupe_key FROM promotions
        WHERE dedupe_key >= :low AND dedupe_key < :high AND outcome = 'queued')
    SELECT
      (SELECT COUNT(*) FROM recipients) AS queued,
      (SELECT COUNT(*) FROM promotions WHERE dedupe_key >= :low AND dedupe_key < :high
       AND outcome = 'capped')
          AS capped,
      (SELECT COUNT(*) FROM outbox o JOIN recipients r ON r.dedupe_key = o.dedupe_key
       WHERE o.status = 'sent') AS delivered,
      (SELECT COUNT(*) FROM outbox o JOIN recipients r ON r.dedupe_key = o.dedupe_key
       WHERE o.status IN ('pending', 'sending')) AS pending,
      (SELECT COUNT(*) FROM outbox o JOIN recipients r ON r.dedupe_key = o.dedupe_key
       WHERE o.status IN ('failed', 'uncertain')) AS failed,
      (SELECT COUNT(*) FROM outbox o JOIN recipients r ON r.dedupe_key = o.dedupe_key
       WHERE o.status = 'unreachable') AS blocked,
      (SELECT COUNT(DISTINCT l.customer_id) FROM consent_log l
       JOIN recipients r ON r.customer_id = l.customer_id
       WHERE l.topic = 'promotions' AND l.granted = 0 AND l.recorded_at >= :since
       AND l.recorded_at < :until) AS opted_out,
      (SELECT COUNT(*) FROM coupons WHERE idempotency_key >= :low AND idempotency_key < :high
       AND redeemed_at IS NOT NULL) AS coupons_redeemed,
      (SELECT COALESCE(SUM(s.amount_minor), 0) FROM sales s
       JOIN recipients r ON r.customer_id = s.customer_id
       WHERE s.voided_at IS NULL AND s.created_at >= :since AND s.created_at < :until)
          AS revenue_minor
"""


# Every column but the photo, which only delivery reads (CampaignRepository.photo).
_COLUMNS = (
    "id, created_by, text, audience, coupon_percent, status, recipients, created_at, sent_at,"
    " photo IS NOT NULL AS has_photo"
)


class CampaignRepository:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def start(self, created_by: str, at: datetime) -> Campaign:
        """A new draft; the author's earlier drafts are dropped (one conversation at a time)."""
        await self._tx.execute(
            "UPDATE campaigns SET status = 'cancelled' WHERE created_by = ? AND status = 'draft'",
            (created_by,),
        )
        campaign_id = await self._tx.insert(
            "INSERT INTO campaigns (created_by, created_at) VALUES (?, ?)",
            (created_by, to_sql_time(at)),
        )
        assert campaign_id is not None
        started = await self.by_id(campaign_id)
        assert started is not None
        return started

    async def by_id(self, campaign_id: int) -> Campaign | None:
        row = await self._tx.fetch_one(
            f"SELECT {_COLUMNS} FROM campaigns WHERE id = ?", (campaign_id,)
        )
        return _campaign(row) if row else None

    async def waiting_for_text(self, created_by: str, since: datetime) -> Campaign | None:
        row = await self._tx.fetch_one(
            f"SELECT {_COLUMNS} FROM campaigns WHERE created_by = ? AND status = 'draft'"
            " AND text IS NULL AND created_at >= ? ORDER BY id DESC LIMIT 1",
            (created_by, to_sql_time(since)),
        )
        return _campaign(row) if row else None

    async def set_text(self, campaign_id: int, text: str, photo: bytes | None) -> None:
        await self._tx.execute(
            "UPDATE campaigns SET text = ?, photo = ? WHERE id = ?", (text, photo, campaign_id)
        )

    async def photo(self, campaign_id: int) -> bytes | None:
        row = await self._tx.fetch_one("SELECT photo FROM campaigns WHERE id = ?", (campaign_id,))
        return bytes(row["photo"]) if row and row["photo"] is not None else None

    async def set_audience(self, campaign_id: int, audience: str) -> None:
        await self._tx.execute(
            "UPDATE campaigns SET audience = ? WHERE id = ?", (audience, campaign_id)
        )

    async def set_coupon(self, campaign_id: int, percent: int | None) -> None:
        await self._tx.execute(
            "UPDATE campaigns SET coupon_percent = ? WHERE id = ?", (percent, campaign_id)
        )

    async def mark_sent(self, campaign_id: int, recipients: int, at: datetime) -> bool:
        """False when it was sent or cancelled already: a second tap sends nothing."""
        cursor = await self._tx.execute(
            "UPDATE campaigns SET status = 'sent', recipients = ?, sent_at = ?"
            " WHERE id = ? AND status = 'draft'",
            (recipients, to_sql_time(at), campaign_id),
        )
        return cursor.rowcount == 1

    async def cancel(self, campaign_id: int) -> bool:
        cursor = await self._tx.execute(
            "UPDATE campaigns SET status = 'cancelled' WHERE id = ? AND status = 'draft'",
            (campaign_id,),
        )
        return cursor.rowcount == 1

    async def sent(self, limit: int) -> list[Campaign]:
        rows = await self._tx.fetch_all(
            f"SELECT {_COLUMNS} FROM campaigns WHERE status = 'sent' ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [_campaign(row) for row in rows]

    async def counts(self, campaign: Campaign, until: datetime) -> CampaignCounts:
        assert campaign.sent_at is not None
        row = await self._tx.fetch_one(
            _COUNTS,
            {
                "low": f"campaign:{campaign.id}:",
                "high": f"campaign:{campaign.id};",  # ";" follows ":"
                "since": to_sql_time(campaign.sent_at),
                "until": to_sql_time(until),
            },
        )
        assert row is not None
        return CampaignCounts(**{key: int(row[key] or 0) for key in row.keys()})  # noqa: SIM118


def _campaign(row: Row) -> Campaign:
    return Campaign(
        id=row["id"],
        created_by=row["created_by"],
        text=row["text"],
        audience=row["audience"],
        coupon_percent=row["coupon_percent"],
        status=row["status"],
        recipients=row["recipients"],
        created_at=from_sql_time(row["created_at"]),
        sent_at=from_sql_time(row["sent_at"]) if row["sent_at"] else None,
        has_photo=bool(row["has_photo"]),
    )
