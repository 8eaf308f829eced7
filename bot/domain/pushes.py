"""Delivering the outbox: paced under the channel's limits, retried within bounds, never twice.

A job decides what to send inside its own transaction (the outbox row is its record); this
dispatcher delivers what is due. Each push is marked `sending` before it goes out and `sent`
after, so a crash in between leaves it `uncertain` and it is not sent again: a lost greeting
is better than a duplicate one.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from bot.channels import (
    Channel,
    Choice,
    Deferred,
    Delivered,
    Failed,
    NotAnAddress,
    Outcome,
    RetryLater,
    TemplateSender,
    Unreachable,
)
from bot.clock import Clock
from bot.domain.contact import QUIET_KINDS, QuietHours
from bot.domain.models import Identity
from bot.messages import Messages
from bot.program import ApprovedTemplate
from bot.storage.campaigns import CampaignRepository
from bot.storage.database import Database
from bot.storage.grouped import GroupedWrite
from bot.storage.inbox import InboxRepository
from bot.storage.outbox import OutboxItem, OutboxRepository, OutboxStatus

log = logging.getLogger(__name__)

BATCH = 200
RETRY_BACKOFF = timedelta(minutes=1)
CHANNEL_STARTING = timedelta(seconds=5)
MAX_RETRY_AFTER_WAITS = 5  # per push: a channel that keeps saying "later" is given up on
# Longer than any send takes, waits for Retry-After included: a push `sending` for longer was
# caught by a crash of the process sending it.
SENDING_LONGEST = timedelta(minutes=10)
PER_CHAT_INTERVAL = 1.0  # Telegram: about one message a second to the same chat


@dataclass(frozen=True)
class PushMessage:
    """`opt_out`: an offer that carries a one-tap "no more offers" (a campaign's);
    `photo_of`: the campaign whose photo it goes with, the text then its caption."""

    template: str
    context: dict[str, Any] = field(default_factory=dict)
    choice: Choice | None = None
    opt_out: bool = False
    photo_of: int | None = None

    def payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"context": self.context}
        if self.opt_out:
            payload["opt_out"] = True
        if self.photo_of is not None:
            payload["photo_of"] = self.photo_of
        if self.choice is not None:
            payload["choice"] = {
                "question": self.choice.question,
                "about": self.choice.about,
                "values": list(self.choice.values),
                "per_row": self.choice.per_row,
            }
        return payload

    @classmethod
    def from_outbox(cls, template: str, payload: dict[str, Any]) -> PushMessage:
        return cls(
            template,
            payload.get("context", {}),
            _stored_choice(payload),
            opt_out=payload.get("opt_out", False),
            photo_of=payload.get("photo_of"),
        )


_EARLIER_SURVEY_DATA = re.compile(r"^survey:(\d+):(\d*)$")


def _stored_choice(payload: dict[str, Any]) -> Choice | None:
    """The choice as stored now, or as versions before 0.8 stored it: Telegram button data,
    as a prefix ("survey:7:") or spelled out button by button ("survey:7:0", ...)."""
    choice = payload.get("choice")
    if choice and "question" in choice:
        return Choice(
            choice["question"], choice["about"], tuple(choice["values"]), choice["per_row"]
        )
    if choice:
        earlier = _EARLIER_SURVEY_DATA.match(choice["prefix"])
        assert earlier is not None, choice
        return Choice("survey", int(earlier[1]), tuple(choice["values"]), choice["per_row"])
    rows = payload.get("buttons")
    if not rows:
        return None
    spelled = [_EARLIER_SURVEY_DATA.match(button["data"]) for row in rows for button in row]
    assert all(spelled), rows
    return Choice(
        "survey",
        int(spelled[0][1]),  # type: ignore[index]
        tuple(int(match[2]) for match in spelled),  # type: ignore[index]
        len(rows[0]),
    )


@dataclass
class DeliveryReport:
    sent: int = 0
    unreachable: int = 0
    failed: int = 0
    retried: int = 0
    waits_for_retry_after: int = 0
    deferred: int = 0  # held for a later day by a channel's daily limit
    quiet: int = 0  # offers and expiry warnings waiting for the quiet hours to end


class PushDispatcher:
    def __init__(
        self,
        database: Database,
        clock: Clock,
        channels: Mapping[str, Channel],
        messages: Messages,
        rate_per_second: float,
        max_attempts: int = 3,
        templates: Sequence[ApprovedTemplate] = (),
        quiet: QuietHours | None = None,
        configured: Callable[[str], bool] = lambda channel: False,
    ) -> None:
        """`templates`: what stands for a push outside a channel's free-form window; `quiet`:
        when offers and expiry warnings wait; `configured`: whether a channel that is not
        running yet is on its way (it is starting) rather than missing."""
        self._configured = configured
        self._quiet = quiet
        self._db = database
        self._clock = clock
        self._channels = channels
        self._messages = messages
        self._templates: dict[str, ApprovedTemplate] = {t.message: t for t in templates}
        self._interval = 1.0 / rate_per_second
        self._max_attempts = max_attempts
        self._next_slot: datetime | None = None
        self._last_to_chat: dict[Identity, datetime] = {}
        self._stopping = False
        self._claim = GroupedWrite(self._claim_now)
        self._mark_sent = GroupedWrite(self._mark_sent_now)
        self._channel_ids: dict[int, str | None] = {}  # sent, waiting for their group write
        self._photo_in_hand: tuple[int, bytes] | None = None

    def stop_after_current(self) -> None:
        """Shutting down: finish the push in hand (and record how it went), send no more."""
        self._stopping = True

    async def recover(self) -> int:
        """Pushes a crash caught mid-send become `uncertain`, never resent: at start-up all
        of them when this is the only process (SQLite); with several, those claimed longer
        ago than any send takes (another process may be sending the rest)."""
        claimed_before = self._clock.now()
        if self._db.shared:
            claimed_before -= SENDING_LONGEST
        async with self._db.transaction() as tx:
            return await OutboxRepository(tx).mark_interrupted(claimed_before)

    async def deliver_due(self) -> DeliveryReport:
        """Deliver every push that is due now; one failing customer never stops the run."""
        report = DeliveryReport()
        async with self._db.transaction() as tx:
            outbox = OutboxRepository(tx)
            report.unreachable += await outbox.drop_unreachable(self._clock.now())
            # A process that died mid-send (several processes: not this one) left these.
            await outbox.mark_interrupted(self._clock.now() - SENDING_LONGEST)
        while True:
            now = self._clock.now()
            held = QUIET_KINDS if self._quiet and self._quiet.contains(now) else ()
            async with self._db.reading() as tx:
                batch = await OutboxRepository(tx).due(now, BATCH, held_kinds=held)
                if not batch and held:
                    report.quiet = await OutboxRepository(tx).count_due(now, held)
            if not batch:
                return report
            for item in batch:
                if self._stopping:
                    return report
                await self._deliver_one(item, report)

    async def deliver_now(self, items: list[OutboxItem]) -> DeliveryReport:
        """The fast path: messages an update's commit queued (a receipt, an alert), sent at
        once rather than at the next run. Unpaced: there are a handful, and the channel's own
        rate limiter stands guard. A channel asking to wait leaves them to the next run."""
        report = DeliveryReport()
        claimed = await self._claim([item.id for item in items])
        for item in items:
            if item.id in claimed:
                await self._record(item, await self._send(item), report)
        return report

    async def _deliver_one(self, item: OutboxItem, report: DeliveryReport) -> None:
        if not await self._claim([item.id]):
            return  # the fast path took it
        outcome: Outcome = Failed("not attempted", transient=True)
        for _ in range(MAX_RETRY_AFTER_WAITS + 1):
            await self._pace(item.identity)
            outcome = await self._send(item)
            if not isinstance(outcome, RetryLater):
                break
            report.waits_for_retry_after += 1
            log.warning("channel asked to wait %.1fs before push %s", outcome.seconds, item.id)
            await self._clock.sleep(outcome.seconds)
            self._next_slot = self._clock.now()
        await self._record(item, outcome, report)

    async def _claim_now(self, item_ids: list[int]) -> set[int]:
        """`sending` is committed before a message leaves: a crash then leaves it uncertain."""
        async with self._db.single_write() as tx:
            return await OutboxRepository(tx).claim(item_ids, self._clock.now())

    async def _mark_sent_now(self, item_ids: list[int]) -> set[int]:
        sent = {item_id: self._channel_ids.pop(item_id, None) for item_id in item_ids}
        async with self._db.single_write() as tx:
            return await OutboxRepository(tx).mark_sent(sent, self._clock.now())

    async def _send(self, item: OutboxItem) -> Outcome:
        channel = self._channels.get(item.identity.channel)
        if channel is None and self._configured(item.identity.channel):
            # Not an attempt: at start-up the outbox can be read before a channel connects.
            until = self._clock.now() + CHANNEL_STARTING
            return Deferred(until, f"the {item.identity.channel} channel is starting")
        if channel is None:
            return Failed(f"the {item.identity.channel} channel is not running", transient=True)
        message = _with_link(channel, PushMessage.from_outbox(item.template, item.payload))
        try:
            if not await self._free_form_allowed(channel, item.identity):
                return await self._send_template(channel, item, message)
            text = self._messages.render(item.language, message.template, **message.context)
            opt_out = (
                self._messages.label(item.language, "stop_offers") if message.opt_out else None
            )
            if message.photo_of is not None:
                photo = await self._photo(message.photo_of)
                return await channel.send_photo(item.identity, photo, text, opt_out)
            return await channel.send_text(item.identity, text, message.choice, opt_out)
        except NotAnAddress as error:  # a stored id the channel cannot write to
            log.warning("push %s not sent: not an address on %s", item.id, item.identity.channel)
            return Failed(str(error), transient=False)
        except Exception as error:  # one broken push must not stop the others
            log.exception("push %s failed", item.id)
            return Failed(f"{type(error).__name__}: {error}", transient=False)

    async def _photo(self, campaign_id: int) -> bytes:
        """A campaign's photo, read once for all its recipients (the latest one kept)."""
        if self._photo_in_hand is None or self._photo_in_hand[0] != campaign_id:
            async with self._db.reading() as tx:
                photo = await CampaignRepository(tx).photo(campaign_id)
            assert photo is not None, campaign_id
            self._photo_in_hand = (campaign_id, photo)
        return self._photo_in_hand[1]

    async def _free_form_allowed(self, channel: Channel, identity: Identity) -> bool:
        if channel.capabilities.free_form_window is None:
            return True
        async with self._db.reading() as tx:
            heard = await InboxRepository(tx).last_heard(identity.channel, identity.user_id)
        return channel.capabilities.free_form_allowed(heard, self._clock.now())

    async def _send_template(
        self, channel: Channel, item: OutboxItem, message: PushMessage
    ) -> Outcome:
        """Outside the window only an approved template may go; never the text itself."""
        approved = self._templates.get(message.template)
        name = approved.name_for(item.language) if approved else None
        if approved is None or name is None or not isinstance(channel, TemplateSender):
            return Failed("outside the free-form window; no approved template", transient=False)
        held = await self._over_daily_limit(channel, item.identity.channel)
        if held is not None:
            return held
        values = [
            self._messages.parameter(_looked_up(message.context, name))
            for name in approved.parameters
        ]
        outcome = await channel.send_template(item.identity, name, item.language, values)
        if isinstance(outcome, Delivered):
            async with self._db.single_write() as tx:
                await OutboxRepository(tx).note_template(item.id, name, self._clock.now())
        return outcome

    async def _over_daily_limit(self, channel: Channel, name: str) -> Deferred | None:
        limit = channel.capabilities.daily_first_contacts
        if limit is None:
            return None
        day = timedelta(days=1)
        async with self._db.reading() as tx:
            sent, oldest = await OutboxRepository(tx).people_sent_templates(
                name, self._clock.now() - day
            )
        if sent < limit:
            return None
        until = (oldest or self._clock.now()) + day
        return Deferred(until, f"{name}: the daily limit of {limit} first contacts is reached")

    async def _record(self, item: OutboxItem, outcome: Outcome, report: DeliveryReport) -> None:
        now = self._clock.now()
        if isinstance(outcome, Delivered):  # the common case: one statement, shared
            self._channel_ids[item.id] = outcome.message_id
            await self._mark_sent([item.id])
            report.sent += 1
            return
        async with self._db.transaction() as tx:
            outbox = OutboxRepository(tx)
            if isinstance(outcome, Deferred):  # not an attempt: it waits its turn
                await outbox.set_status(
                    item.id,
                    OutboxStatus.PENDING,
                    now,
                    error=outcome.reason,
                    next_attempt_at=outcome.until,
                )
                report.deferred += 1
                log.warning("push %s held until %s: %s", item.id, outcome.until, outcome.reason)
            elif isinstance(outcome, Unreachable):
                await outbox.set_status(
                    item.id, OutboxStatus.UNREACHABLE, now, error=outcome.reason
                )
                if item.customer_id is not None:
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


def _with_link(channel: Channel, message: PushMessage) -> PushMessage:
    """A message that carries a `link_payload` names {{ link }}: the link that opens the chat
    with that payload in the app the message goes out on, known only then."""
    payload = message.context.get("link_payload")
    if payload is None:
        return message
    return replace(message, context={**message.context, "link": channel.start_link(payload)})


def _looked_up(context: dict[str, Any], name: str) -> Any:
    """`coupon.percent_off` reads context["coupon"]["percent_off"]."""
    value: Any = context
    for part in name.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value
