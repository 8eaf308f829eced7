"""The automatic win-back: a customer newly flagged lapsing or lost who accepted offers gets
the win-back coupon on their own, once per lapse (no second coupon until they buy again, the
owner's own tap in /churn included). Customers flagged before it was turned on, or more than
a week before the run, are left to /churn: turning it on does not blast the backlog."""

from __future__ import annotations

from datetime import timedelta

from bot.clock import Clock
from bot.domain.churn import ChurnService
from bot.domain.models import CouponKind
from bot.domain.promotions import promote_chosen
from bot.domain.pushes import PushMessage
from bot.domain.rule_starts import AUTOMATIC_WINBACK, started
from bot.program import Program
from bot.scheduled_job import JobParts, ScheduledJob
from bot.storage.audiences import Audiences
from bot.storage.database import Database
from bot.storage.promotions import PromotionRepository
from bot.storage.rewards import CouponRepository

SYSTEM_ACTOR = "system:winback"
LOOK_BACK = timedelta(days=7)  # a flag raised while the bot was down a few days still counts
# The coupon's key and its message's: "winback-auto:<customer>:<last sale>", once per lapse.
KEY_PREFIX = "winback-auto:"


class WinBackJob:
    def __init__(
        self, database: Database, clock: Clock, program: Program, churn: ChurnService
    ) -> None:
        self._db = database
        self._clock = clock
        self._program = program
        self._churn = churn

    async def run(self) -> int:
        """Bring the flags up to date, then send each newly lapsed customer their coupon;
        how many messages it queued."""
        rules = self._program.churn
        if not rules.automatic_winback:
            return 0
        await self._churn.recompute()
        now = self._clock.now()
        async with self._db.transaction() as tx:
            since = max(await started(tx, AUTOMATIC_WINBACK, now), now - LOOK_BACK)
            # Set-based: a first run can find tens of thousands of lapsed customers.
            promotions = PromotionRepository(tx)
            await promotions.choose(Audiences(tx).lapsed_without_winback(since, KEY_PREFIX))
            valid_until = now + timedelta(days=rules.winback_valid_days)
            granted = await CouponRepository(tx).grant_each(
                promotions.chosen(),
                CouponKind.WINBACK,
                percent_off=rules.winback_percent_off,
                valid_until=valid_until,
                created_by=SYSTEM_ACTOR,
                at=now,
            )
            await promotions.keep_chosen(granted)
            facts = {
                "percent_off": rules.winback_percent_off,
                "free_item": None,
                "valid_until": valid_until.isoformat(),
            }
            message = PushMessage("coupons/winback", {"coupon": facts})
            promoted = await promote_chosen(tx, "winback", message, now, self._program.contact)
            return promoted.queued


def scheduled(parts: JobParts) -> ScheduledJob:
    """Daily at the churn recompute's hour (its messages wait out the quiet hours)."""
    job = WinBackJob(parts.database, parts.clock, parts.program, parts.churn)
    return ScheduledJob.daily(job.run, parts.program.churn.recompute_hour, parts.zone)
