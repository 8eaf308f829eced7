"""Which pushes are promotional, and the quiet hours in which none of them (nor an expiry
warning) is delivered. Shared by the jobs that decide pushes and the dispatcher that sends them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.program import Contact

# Outbox kinds the contact cap counts (bot/domain/promotions.py); surveys have their own pace.
PROMOTIONAL_KINDS = ("birthday", "winback", "nudge", "map", "campaign")
EXPIRY_KIND = "expiry"
# What waits out the quiet hours: offers, and the news that points will run out.
QUIET_KINDS = (*PROMOTIONAL_KINDS, EXPIRY_KIND)
CAP_WINDOW = timedelta(days=7)


@dataclass(frozen=True)
class QuietHours:
    """Local hours [start, end) in which the QUIET_KINDS wait; start > end wraps past midnight."""

    zone: ZoneInfo
    start: int
    end: int

    @classmethod
    def of(cls, contact: Contact, zone: ZoneInfo) -> QuietHours:
        return cls(zone, contact.quiet_from, contact.quiet_to)

    def contains(self, moment: datetime) -> bool:
        hour = moment.astimezone(self.zone).hour
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= hour < self.end
        return hour >= self.start or hour < self.end

    def ends_after(self, moment: datetime) -> datetime:
        """The first moment at or after `moment` outside the quiet hours."""
        if not self.contains(moment):
            return moment
        local = moment.astimezone(self.zone)
        day = local.date() if local.hour < self.end else local.date() + timedelta(days=1)
        return datetime.combine(day, time(self.end), tzinfo=self.zone)
