"""A per-person allowance of updates, so one person flooding the bot cannot hold up the others.

A token bucket per person: a burst of FLOOD_BURST updates, then FLOOD_REFILL_PER_SECOND. Over it,
the person hears "slow down" once per flood and the rest of the flood is dropped unhandled. The
inbox worker judges each message before handling it, so a dropped one costs a mark in the
inbox and nothing more. Each update is judged by the time it
was sent, so a backlog that waited for the bot counts as it was typed; and the shop's own team
is never held back (a clerk typing fast at the counter is not a flood).
Written here rather than taken from a library because it must run on the injected clock (so
tests control time) and keep its state per person in a bounded dict.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from bot.clock import Clock

TRACKED_PEOPLE = 10_000  # the least recently seen are forgotten beyond this


class Verdict(Enum):
    HANDLE = "handle"
    WARN = "warn"  # the first update over the allowance: say "slow down"
    DROP = "drop"


@dataclass
class _Bucket:
    tokens: float
    updated: datetime
    warned: bool = False


class FloodGuard:
    def __init__(self, clock: Clock, burst: int, refill_per_second: float) -> None:
        self._clock = clock
        self._burst = burst
        self._refill_per_second = refill_per_second
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def judge(
        self, person: str, sent_at: datetime | None = None, *, exempt: bool = False
    ) -> Verdict:
        """`sent_at`: when the person sent it (now, if the channel does not say)."""
        if exempt:
            return Verdict.HANDLE
        return self._spend(person, sent_at or self._clock.now())

    def _spend(self, person: str, at: datetime) -> Verdict:
        bucket = self._buckets.pop(person, None) or _Bucket(float(self._burst), at)
        self._buckets[person] = bucket
        if len(self._buckets) > TRACKED_PEOPLE:
            self._buckets.popitem(last=False)
        elapsed = max((at - bucket.updated).total_seconds(), 0.0)  # sent times may cross
        bucket.tokens = min(float(self._burst), bucket.tokens + elapsed * self._refill_per_second)
        bucket.updated = max(bucket.updated, at)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            bucket.warned = False
            return Verdict.HANDLE
        if bucket.warned:
            return Verdict.DROP
        bucket.warned = True
        return Verdict.WARN
