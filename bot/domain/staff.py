"""Who may work the counter: owners (from the configuration), staff (by one-time invitation)."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.clock import Clock
from bot.domain.models import Actor, Identity, Language, Refused, Role, StaffMember
from bot.domain.notices import tell_person
from bot.domain.parsing import usable_name
from bot.domain.permissions import Action, permitted
from bot.storage.database import Database, Transaction, from_sql_time
from bot.storage.staff import AuditLog, StaffRepository

log = logging.getLogger(__name__)

INVITE_VALIDITY = timedelta(hours=24)


@dataclass(frozen=True)
class Invite:
    token: str
    expires_at: datetime


@dataclass(frozen=True)
class StaffJoined:
    member: StaffMember


class StaffService:
    def __init__(
        self,
        database: Database,
        clock: Clock,
        owners: frozenset[Identity],
        default_language: Language,
    ) -> None:
        self._db = database
        self._clock = clock
        self._owners = owners
        self._default_language = default_language
        self._owner_languages: dict[Identity, Language] | None = None  # read once, then kept
        self._staff: set[Identity] | None = None  # read once, then kept as staff join and go

    @property
    def owners(self) -> frozenset[Identity]:
        return self._owners

    async def actor(self, identity: Identity, language: Language | None = None) -> Actor:
        """Who this is; an owner's `language` (the one they write in) is remembered, so that
        what the bot tells owners on its own is in their language."""
        if identity in self._owners:
            if language is not None:
                await self._remember_owner_language(identity, language)
            return Actor(identity, Role.OWNER)
        if not await self.in_team(identity):  # most who write are customers: no query
            return Actor(identity, Role.CUSTOMER)
        async with self._db.single_read() as tx:
            member = await StaffRepository(tx).by_identity(identity)
        if member is not None:
            return Actor(identity, Role.STAFF, member.name)
        return Actor(identity, Role.CUSTOMER)

    async def in_team(self, *identities: Identity) -> bool:
        """Whether any of these ids is an owner's or a staff member's (for the flood guard,
        once per incoming update: read from memory)."""
        if self._staff is None:
            self._staff = {member.identity for member in await self.members()}
        return any(each in self._owners or each in self._staff for each in identities)

    async def invite(self, owner: Actor) -> Invite | Refused:
        if refused := await permitted(self._db, self._clock, owner, Action.STAFF):
            return refused
        now = self._clock.now()
        invite = Invite(secrets.token_urlsafe(16), now + INVITE_VALIDITY)
        async with self._db.transaction() as tx:
            await StaffRepository(tx).create_invite(
                invite.token, owner.label, now, invite.expires_at
            )
            await AuditLog(tx).record(owner.label, "staff_invite", now, expires=invite.expires_at)
        return invite

    async def accept(
        self, identity: Identity, token: str, name: str, language: Language
    ) -> StaffJoined | Refused:
        now = self._clock.now()
        name = usable_name(name) or ""  # a profile name, as customers' names are checked
        if not name:
            return Refused("name_invalid")
        async with self._db.transaction() as tx:
            staff = StaffRepository(tx)
            invite = await staff.invite(token)
            if invite is None:
                return Refused("invite_unknown")
            if invite["used_by"] is not None:
                return Refused("invite_used")
            if from_sql_time(invite["expires_at"]) <= now:
                return Refused("invite_expired")
            if identity in self._owners or await staff.by_identity(identity) is not None:
                return Refused("invite_already_staff")
            staff_id = await staff.add(identity, name, language, invite["created_by"], now)
            if not await staff.use_invite(token, staff_id, now):
                raise RuntimeError("invite used concurrently inside one transaction")
            member = await staff.by_id(staff_id)
            assert member is not None
            await AuditLog(tx).record(
                f"staff:{identity.channel}:{identity.user_id}",
                "staff_joined",
                now,
                subject=f"staff:{staff_id}",
                invited_by=invite["created_by"],
                name=name,
            )
            for owner, owner_language in (await self.owners_in(tx)).items():
                await tell_person(
                    tx,
                    owner,
                    owner_language,
                    f"staff:{staff_id}:joined:{owner.channel}:{owner.user_id}",
                    "staff/joined",
                    now,
                    member={"name": member.name},
                )
        self._staff = None  # read again at the next update
        return StaffJoined(member)

    async def _known_owner_languages(
        self, tx: Transaction | None = None
    ) -> dict[Identity, Language]:
        """Read once, then kept; inside a transaction, read through it."""
        if self._owner_languages is None:
            if tx is not None:
                self._owner_languages = await StaffRepository(tx).owner_languages()
            else:
                async with self._db.reading() as reader:
                    self._owner_languages = await StaffRepository(reader).owner_languages()
        return self._owner_languages

    async def _remember_owner_language(self, identity: Identity, language: Language) -> None:
        known = await self._known_owner_languages()
        if known.get(identity) == language:
            return
        # One statement outside the update's unit of work: it must not carry the update's
        # "handled" record (bot/incoming.py) in a commit before the update's real change.
        async with self._db.single_write() as tx:
            await StaffRepository(tx).set_owner_language(identity, language)
        known[identity] = language

    async def team_in(self, tx: Transaction) -> dict[Identity, Language]:
        """Owners and staff, each with the language to write to them in."""
        team = await self.owners_in(tx)
        team |= {member.identity: member.language for member in await StaffRepository(tx).active()}
        return team

    async def owners_in(self, tx: Transaction) -> dict[Identity, Language]:
        known = await self._known_owner_languages(tx)
        return {owner: known.get(owner, self._default_language) for owner in self._owners}

    async def members(self) -> list[StaffMember]:
        async with self._db.reading() as tx:
            return await StaffRepository(tx).active()

    async def remove(self, owner: Actor, staff_id: int) -> StaffMember | Refused | None:
        if refused := await permitted(self._db, self._clock, owner, Action.STAFF):
            return refused
        now = self._clock.now()
        async with self._db.transaction() as tx:
            staff = StaffRepository(tx)
            member = await staff.by_id(staff_id)
            if member is None or not await staff.remove(staff_id, now):
                return None
            await AuditLog(tx).record(
                owner.label, "staff_removed", now, subject=f"staff:{staff_id}", name=member.name
            )
            await tell_person(
                tx,
                member.identity,
                member.language,
                f"staff:{staff_id}:removed",
                "staff/you_were_removed",
                now,
            )
        self._staff = None  # read again at the next update
        return member

    async def refuse(self, actor: Actor, action: str) -> None:
        """Note an attempt to use a command the actor has no right to."""
        log.warning("refused %s to a %s (see the audit log)", action, actor.role.value)
        async with self._db.transaction() as tx:
            await AuditLog(tx).record(actor.label, "refused", self._clock.now(), subject=action)
