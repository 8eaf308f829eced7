"""Joining the program: name, phone, birthday and consent, one answer at a time.

The answers live in a stored draft so that a restart of the bot loses nothing, and the customer
is created only by the last answer, in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from bot.clock import Clock
from bot.domain.codes import new_code, normalise_code
from bot.domain.models import (
    ConsentTopic,
    Customer,
    Identity,
    Language,
    RegistrationDraft,
    RegistrationStep,
)
from bot.domain.parsing import (
    InvalidInput,
    clean_name,
    normalise_phone,
    parse_birthday,
    usable_name,
)
from bot.program import Program
from bot.storage.customers import CustomerRepository, DraftRepository
from bot.storage.database import Database, Transaction

_CODE_ATTEMPTS = 20


@dataclass(frozen=True)
class TextAnswer:
    text: str


@dataclass(frozen=True)
class ContactAnswer:
    phone: str
    is_own: bool


@dataclass(frozen=True)
class SkipAnswer:
    pass


@dataclass(frozen=True)
class ConsentAnswer:
    granted: bool


Answer = TextAnswer | ContactAnswer | SkipAnswer | ConsentAnswer


@dataclass(frozen=True)
class Prompt:
    """Ask `draft.step` next; `problem` names why the last answer was not taken, if it was not."""

    draft: RegistrationDraft
    problem: str | None = None
    referral_note: str | None = None


@dataclass(frozen=True)
class AlreadyMember:
    customer: Customer
    referral_note: str | None = None


@dataclass(frozen=True)
class Registered:
    customer: Customer
    referrer: Customer | None


@dataclass(frozen=True)
class NotRegistering:
    """An answer arrived from someone with no registration in progress."""


StartOutcome = Prompt | AlreadyMember
AnswerOutcome = Prompt | Registered | AlreadyMember | NotRegistering


class RegistrationService:
    def __init__(self, database: Database, clock: Clock, program: Program) -> None:
        self._db = database
        self._clock = clock
        self._program = program

    async def start(
        self,
        identity: Identity,
        language: Language,
        suggested_name: str | None,
        referral_code: str | None = None,
        known_phone: str | None = None,
    ) -> StartOutcome:
        """Begin (or resume) joining; a member gets their account back, never a second one.
        `known_phone`: the channel knows the number is theirs (WhatsApp), so it is not asked."""
        async with self._db.transaction() as tx:
            customers = CustomerRepository(tx)
            member = await customers.by_identity(identity)
            referrer = (
                await customers.by_referral_code(normalise_code(referral_code))
                if referral_code
                else None
            )
            if member is not None:
                return AlreadyMember(member, _note_for_member(member, referral_code, referrer))
            drafts = DraftRepository(tx)
            draft = await drafts.get(identity)
            if draft is None:
                draft = RegistrationDraft(
                    identity=identity,
                    step=RegistrationStep.NAME,
                    language=language,
                    suggested_name=usable_name(suggested_name),
                    phone=known_phone,
                    phone_verified=known_phone is not None,
                )
            if referrer is not None:
                draft = replace(draft, referrer_id=referrer.id)
            await drafts.save(draft, self._clock.now())
        note = "referral_unknown" if referral_code and referrer is None else None
        if referrer is not None:
            note = "referral_accepted"
        return Prompt(draft, referral_note=note)

    async def is_registering(self, identity: Identity) -> bool:
        async with self._db.reading() as tx:
            return await DraftRepository(tx).get(identity) is not None

    async def answer(self, identity: Identity, answer: Answer) -> AnswerOutcome:
        async with self._db.transaction() as tx:
            draft = await DraftRepository(tx).get(identity)
            if draft is None:
                member = await CustomerRepository(tx).by_identity(identity)
                return AlreadyMember(member) if member else NotRegistering()
            try:
                updated = self._apply(draft, answer)
            except InvalidInput as invalid:
                return Prompt(draft, problem=invalid.problem)
            if updated.step is RegistrationStep.CONSENT and isinstance(answer, ConsentAnswer):
                return await self._complete(tx, updated, answer.granted)
            await DraftRepository(tx).save(updated, self._clock.now())
            return Prompt(updated)

    async def cancel(self, identity: Identity) -> bool:
        async with self._db.transaction() as tx:
            drafts = DraftRepository(tx)
            if await drafts.get(identity) is None:
                return False
            await drafts.delete(identity)
            return True

    def _apply(self, draft: RegistrationDraft, answer: Answer) -> RegistrationDraft:
        """The draft with this answer taken, moved to the next step; InvalidInput if not taken."""
        step = draft.step
        if step is RegistrationStep.NAME:
            if not isinstance(answer, TextAnswer):
                raise InvalidInput("name_expected")
            phone_known = draft.phone is not None
            following = RegistrationStep.BIRTHDAY if phone_known else RegistrationStep.PHONE
            return replace(draft, name=clean_name(answer.text), step=following)
        if step is RegistrationStep.PHONE:
            if isinstance(answer, SkipAnswer):
                return replace(
                    draft, phone=None, phone_verified=False, step=RegistrationStep.BIRTHDAY
                )
            if isinstance(answer, ContactAnswer) and not answer.is_own:
                raise InvalidInput("phone_not_own")
            if not isinstance(answer, TextAnswer | ContactAnswer):
                raise InvalidInput("phone_invalid")
            raw = answer.text if isinstance(answer, TextAnswer) else answer.phone
            phone = normalise_phone(raw, self._program.shop.phone_region)
            shared = isinstance(answer, ContactAnswer)  # and its own: checked above
            return replace(
                draft, phone=phone, phone_verified=shared, step=RegistrationStep.BIRTHDAY
            )
        if step is RegistrationStep.BIRTHDAY:
            if isinstance(answer, SkipAnswer):
                return replace(draft, birthday=None, step=RegistrationStep.CONSENT)
            if not isinstance(answer, TextAnswer):
                raise InvalidInput("birthday_format")
            today = self._clock.now().date()
            birthday = parse_birthday(answer.text, today)
            return replace(draft, birthday=birthday, step=RegistrationStep.CONSENT)
        if not isinstance(answer, ConsentAnswer):
            raise InvalidInput("consent_use_buttons")
        return draft

    async def _complete(
        self, tx: Transaction, draft: RegistrationDraft, granted: bool
    ) -> Registered:
        now = self._clock.now()
        customers = CustomerRepository(tx)
        referrer = await customers.by_id(draft.referrer_id) if draft.referrer_id else None
        if referrer is None:
            draft = replace(draft, referrer_id=None)
        customer_id = await customers.insert(
            draft.identity,
            member_code=await _unused_code(customers),
            referral_code=await _unused_code(customers),
            draft=draft,
            promotions_consent=granted,
            at=now,
        )
        await customers.set_consent(customer_id, ConsentTopic.PROMOTIONS, granted, now)
        await DraftRepository(tx).delete(draft.identity)
        customer = await customers.by_id(customer_id)
        assert customer is not None
        return Registered(customer, referrer)


def _note_for_member(
    member: Customer, referral_code: str | None, referrer: Customer | None
) -> str | None:
    if not referral_code:
        return None
    if referrer is not None and referrer.id == member.id:
        return "referral_self"
    return "referral_already_member"


async def _unused_code(customers: CustomerRepository) -> str:
    for _ in range(_CODE_ATTEMPTS):
        code = new_code()
        if not await customers.code_taken(code):
            return code
    raise RuntimeError("could not find an unused code; the code space is nearly full")
