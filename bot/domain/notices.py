"""Messages to someone other than the person who wrote: the customer's receipt after a sale,
a void, a coupon, an alert to the team. Each is written to the outbox in the transaction of
the change that causes it (never lost to a crash after the commit) and sent right after it.

Their template variables are stored, so they are plain JSON: numbers, text, ISO dates, and
small tables (a localised name is {"es": ..., "en": ...}).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.domain.models import Coupon, Customer, Identity, Language
from bot.program import LocalisedText
from bot.storage.database import Transaction
from bot.storage.outbox import NewPush, OutboxRepository

NOTICE = "notice"
# Jinja reads `x.items` on a table as the dict method, not the value: such names are refused.
_SHADOWED = frozenset(name for name in dir(dict) if not name.startswith("_"))


async def tell_customer(
    tx: Transaction, customer: Customer, key: str, template: str, at: datetime, **context: Any
) -> bool:
    """Queue `template` for the customer, once per `key`."""
    push = NewPush(customer.id, NOTICE, key, template, {"context": _checked(context)})
    return await OutboxRepository(tx).enqueue(
        push, at, now_to=(customer.identity, customer.language)
    )


async def tell_person(
    tx: Transaction,
    person: Identity,
    language: Language,
    key: str,
    template: str,
    at: datetime,
    *,
    about: Customer | None = None,
    **context: Any,
) -> bool:
    """Queue `template` for a member of the team (or an owner), once per `key`; `about` is
    the customer whose details it carries."""
    push = NewPush(
        None,
        NOTICE,
        key,
        template,
        {"context": _checked(context)},
        person=person,
        language=language,
        about_customer_id=about.id if about else None,
    )
    return await OutboxRepository(tx).enqueue(push, at)


def localised(text: LocalisedText) -> dict[str, str]:
    return {language.value: text.get(language) for language in Language}


def coupon_facts(coupon: Coupon) -> dict[str, Any]:
    return {
        "percent_off": coupon.percent_off,
        "free_item": coupon.free_item,
        "valid_until": coupon.valid_until.isoformat(),
    }


def customer_facts(customer: Customer) -> dict[str, Any]:
    return {"name": customer.name, "member_code": customer.member_code, "phone": customer.phone}


def _checked(context: dict[str, Any]) -> dict[str, Any]:
    for name, value in context.items():
        assert name not in _SHADOWED, f"{name!r} would read as a dict method in a template"
        if isinstance(value, dict):
            _checked(value)
        else:
            assert value is None or isinstance(value, str | int | float | list), (name, value)
    return context
