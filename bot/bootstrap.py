"""The core, assembled: every service built once, from the settings and the program.

Channels (handlers/<channel>/) open the core with `open_services`, add their way of delivering
messages to `services.channels`, and call on the services; the core never imports a channel.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.channels import Channel
from bot.clock import Clock
from bot.config import Settings
from bot.domain.adjustments import AdjustmentService
from bot.domain.after_answers import FollowUpService
from bot.domain.campaigns import CampaignService
from bot.domain.churn import ChurnService
from bot.domain.contact import QuietHours
from bot.domain.expiry import ExpiryService
from bot.domain.exports import ExportService
from bot.domain.fraud import FraudWatch
from bot.domain.insights import InsightsService
from bot.domain.lookup import CustomerLookup
from bot.domain.membership import MembershipService
from bot.domain.models import Identity, Language
from bot.domain.pushes import PushDispatcher
from bot.domain.registration import RegistrationService
from bot.domain.rewards import RewardsService
from bot.domain.rule_starts import note_rule_starts
from bot.domain.sales import SalesService
from bot.domain.staff import StaffService
from bot.domain.surveys import SurveyService
from bot.errors import DATABASE_ERRORS
from bot.flood import FloodGuard
from bot.health import Health
from bot.incoming import IncomingUpdates
from bot.messages import Messages
from bot.program import Program
from bot.scheduled_job import JobParts
from bot.side_process import SideProcess
from bot.storage.database import Database, open_database, open_reader
from bot.storage.outbox import OutboxRepository
from bot.storage.program_history import ProgramHistory
from bot.supervisor import supervise
from bot.timetable import Jobs, start_scheduler, timetable

log = logging.getLogger(__name__)
DISPATCHER = "outbox"


@dataclass(frozen=True)
class Services:
    settings: Settings
    program: Program
    clock: Clock
    messages: Messages
    database: Database
    reader: Database  # read-only, for long reports
    registration: RegistrationService
    membership: MembershipService
    staff: StaffService
    sales: SalesService
    rewards: RewardsService
    lookup: CustomerLookup
    adjustments: AdjustmentService
    churn: ChurnService
    follow_ups: FollowUpService
    campaigns: CampaignService
    surveys: SurveyService
    jobs: Jobs
    dispatcher: PushDispatcher
    insights: InsightsService
    exports: ExportService
    side: SideProcess  # a child process for the charts and the workbook
    flood: FloodGuard
    health: Health
    # Channel name -> the channel, for the outbox to reach people there; each adds itself.
    channels: dict[str, Channel] = field(default_factory=dict)

    def incoming(self, channel: str) -> IncomingUpdates:
        """How a channel's messages are handled once; a message's messages to others go out
        as soon as it is handled."""
        return IncomingUpdates(
            self.database, self.clock, channel, deliver=self.dispatcher.deliver_now
        )


async def open_services(
    settings: Settings, program: Program, clock: Clock, messages: Messages
) -> Services:
    database = await open_database(
        path=settings.database_path, url=settings.postgresql_url, backups=settings.backups
    )
    zone = settings.zone
    expiry = ExpiryService(database, clock, program, zone)
    async with database.transaction() as tx:
        await ProgramHistory(tx).record_if_changed(program.model_dump_json(), clock.now())
        await note_rule_starts(tx, program, clock.now())
    reader = await open_reader(database, path=settings.database_path)
    side = SideProcess()
    churn = ChurnService(database, clock, program)
    staff = StaffService(database, clock, owners(settings), Language(settings.default_language))
    surveys = SurveyService(database, clock, program, zone, churn, staff)
    channels: dict[str, Channel] = {}
    health = Health(clock)
    dispatcher = PushDispatcher(
        database,
        clock,
        channels,
        messages,
        rate_per_second=settings.push_rate_per_second,
        templates=program.whatsapp_templates,
        quiet=QuietHours.of(program.contact, zone),
        configured=health.expects,
    )
    jobs = timetable(
        JobParts(
            settings, program, clock, zone, database, churn=churn, surveys=surveys, staff=staff
        )
    )
    services = Services(
        settings=settings,
        program=program,
        clock=clock,
        messages=messages,
        database=database,
        reader=reader,
        registration=RegistrationService(database, clock, program),
        membership=MembershipService(database, clock, program, expiry),
        staff=staff,
        sales=SalesService(
            database, clock, program, zone, FraudWatch(program, zone, staff.owners_in)
        ),
        rewards=RewardsService(database, clock, program),
        lookup=CustomerLookup(database, clock, program),
        adjustments=AdjustmentService(database, clock, program),
        churn=churn,
        follow_ups=FollowUpService(database, clock, program),
        campaigns=CampaignService(database, clock, program, zone),
        surveys=surveys,
        jobs=Jobs(clock, zone, jobs, dispatcher, database),
        dispatcher=dispatcher,
        insights=InsightsService(reader, clock, program, zone),
        exports=ExportService(database, reader, clock, program, zone, side),
        flood=FloodGuard(clock, settings.flood_burst, settings.flood_refill_per_second),
        health=health,
        side=side,
        channels=channels,
    )
    database.outbox_committed = services.jobs.wake
    return services


async def health_report(services: Services) -> tuple[bool, dict[str, object]]:
    """GET /healthz: alive while every configured task is alive and the database takes a
    write; with each task's state and the outbox's backlog."""
    alive, report = services.health.report()
    now = services.clock.now()
    problem = await services.database.check_writable(now)
    report["database"] = {"writable": problem is None, **({"problem": problem} if problem else {})}
    try:
        async with services.database.reading() as tx:
            pending, oldest = await OutboxRepository(tx).backlog()
    except DATABASE_ERRORS:
        pending, oldest = -1, None
    report["outbox"] = {
        "pending": pending,
        "oldest_pending_seconds": round((now - oldest).total_seconds()) if oldest else 0,
    }
    return alive and problem is None, report


def owners(settings: Settings) -> frozenset[Identity]:
    """OWNER_IDS are Telegram user ids; OWNER_PHONES, WhatsApp numbers (its wa_id: digits)."""
    on_telegram = {Identity("telegram", str(user_id)) for user_id in settings.owner_ids}
    on_whatsapp = {Identity("whatsapp", phone.lstrip("+")) for phone in settings.owner_phones}
    return frozenset(on_telegram | on_whatsapp)


@dataclass
class Background:
    """What the bot does on its own while it runs: the timetable, and the dispatcher that
    delivers the outbox (woken by every commit that queues a message)."""

    scheduler: AsyncIOScheduler
    dispatching: asyncio.Task[None]
    stop: asyncio.Event

    async def end(self, jobs: Jobs) -> None:
        """The push in hand is finished first, while its channel is still open."""
        await jobs.wind_down()
        self.stop.set()
        self.scheduler.shutdown(wait=False)  # this cancels the jobs still running
        await self.dispatching


async def start_background(services: Services) -> Background:
    """Catch up on what was due while the bot was down, then keep the timetable."""
    await services.jobs.catch_up()
    stop = asyncio.Event()
    services.health.expect(DISPATCHER)
    dispatching = asyncio.create_task(
        supervise(DISPATCHER, services.jobs.deliver_forever, stop, services.clock, services.health),
        name=DISPATCHER,
    )
    return Background(start_scheduler(services.jobs, services.settings.zone), dispatching, stop)


async def close_services(services: Services, background: Background | None) -> None:
    if background is not None:
        await background.end(services.jobs)
    await services.jobs.wind_down()
    services.side.close()
    if services.reader is not services.database:
        await services.reader.close()
    await services.database.close()
