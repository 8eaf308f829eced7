"""Delivering the outbox: paced under the channel's limits, retried within bounds, never twice.

A job decides what to send inside its own transaction (the outbox row is its record); this
dispatcher delivers what is due. Each push is marked `sending` before it goes out and `sent`
after, so a crash in between leaves it `uncertain` and it is not sent again: a lost greeting
is better than a duplicate one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from bot.clock import Clock
from bot.domain.models import Identity, Language
from bot.storage.database import Database
from bot.storage.outbox import OutboxItem, OutboxRepository, OutboxStatus

log = logging.getLogger(__name__)

BATCH = 200
RETRY_BACKOFF = timedelta(minutes=1)
MAX_RETRY_AFTER_WAITS = 5  # per push: a channel that keeps saying "later" is given up on
PER_CHAT_INTERVAL = 1.0  # Telegram: about one message a second to the same chat


@dataclass(frozen=True)
class Choice:
    """A row of buttons to answer with one value (a score): each sends `prefix` + its value.

    Stored as this rule rather than button by button: a first survey run in a large shop
    queues tens of thousands of them at once."""

    prefix: str
    values: tuple[int, ...]
    per_row: int

    def rows(self) -> list[list[tuple[str, str]]]:
        """(label, data) of each button, row by row."""
        buttons = [(str(value), f"{self.prefix}{value}") for value in self.values]
        return [buttons[at : at + self.per_row] for at in range(0, len(buttons), self.per_row)]


@dataclass(frozen=True)
class PushMessage:
    template: str
    context: dict[str, Any] = field(default_factory=dict)
    choice: Choice | None = None
    # Pushes queued by earlier versions spell each button out: (label, data), row by row.
    spelled_out: list[list[tuple[str, str]]] = field(default_factory=list)

    def keyboard(self) -> list[list[tuple[str, str]]]:
        return self.choice.rows() if self.choice else self.spelled_out

    def payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"context": self.context}
        if self.choice is not None:
            payload["choice"] = {
                "prefix": self.choice.prefix,
                "values": list(self.choice.values),
                "per_row": self.choice.per_row,
            }
        return payload

    @classmethod
    def from_outbox(cls, template: str, payload: dict[str, Any]) -> PushMessage:
        choice = payload.get("choice")
        return cls(
            template=template,
            context=payload.get("context", {}),
            choice=Choice(choice["prefix"], tuple(choice["values"]), choice["per_row"])
            if choice
            else None,
            spelled_out=[
                [(button["text"], button["data"]) for button in row]
                for row in payload.get("buttons", [])
            ],
        )


@dataclass(frozen=True)
class Delivered:
    pass


@dataclass(frozen=True)
class RetryLater:
    seconds: float


@dataclass(frozen=True)
class Unreachable:
    reason: str


@dataclass(frozen=True)
class Failed:
    reason: str
    transient: bool


Outcome = Delivered | RetryLater | Unreachable | Failed


class PushChannel(Protocol):
    """How a push reaches a person: Telegram today, another channel tomorrow."""

    async def deliver(
        self, identity: Identity, language: Language, message: PushMessage
    ) -> Outcome: ...


@dataclass
class DeliveryReport:
    sent: int = 0
    unreachable: int = 0
    failed: int = 0
    retried: int = 0
    waits_for_retry_after: int = 0


class PushDispatcher:
    def __init__(
        self,
        database: Database,
        clock: Clock,
        channel: PushChannel,
        rate_per_second: float,
        max_attempts: int = 3,
    ) -> None:
        self._db = database
        self._clock = clock
        self._channel = channel
        self._interval = 1.0 / rate_per_second
        self._max_attempts = max_attempts
        self._next_slot: datetime | None = None
        self._last_to_chat: dict[Identity, datetime] = {}
        self._stopping = False

    def stop_after_current(self) -> None:
        """Shutting down: finish the push in hand (and record how it went), send no more."""
        self._stopping = True

    async def recover(self) -> int:
        """At start-up: pushes a crash caught mid-send become `uncertain`, never resent."""
        async with self._db.transaction() as tx:
            return await OutboxRepository(tx).mark_interrupted()

    async def deliver_due(self) -> DeliveryReport:
        """Deliver every push that is due now; one failing customer never stops the run."""
        report = DeliveryReport()
        async with self._db.transaction() as tx:
            report.unreachable += await OutboxRepository(tx).drop_unreachable(self._clock.now())
        while True:
            async with self._db.reading() as tx:
                batch = await OutboxRepository(tx).due(self._clock.now(), BATCH)
            if not batch:
                return report
            for item in batch:
                if self._stopping:
                    return report
                await self._deliver_one(item, report)

    async def _deliver_one(self, item: OutboxItem, report: DeliveryReport) -> None:
        async with self._db.transaction() as tx:
            await OutboxRepository(tx).set_status(item.id, OutboxStatus.SENDING, self._clock.now())
        message = PushMessage.from_outbox(item.template, item.payload)
        outcome: Outcome = Failed("not attempted", transient=True)
        for _ in range(MAX_RETRY_AFTER_WAITS + 1):
            await self._pace(item.identity)
            try:
                outcome = await self._channel.deliver(item.identity, item.language, message)
            except Exception as error:  # one broken push must not stop the others
                log.exception("push %s to customer %s failed", item.id, item.customer_id)
                outcome = Failed(f"{type(error).__name__}: {error}", transient=False)
            if not isinstance(outcome, RetryLater):
                break
            report.waits_for_retry_after += 1
            log.warning("channel asked to wait %.1fs before push %s", outcome.seconds, item.id)
            await self._clock.sleep(outcome.seconds)
            self._next_slot = self._clock.now()
        await self._record(item, outcome, report)

    async def _record(self, item: OutboxItem, outcome: Outcome, report: DeliveryReport) -> None:
        now = self._clock.now()
        async with self._db.transaction() as tx:
            outbox = OutboxRepository(tx)
            if isinstance(outcome, Delivered):
                await outbox.set_status(item.id, OutboxStatus.SENT, now)
                report.sent += 1
            elif isinstance(outcome, Unreachable):
                await outbox.set_status(
                    item.id, OutboxStatus.UNREACHABLE, now, error=outcome.reason
                )
                await outbox.mark_customer_unreachable(item.customer_id, now)
                report.unreachable += 1
            else:
                reason = outcome.reason if isinstance(outcome, Failed) else "retry-after too often"
                transient = isinstance(outcome, RetryLater) or outcome.transient
                attempts = item.attempts + 1
                if transient and attempts < self._max_attempts:
                    retry_at = now + RETRY_BACKOFF * 2 ** (attempts - 1)
                    await outbox.set_status(
                        item.id,
                        OutboxStatus.PENDING,
                        now,
                        error=reason,
                        next_attempt_at=retry_at,
                        attempts=attempts,
                    )
                    report.retried += 1
                else:
                    await outbox.set_status(
                        item.id, OutboxStatus.FAILED, now, error=reason, attempts=attempts
                    )
                    report.failed += 1

    async def _pace(self, identity: Identity) -> None:
        """Keep under the overall rate and one message a second to the same chat.

        Slots follow a timetable (each one interval after the last) rather than the moment the
        previous push went out, so that sleeps which overrun do not add up and slow the run;
        after a pause the timetable starts again from now instead of bursting to catch up."""
        now = self._clock.now()
        interval = timedelta(seconds=self._interval)
        slot = self._next_slot if self._next_slot and self._next_slot > now - interval else now
        wait = (slot - now).total_seconds()
        last = self._last_to_chat.get(identity)
        if last is not None:
            wait = max(wait, PER_CHAT_INTERVAL - (now - last).total_seconds())
        if wait > 0:
            await self._clock.sleep(wait)
        sent_at = self._clock.now()
        self._next_slot = max(slot, sent_at - interval) + interval
        if len(self._last_to_chat) > 1000:  # only the last second matters
            horizon = sent_at - timedelta(seconds=PER_CHAT_INTERVAL)
            self._last_to_chat = {k: v for k, v in self._last_to_chat.items() if v > horizon}
        self._last_to_chat[identity] = sent_at
