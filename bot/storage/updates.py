"""One received message's claim: it is marked handled in its inbox row in the same commit as
the first change it causes."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from bot.storage.database import Transaction
from bot.storage.inbox import InboxRepository

if TYPE_CHECKING:  # the outbox is built on the database module, as this one is
    from bot.storage.outbox import OutboxItem

log = logging.getLogger(__name__)


class AlreadyHandled(Exception):
    """The message was handled (and recorded) while this handling of it was under way."""


class UpdateClaim:
    """Marks one inbox row as handled in the same commit as the first change its message
    causes, so a crash either keeps both or loses both (and the message is handled again)."""

    def __init__(self, channel: str, item_id: int, at: datetime) -> None:
        self.channel = channel
        self.item_id = item_id
        self._at = at
        self.recorded = False
        self.after_commit: list[OutboxItem] = []  # its commit's messages, sent once handled

    async def join(self, tx: Transaction) -> None:
        if self.recorded:
            _second_commit(self)
            return
        if not await InboxRepository(tx).claim(self.item_id, self._at):
            raise AlreadyHandled(f"{self.channel} message {self.item_id}")

    def committed(self, tx: Transaction) -> None:
        self.recorded = True
        self.after_commit.extend(tx.after_commit)


class SecondCommit(Exception):
    """A message's handling committed twice: a crash between the two commits would keep the
    first change and, the message being recorded as handled, lose the second."""


# Tests turn this on (tests/conftest.py), so that handling that commits twice fails there; a
# running bot logs it instead, as failing the message after its first commit would lose more.
STRICT_ONE_COMMIT = False


def _second_commit(claim: UpdateClaim) -> None:
    message = f"{claim.channel} message {claim.item_id} committed a second time"
    if STRICT_ONE_COMMIT:
        raise SecondCommit(message)
    log.error("%s: one unit of work per message", message)
