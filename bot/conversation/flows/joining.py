"""Joining the program and finding one's way: /start (a referral link too), the questions of
registration, /cancel, a staff invitation, /help and the menu; and what anyone gets whose
message no flow answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial

from bot.card import CardFace, draw_card
from bot.channels import TeamMenus
from bot.conversation.commands import commands_for
from bot.conversation.replies import Option, Photo, Reply, one_row
from bot.conversation.router import Router
from bot.conversation.turn import Turn
from bot.domain.models import Customer, Identity, Language, Refused, RegistrationStep, Role
from bot.domain.registration import (
    AlreadyMember,
    Answer,
    AnswerOutcome,
    ConsentAnswer,
    ContactAnswer,
    NotRegistering,
    Prompt,
    Registered,
    SkipAnswer,
    TextAnswer,
)
from bot.taps import ConsentButton, MenuButton

router = Router()

CARD_LINK, REFERRAL_LINK, STAFF_LINK = "c_", "ref_", "staff_"
# The commands of the menu shown as taps, where an app has no command menu.
MENU = ("balance", "card", "rewards", "invite", "notifications", "language", "mydata", "forget")


async def team_changed(turn: Turn, person: Identity, role: Role | None) -> None:
    """Apps that show the team a menu of their own (Telegram) update it: `role` None for
    someone no longer in the team, whichever app removed them."""
    for channel in turn.services.channels.values():
        if isinstance(channel, TeamMenus):
            await channel.team_changed(person, role, turn.language)


@router.link(rf"{STAFF_LINK}([A-Za-z0-9_-]{{1,64}})")
async def join_staff(turn: Turn) -> AsyncIterator[Reply]:
    """An invitation opened: the person becomes staff, once, within 24 hours."""
    outcome = await turn.services.staff.accept(
        turn.said.person, turn.found, turn.said.profile_name or "", turn.language
    )
    if isinstance(outcome, Refused):
        yield turn.refused(outcome)
        return
    yield turn.reply("staff/welcome", name=outcome.member.name)
    await team_changed(turn, turn.said.person, Role.STAFF)


@router.link(rf"{REFERRAL_LINK}([A-Za-z0-9]{{4,16}})")
async def referred(turn: Turn) -> AsyncIterator[Reply]:
    async for reply in _begin(turn, turn.found):
        yield reply


@router.command("start")
async def start(turn: Turn) -> AsyncIterator[Reply]:
    async for reply in _begin(turn, None):
        yield reply


async def _begin(turn: Turn, referral_code: str | None) -> AsyncIterator[Reply]:
    """Join (remembering who referred them), resume, or see the menu."""
    services, said = turn.services, turn.said
    if turn.member is None:
        elsewhere = await services.membership.offer_link(said.person, said.phone)
        if elsewhere is not None:
            yield Reply("whatsapp/link_offered", elsewhere.language)
            return
    outcome = await services.registration.start(
        said.person, turn.language, said.profile_name, referral_code, said.phone
    )
    if isinstance(outcome, AlreadyMember):
        if outcome.referral_note:
            yield Reply(f"referral/{outcome.referral_note}", outcome.customer.language)
        yield menu(turn, outcome.customer)
        return
    language, note = outcome.draft.language, outcome.referral_note
    yield Reply(
        "registration/welcome",
        language,
        {
            "shop": services.program.shop.name,
            "referral_note": (
                turn.services.messages.render(language, f"referral/{note}") if note else None
            ),
        },
    )
    async for reply in ask(turn, outcome):
        yield reply


async def _registering(turn: Turn) -> bool:
    return await turn.services.registration.is_registering(turn.said.person)


@router.state(_registering)
async def registration_answer(turn: Turn) -> AsyncIterator[Reply]:
    said = turn.said
    answer: Answer
    if said.contact is not None:
        answer = ContactAnswer(said.contact.phone, said.contact.own)
    elif said.text.strip() in {turn.label("skip", language) for language in Language}:
        answer = SkipAnswer()
    else:
        answer = TextAnswer(said.text)
    outcome = await turn.services.registration.answer(said.person, answer)
    async for reply in _after_answer(turn, outcome):
        yield reply


@router.tap(ConsentButton)
async def consent(turn: Turn) -> AsyncIterator[Reply]:
    assert isinstance(turn.tap, ConsentButton)
    granted = turn.tap.answer == "yes"
    outcome = await turn.services.registration.answer(turn.said.person, ConsentAnswer(granted))
    async for reply in _after_answer(turn, outcome, tapped=True):
        yield reply


@router.command("cancel")
async def cancel(turn: Turn) -> AsyncIterator[Reply]:
    cancelled = await turn.services.registration.cancel(turn.said.person)
    template = "registration/cancelled" if cancelled else "registration/nothing_to_cancel"
    yield Reply(template, turn.language, clears_suggestions=True)


async def _after_answer(
    turn: Turn, outcome: AnswerOutcome, *, tapped: bool = False
) -> AsyncIterator[Reply]:
    if isinstance(outcome, Prompt):
        async for reply in ask(turn, outcome):
            yield reply
    elif isinstance(outcome, Registered):
        customer = outcome.customer
        yield Reply(
            "registration/done",
            customer.language,
            {
                "name": customer.name,
                "shop": turn.services.program.shop.name,
                "consented": customer.promotions_consent,
                "referrer_name": outcome.referrer.name if outcome.referrer else None,
            },
            clears_suggestions=True,
            closes_prompt=tapped,
        )
        yield await member_card(turn, customer)
    elif isinstance(outcome, AlreadyMember):
        yield menu(turn, outcome.customer)
    elif isinstance(outcome, NotRegistering):
        yield turn.reply("not_a_member")


async def ask(turn: Turn, prompt: Prompt) -> AsyncIterator[Reply]:
    """The current question, after the reason the last answer was refused, if it was."""
    draft = prompt.draft
    language = draft.language
    context = {
        "problem": turn.problem(prompt.problem, language),
        "suggested_name": draft.suggested_name,
    }
    template = f"registration/ask_{draft.step.value}"
    skip = (turn.label("skip", language),)
    if draft.step is RegistrationStep.NAME:
        suggested = (draft.suggested_name,) if draft.suggested_name else ()
        yield Reply(template, language, context, suggestions=suggested, clears_suggestions=True)
    elif draft.step is RegistrationStep.PHONE:
        share = turn.label("share_phone", language)
        yield Reply(template, language, context, suggestions=skip, contact_button=share)
    elif draft.step is RegistrationStep.BIRTHDAY:
        yield Reply(template, language, context, suggestions=skip)
    else:
        if prompt.problem is None:
            # The birthday's suggestions would linger under a question answered by taps.
            yield Reply("registration/noted", language, clears_suggestions=True, only_to_clear=True)
        yes = turn.option("yes", ConsentButton("yes"), language)
        no = turn.option("no", ConsentButton("no"), language)
        yield Reply(template, language, context, options=one_row(yes, no))


async def member_card(turn: Turn, customer: Customer) -> Reply:
    """The card as a picture (bot/card.py). It changes only with the member's name, tier or
    points: a channel that keeps uploaded photos sends an unchanged one by id."""
    services = turn.services
    standing = await services.membership.standing(customer)
    shop = services.program.shop
    face = CardFace(
        shop=shop.name,
        name=customer.name,
        standing=services.messages.plain(
            customer.language, "card_face", tier=standing.tier, points=standing.balance
        ),
        member_code=customer.member_code,
        link=turn.said.surface.link(CARD_LINK + customer.member_code),
        colour=shop.card_colour,
        logo=shop.logo,
    )
    seen_as = f"{customer.name}:{standing.tier.key}:{standing.balance}"
    return Reply(
        "card",
        customer.language,
        {"name": customer.name, "member_code": customer.member_code},
        photo=Photo(
            services.messages.label(customer.language, "card_file"),
            partial(draw_card, face),
            reuse_key=f"card:{turn.said.surface.channel}:{customer.member_code}:{seen_as}",
        ),
    )


def menu(turn: Turn, customer: Customer) -> Reply:
    """What a member can do: the app's command menu, or options to tap."""
    language = customer.language
    if turn.said.surface.command_menu:
        return Reply("menu", language, {"name": customer.name}, clears_suggestions=True)
    words = turn.services.messages.label_map(language, "menu_words")
    options = [Option(words[name], MenuButton(name)) for name in MENU]
    return Reply(
        "whatsapp/menu",
        language,
        {"name": customer.name},
        options=tuple((option,) for option in options),
    )


@router.command("help")
async def help_command(turn: Turn) -> AsyncIterator[Reply]:
    services, member = turn.services, turn.member
    if not turn.said.surface.command_menu:
        async for reply in unrouted(turn):
            yield reply
        return
    language = turn.speaks
    names = commands_for(turn.actor.role, member is not None)
    descriptions = services.messages.command_descriptions(language)
    person = turn.said.person
    yield Reply(
        "help",
        language,
        {
            "commands": [(name, descriptions[name]) for name in names],
            "is_member": member is not None,
            "role": turn.actor.role.value,
            "shop": services.program.shop.name,
            # With no owner configured yet, whoever sets the bot up learns the id to put there.
            "user_id": person.user_id if not services.staff.owners else None,
        },
    )


def staff_menu(turn: Turn) -> Reply:
    """What the team can type; it starts with who they are to the shop, as /help does."""
    return turn.reply(
        "whatsapp/staff_menu",
        role=turn.actor.role.value,
        shop=turn.services.program.shop.name,
    )


async def unrouted(turn: Turn) -> AsyncIterator[Reply]:
    """A message no flow answers: a member sees the menu, the team theirs, anyone else is
    invited to join (on an app with no /start, whatever they wrote begins it)."""
    if turn.member is not None:
        yield menu(turn, turn.member)
    elif turn.actor.is_staff:
        yield staff_menu(turn)
    elif turn.said.surface.joins_on_first_message:
        async for reply in _begin(turn, None):
            yield reply
    else:
        yield turn.reply("not_a_member")


async def not_a_member(turn: Turn) -> AsyncIterator[Reply]:
    """A member's command from someone who is not one."""
    if turn.actor.is_staff or turn.said.surface.joins_on_first_message:
        async for reply in unrouted(turn):
            yield reply
    else:
        yield turn.reply("not_a_member")
