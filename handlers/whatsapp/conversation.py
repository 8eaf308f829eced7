"""Where a WhatsApp message goes. There are no commands on WhatsApp: people type words, in
either language (`saldo`/`balance`, ...), or the `/command` forms, or tap options; a scanned
card or an invitation arrives as the text its wa.me link prefilled (`c_<code>`, `ref_<code>`,
`staff_<token>`). Anyone else who writes is invited to join."""

from __future__ import annotations

import re

from bot import taps
from bot.bootstrap import Services
from bot.domain.models import (
    ConsentTopic,
    Customer,
    Identity,
    Language,
    Refused,
    RegistrationStep,
    Role,
)
from bot.domain.registration import (
    AlreadyMember,
    AnswerOutcome,
    ConsentAnswer,
    NotRegistering,
    Prompt,
    Registered,
    SkipAnswer,
    TextAnswer,
)
from bot.domain.surveys import Answered
from bot.qr import qr_png
from handlers.whatsapp.campaigns import CAMPAIGN, Campaigns
from handlers.whatsapp.campaigns import WORDS as CAMPAIGN_WORDS
from handlers.whatsapp.channel import Option, WhatsAppChannel, wa_link
from handlers.whatsapp.counter import SALE_WORDS, Counter
from handlers.whatsapp.office import FOLLOW_UP, REMOVE, WINBACK, Office
from handlers.whatsapp.privacy import FORGET, LANGUAGE, NOTIFY, Privacy
from handlers.whatsapp.replies import Replies
from handlers.whatsapp.rewards import COUPON, REDEEM, REWARD, Rewards
from handlers.whatsapp.updates import CHANNEL, Incoming

CARD = re.compile(r"\bc_([A-Za-z0-9]{4,16})\b")
REDEMPTION = re.compile(r"\br_([A-Za-z0-9]{4,16})\b")
REDEEM_WORDS = frozenset({"canjear", "redeem", "/redeem", "/canjear"})
REFERRAL = re.compile(r"\bref_([A-Za-z0-9]{4,16})\b")
STAFF_INVITE = re.compile(r"\bstaff_([A-Za-z0-9_-]{8,64})\b")
WORDS = {
    "saldo": "balance",
    "puntos": "balance",
    "balance": "balance",
    "tarjeta": "card",
    "card": "card",
    "premios": "rewards",
    "rewards": "rewards",
    "invitar": "invite",
    "invite": "invite",
    "ayuda": "help",
    "help": "help",
    "menu": "help",
    "menú": "help",
    "start": "help",
    "baja": "stop",
    "stop": "stop",
    "avisos": "notifications",
    "notifications": "notifications",
    "datos": "mydata",
    "mydata": "mydata",
    "olvidar": "forget",
    "forget": "forget",
    "idioma": "language",
    "language": "language",
}
MENU = ("balance", "card", "rewards", "invite", "notifications", "language", "mydata", "forget")
CONSENT, SKIP, NAME = "consent:", "skip", "name"
SURVEY = "survey:"


class Conversation:
    def __init__(self, services: Services, channel: WhatsAppChannel) -> None:
        self._services = services
        self._replies = Replies(services, channel)
        self._counter = Counter(self._replies)
        self._rewards = Rewards(self._replies, self.link)
        self._privacy = Privacy(self._replies)
        self._office = Office(self._replies, self.link)
        self._campaigns = Campaigns(self._replies)
        business = services.settings.whatsapp_business_number
        assert business is not None
        self._business_number = business

    def link(self, text: str) -> str:
        """A wa.me link that opens a chat with the shop, `text` typed in."""
        return wa_link(self._business_number, text)

    async def handle(self, message: Incoming) -> None:
        identity = Identity(CHANNEL, message.person)
        if message.preference is not None:
            await self._marketing_preference(message, message.preference)
            return
        if message.kind == "reaction":  # a 👍 on a message asks for nothing
            return
        if message.kind == "unread":
            await self._say_in_their_language(identity, "whatsapp/not_read")
            return
        if message.choice is not None and not _understood(message.choice):
            await self._say_in_their_language(identity, "problems/stale_button")
            return
        text = message.text.strip()
        default = Language(self._services.settings.default_language)
        actor = await self._services.staff.actor(identity)
        if not actor.is_staff and message.phone and message.person != message.phone[1:]:
            # OWNER_PHONES name numbers; a person known by a business-scoped id is an owner
            # when the number WhatsApp gives with the message is one of them.
            by_phone = await self._services.staff.actor(Identity(CHANNEL, message.phone[1:]))
            actor = by_phone if by_phone.role is Role.OWNER else actor
        if actor.is_staff:
            if message.choice and message.choice.startswith(("sale:ok:", "sale:no:")):
                await self._counter.tapped(identity, default, actor, message.choice)
                return
            if message.choice and message.choice.startswith(REMOVE):
                await self._office.remove(identity, default, actor, message.choice)
                return
            if message.choice and message.choice.startswith(WINBACK):
                await self._office.winback(identity, default, actor, message.choice)
                return
            if message.choice and message.choice.startswith(FOLLOW_UP):
                await self._office.follow_up(identity, default, actor, message.choice)
                return
            if message.choice and message.choice.startswith(REDEEM):
                await self._rewards.redeem(identity, default, actor, message.choice)
                return
            card, code = CARD.search(text), REDEMPTION.search(text)
            if card:
                await self._counter.open_card(identity, default, actor, card[1])
                return
            if code:
                await self._rewards.review(identity, default, code[1])
                return
            if message.choice and message.choice.startswith(CAMPAIGN):
                await self._campaigns.tapped(identity, default, actor, message.choice)
                return
            if await self._campaigns.text(identity, default, actor, text):
                return
            first, *args = text.split() or [""]
            if first.lower() in CAMPAIGN_WORDS:
                await self._campaigns.command(identity, default, actor, first.lower())
                return
            if first.lower() in SALE_WORDS:
                await self._counter.typed_sale(identity, default, actor, args)
                return
            if first.lower() in REDEEM_WORDS and len(args) == 1:
                await self._rewards.review(identity, default, args[0])
                return
            if await self._office.handle(identity, default, actor, first, args, message.id):
                return
            if await self._counter.amount(identity, default, actor, text):
                return
        invite = STAFF_INVITE.search(text)
        if invite:
            await self._join_staff(identity, default, invite[1], message.profile_name or "")
            return
        if await self._services.registration.is_registering(identity):
            await self._show(
                identity, await self._services.registration.answer(identity, _answer(message))
            )
            return
        member = await self._services.membership.member(identity)
        if member is None:
            if actor.is_staff:
                await self._replies.say(identity, default, "whatsapp/staff_menu")
                return
            elsewhere = await self._services.membership.offer_link(identity, message.phone)
            if elsewhere is not None:
                await self._replies.say(identity, elsewhere.language, "whatsapp/link_offered")
                return
            referral = REFERRAL.search(text)
            prompt = await self._services.registration.start(
                identity,
                default,
                message.profile_name,
                referral[1] if referral else None,
                message.phone,
            )
            if isinstance(prompt, Prompt):
                await self._ask(identity, prompt)
            else:
                await self._menu(identity, prompt.customer)
            return
        await self._as_member(identity, member, message, text)

    async def slow_down(self, message: Incoming) -> None:
        await self._say_in_their_language(Identity(CHANNEL, message.person), "problems/slow_down")

    async def _say_in_their_language(self, identity: Identity, template: str) -> None:
        """A member's language, or the shop's for anybody else."""
        member = await self._services.membership.member(identity)
        language = member.language if member else Language(self._services.settings.default_language)
        await self._replies.say(identity, language, template)

    async def _marketing_preference(self, message: Incoming, preference: str) -> None:
        """Offers stopped (or resumed) in WhatsApp's own settings: at once, and silently, as
        the person already saw WhatsApp's confirmation; for the member whichever id Meta
        names them by (business-scoped id, number, or the number they gave)."""
        identities = [Identity(CHANNEL, message.person)]
        if message.phone:
            identities.append(Identity(CHANNEL, message.phone.lstrip("+")))
        member = await self._services.membership.known_as(identities, message.phone)
        if member is not None and preference in ("stop", "resume"):
            granted = preference == "resume"
            await self._services.membership.set_consent(member, ConsentTopic.PROMOTIONS, granted)

    async def _as_member(
        self, to: Identity, member: Customer, message: Incoming, text: str
    ) -> None:
        language = member.language
        surveys = self._services.surveys
        if message.choice and message.choice.startswith(LANGUAGE):
            await self._privacy.set_language(to, member, message.choice)
            return
        if message.choice and message.choice.startswith(NOTIFY):
            await self._privacy.toggle(to, member, message.choice)
            return
        if message.choice and message.choice.startswith(FORGET):
            await self._privacy.forget(to, member, message.choice)
            return
        if message.choice and message.choice.startswith((REWARD, COUPON)):
            await self._rewards.chosen(to, member, message.choice)
            return
        if message.choice and message.choice.startswith(SURVEY):
            _, survey_id, answer = message.choice.split(":")
            await self._survey_answer(to, member, int(survey_id), answer)
            return
        typed = await surveys.answer_typed(to, text)
        if typed is not None:
            await self._after_score(to, member, typed)
            return
        if await surveys.awaiting_reason(to):
            answered = await surveys.give_reason(to, text)
            if answered is not None:
                await self._replies.say(to, language, "surveys/thanks", gave_reason=True)
                return
        word = WORDS.get((message.choice or text).lower().lstrip("/"))
        if word == "balance":
            standing = await self._services.membership.standing(member)
            await self._replies.say(to, language, "balance", standing=standing, name=member.name)
        elif word == "card":
            await self._card(to, member)
        elif word == "invite":
            await self._invite(to, member)
        elif word == "rewards":
            await self._rewards.show(to, member)
        elif word == "stop":
            await self._services.membership.set_consent(member, ConsentTopic.PROMOTIONS, False)
            await self._replies.say(to, language, "whatsapp/stopped")
        elif word == "mydata":
            await self._privacy.my_data(to, member)
        elif word == "forget":
            await self._privacy.ask_forget(to, member)
        elif word == "language":
            await self._privacy.ask_language(to, member)
        elif word == "notifications":
            await self._privacy.notifications(to, member)
        else:
            await self._menu(to, member)

    async def _survey_answer(
        self, to: Identity, member: Customer, survey_id: int, answer: str
    ) -> None:
        surveys = self._services.surveys
        if answer == SKIP:
            if await surveys.give_reason(to, None) is not None:
                await self._replies.say(to, member.language, "surveys/thanks", gave_reason=False)
            return
        await self._after_score(to, member, await surveys.answer(to, survey_id, int(answer)))

    async def _after_score(
        self, to: Identity, member: Customer, outcome: Answered | Refused
    ) -> None:
        if isinstance(outcome, Refused):
            await self._replies.refuse(to, member.language, outcome)
            return
        survey_id = outcome.survey.id
        skip = Option(f"{SURVEY}{survey_id}:{SKIP}", self._replies.label(member.language, "skip"))
        await self._replies.say(
            to,
            member.language,
            "surveys/ask_reason",
            [skip],
            score=outcome.survey.score,
            detractor=outcome.detractor,
            ask_what_would_help=outcome.ask_what_would_help,
        )

    async def _menu(self, to: Identity, member: Customer) -> None:
        language = member.language
        words = self._services.messages.label_map(language, "menu_words")
        options = [Option(name, words[name]) for name in MENU]
        await self._replies.say(to, language, "whatsapp/menu", options, name=member.name)

    async def _card(self, to: Identity, member: Customer) -> None:
        caption = self._services.messages.render(
            member.language, "card", name=member.name, member_code=member.member_code
        )
        await self._replies.photo(to, qr_png(self.link(f"c_{member.member_code}")), caption)

    async def _invite(self, to: Identity, member: Customer) -> None:
        status = await self._services.membership.referral_link(member)
        program = self._services.program
        await self._replies.say(
            to,
            member.language,
            "invite",
            code=status.code,
            link=self.link(f"ref_{status.code}"),
            friends_joined=status.friends_joined,
            referrer_points=program.referral.referrer_points,
            referred_points=program.referral.referred_points,
            shop=program.shop.name,
        )

    async def _join_staff(self, to: Identity, language: Language, token: str, name: str) -> None:
        outcome = await self._services.staff.accept(to, token, name, language)
        if isinstance(outcome, Refused):
            await self._replies.refuse(to, language, outcome)
            return
        await self._replies.say(to, language, "staff/welcome", name=outcome.member.name)

    async def _show(self, to: Identity, outcome: AnswerOutcome) -> None:
        if isinstance(outcome, Prompt):
            await self._ask(to, outcome)
        elif isinstance(outcome, Registered):
            customer = outcome.customer
            await self._replies.say(
                to,
                customer.language,
                "registration/done",
                name=customer.name,
                shop=self._services.program.shop.name,
                consented=customer.promotions_consent,
                referrer_name=outcome.referrer.name if outcome.referrer else None,
            )
            await self._card(to, customer)
        elif isinstance(outcome, AlreadyMember):
            await self._menu(to, outcome.customer)
        elif isinstance(outcome, NotRegistering):
            await self._replies.say(
                to, Language(self._services.settings.default_language), "not_a_member"
            )

    async def _ask(self, to: Identity, prompt: Prompt) -> None:
        draft = prompt.draft
        language = draft.language
        options = []
        if draft.step is RegistrationStep.NAME and draft.suggested_name:
            options = [Option(NAME, draft.suggested_name)]
        elif draft.step in (RegistrationStep.PHONE, RegistrationStep.BIRTHDAY):
            options = [Option(SKIP, self._replies.label(language, "skip"))]
        elif draft.step is RegistrationStep.CONSENT:
            options = [
                Option(f"{CONSENT}yes", self._replies.label(language, "yes")),
                Option(f"{CONSENT}no", self._replies.label(language, "no")),
            ]
        problem = prompt.problem
        await self._replies.say(
            to,
            language,
            f"registration/ask_{draft.step.value}",
            options,
            problem=self._services.messages.render(language, f"problems/{problem}")
            if problem
            else None,
            suggested_name=draft.suggested_name,
        )


def _understood(choice: str) -> bool:
    """A tap this bot's buttons carry: an old one's or a forged one's id gets one polite
    "this button no longer works", never an error."""
    return taps.decode(choice) is not None or choice in (NAME, SKIP) or choice in WORDS


def _answer(message: Incoming) -> TextAnswer | SkipAnswer | ConsentAnswer:
    if message.choice == SKIP:
        return SkipAnswer()
    if message.choice and message.choice.startswith(CONSENT):
        return ConsentAnswer(message.choice == f"{CONSENT}yes")
    return TextAnswer(message.text)
