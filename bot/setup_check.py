"""`loyalty-bot check-config`: what an operator should know before starting the bot.

It opens (or creates) the database, so a path that cannot be written fails here rather than
at the first sale, and compares the program file with the one the bot last ran with.
"""

from __future__ import annotations

from datetime import date, datetime

from bot.config import Settings
from bot.domain.expiry import add_months
from bot.errors import StorageError
from bot.program import ExpiryMode, Program
from bot.storage.backups import DatabaseInUse, exclusive_use
from bot.storage.database import open_database
from bot.storage.program_history import ProgramHistory
from bot.storage.rewards import RedemptionRepository
from bot.storage.sqlite import pending_migrations


def no_upgrade_under_a_running_bot(settings: Settings) -> None:
    """check-config and run-job open the database as `run` does, which upgrades it: never
    under a running bot of an earlier version, which would go on with tables it does not know.
    (On PostgreSQL, where processes share the database, they are upgraded together: README.)"""
    path = settings.database_path
    if settings.postgresql_url or not path.exists():
        return
    try:
        with exclusive_use(path):
            return
    except DatabaseInUse:
        if pending_migrations(path):
            raise StorageError(
                f"DATABASE_PATH {path}: the loyalty-bot running on it is an earlier version,"
                " and this one would upgrade the database under it; stop that bot, then start"
                " this one (it copies the database, then upgrades it)"
            ) from None


async def check_setup(settings: Settings, program: Program, now: datetime) -> list[str]:
    no_upgrade_under_a_running_bot(settings)
    lines = [f"configuration is valid: {program.shop.name}"]
    database = await open_database(
        path=settings.database_path, url=settings.postgresql_url, backups=settings.backups
    )
    try:
        async with database.reading() as tx:
            previous = await ProgramHistory(tx).latest()
            open_codes = await RedemptionRepository(tx).open_reward_keys(now)
    finally:
        await database.close()
    lines.append(f"database: {database.where} (opened and up to date)")
    lines.append(f"program file: {settings.program_file or 'the built-in sample'}")
    lines.append(f"on its own: {automations(program)}")
    lines.extend(f"warning: {warning}" for warning in start_up_warnings(settings, program))
    before = Program.model_validate_json(previous) if previous else None
    today = now.astimezone(settings.zone).date()
    changes = rules_changes(before, program, open_codes, today=today)
    lines.extend(f"warning: {change}" for change in changes)
    return lines


def start_up_warnings(settings: Settings, program: Program) -> list[str]:
    """What the operator should fix before customers arrive, said by check-config and logged
    at start-up."""
    warnings = []
    if settings.program_file is None:
        warnings.append(
            f"customers will see {program.shop.name}, the built-in sample program: run"
            " loyalty-bot setup to make it yours"
        )
    token = settings.bot_token.get_secret_value().strip() if settings.bot_token else ""
    if token and not settings.owner_ids:
        warnings.append(
            "OWNER_IDS is empty, so nobody can use the owner's commands on Telegram; send /help"
            " to the bot and it tells you your user id"
        )
    if settings.whatsapp_enabled and not settings.owner_phones:
        warnings.append(
            "OWNER_PHONES is empty, so nobody can use the owner's commands on WhatsApp; put the"
            " owner's number there, with its country code"
        )
    return warnings


def rules_changes(
    before: Program | None, after: Program, open_codes: dict[str, int], *, today: date
) -> list[str]:
    """What starting with `after` changes for customers, said so the owner can decide."""
    changes = expiry_changes(before, after, today)
    for key, codes in sorted(open_codes.items()):
        if after.reward(key) is None:
            changes.append(
                f"reward {key!r} is not in the program file, and {codes} open code(s) were"
                " issued for it: they stay valid for what they promised"
            )
    if before is None:
        return changes
    old_tiers = {tier.key: tier for tier in before.tiers}
    new_tiers = {tier.key: tier for tier in after.tiers}
    for key in old_tiers.keys() - new_tiers.keys():
        changes.append(f"tier {key!r} is gone: its members move to the tier their points reach")
    for key in old_tiers.keys() & new_tiers.keys():
        if old_tiers[key].threshold != new_tiers[key].threshold:
            changes.append(
                f"tier {key!r} now starts at {new_tiers[key].threshold} points"
                f" (was {old_tiers[key].threshold}): some members may change tier"
            )
        if old_tiers[key].name != new_tiers[key].name:
            changes.append(f"tier {key!r} is renamed to {new_tiers[key].name.es!r}")
    for reward in before.rewards:
        replacement = after.reward(reward.key)
        if replacement is None:
            changes.append(f"reward {reward.key!r} is removed from the catalogue")
        elif replacement.cost != reward.cost:
            changes.append(
                f"reward {reward.key!r} now costs {replacement.cost} points (was {reward.cost});"
                " codes already issued keep their price"
            )
    return changes


def expiry_changes(before: Program | None, after: Program, today: date) -> list[str]:
    was = before.expiry if before else None
    now = after.expiry
    was_on = was is not None and was.mode is not ExpiryMode.OFF
    if now.mode is ExpiryMode.OFF:
        return ["points expiry is turned off: no more points expire"] if was_on else []
    if not was_on:
        first = add_months(today, now.months)
        return [
            f"points expiry is turned on ({now.mode.value}, {now.months} months), never"
            " retroactively: points members hold today count as earned today, so none expire"
            f" before {first:%d/%m/%Y}"
        ]
    assert was is not None
    if (was.mode, was.months) != (now.mode, now.months):
        return [
            f"points expiry changes from {was.mode.value} after {was.months} months to"
            f" {now.mode.value} after {now.months} months, counted from the day it was turned on"
        ]
    return []


def automations(program: Program) -> str:
    """What the bot will do on its own with these rules, in one line: a program file written
    before an automation existed gets its default, and this says which."""
    expiry, nudges, rules = program.expiry, program.nudges, program.map_actions
    contact, digest, ahead = program.contact, program.digest, program.birthday.days_ahead
    acts = [
        name
        for name, on in (
            ("share link", rules.apostle_share_link),
            ("follow-ups", rules.detractor_follow_up),
            ("tier incentive", rules.mercenary_tier_incentive),
            ("hostage question", rules.hostage_ask),
        )
        if on
    ]
    expiring = f"{expiry.mode.value}, {expiry.months} months"
    nudging = f"at {nudges.near_reward_share:%} of a reward after {nudges.idle_days} idle days"
    parts = [
        f"points expiry {expiring if expiry.mode is not ExpiryMode.OFF else 'off'}",
        f"automatic win-back {'on' if program.churn.automatic_winback else 'off'}",
        f"nudges {nudging if nudges.near_reward_share else 'off'}",
        f"birthday greeting {f'{ahead} days ahead' if ahead else 'on the day'}",
        f"after survey answers: {', '.join(acts) if acts else 'nothing'}",
        f"offers at most {contact.promotions_per_week} a week,"
        f" none from {contact.quiet_from} to {contact.quiet_to} h",
        f"fraud alerts at {program.fraud.sales_per_customer_per_day} sales a day",
        f"owner's digest {f'at {digest.send_hour} h' if digest.enabled else 'off'}",
    ]
    return "; ".join(parts)
