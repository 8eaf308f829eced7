"""The owner's CSV exports: customers (with tier, balance, flags, quadrant) and the ledger.

Written the way the shop's spreadsheet reads them: UTF-8 with a byte-order mark (so Excel
does not guess another encoding), dates in ISO 8601 in the shop's time zone, money as plain
decimals in the shop currency, and ";" between columns where the decimal mark is "," (as a
Spanish spreadsheet expects), else ",". A file too large for a chat upload is zipped. Text a
spreadsheet would run as a formula is written so it is shown, not run.
"""

from __future__ import annotations

import zipfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any, TextIO
from zoneinfo import ZoneInfo

# csv, except that a cell a spreadsheet would run as a formula (=, +, -, @ and the like, from
# a customer's name or a staff note) is written as text: the owner opens these files.
from defusedcsv import csv

from bot.clock import Clock
from bot.domain.churn import map_lines
from bot.domain.membership import TIER_WINDOW
from bot.domain.models import Actor
from bot.program import Program
from bot.storage.database import Database
from bot.storage.exports import CustomerRow, ExportRepository, LedgerRow
from bot.storage.staff import AuditLog

# Telegram takes documents from bots up to 50 MB; keep a margin for the upload's framing.
LARGEST_UPLOAD = 45 * 1024 * 1024

CUSTOMER_COLUMNS = (
    "member_code",
    "name",
    "phone",
    "birthday",
    "language",
    "joined_at",
    "promotions_consent",
    "surveys_enabled",
    "reachable",
    "referred_by",
    "tier",
    "balance",
    "visits",
    "spend",
    "last_purchase_at",
    "flags",
    "quadrant",
    "erased_at",
)
LEDGER_COLUMNS = ("id", "at", "member_code", "points", "reason", "actor", "note")


@dataclass(frozen=True)
class ExportFile:
    kind: str  # "customers" or "ledger"
    path: Path
    rows: int


class ExportService:
    def __init__(
        self, database: Database, reader: Database, clock: Clock, program: Program, zone: ZoneInfo
    ) -> None:
        self._writer = database  # for the audit log only
        self._db = reader
        self._clock = clock
        self._program = program
        self._zone = zone
        self.delimiter = ";" if program.shop.decimal_mark == "," else ","

    @asynccontextmanager
    async def files(self, owner: Actor) -> AsyncIterator[list[ExportFile]]:
        """The export files, in a folder that is removed once the caller has sent them. Taking
        every customer's personal data out of the bot is written to the audit log."""
        now = self._clock.now()
        async with self._writer.transaction() as tx:
            await AuditLog(tx).record(owner.label, "export", now, subject="customers,ledger")
        stamp = now.astimezone(self._zone).strftime("%Y-%m-%d")
        with TemporaryDirectory(prefix="loyalty-export-") as folder:
            directory = Path(folder)
            async with self._db.reading() as tx:
                exports = ExportRepository(tx)
                customers = await self._write(
                    "customers",
                    directory / f"customers-{stamp}.csv",
                    CUSTOMER_COLUMNS,
                    (
                        self._customer_cells(row)
                        async for row in exports.customers(
                            now, now - TIER_WINDOW, map_lines(self._program)
                        )
                    ),
                )
                ledger = await self._write(
                    "ledger",
                    directory / f"ledger-{stamp}.csv",
                    LEDGER_COLUMNS,
                    (self._ledger_cells(row) async for row in exports.ledger()),
                )
            yield [zipped_if_large(export) for export in (customers, ledger)]

    async def _write(
        self, kind: str, path: Path, header: tuple[str, ...], rows: AsyncIterator[list[Any]]
    ) -> ExportFile:
        count = 0
        with path.open("w", encoding="utf-8-sig", newline="") as handle:
            writer = _writer(handle, self.delimiter)
            writer.writerow(header)
            async for cells in rows:
                writer.writerow(cells)
                count += 1
        return ExportFile(kind, path, count)

    def _customer_cells(self, row: CustomerRow) -> list[Any]:
        return [
            row.member_code,
            row.name or "",
            row.phone or "",
            row.birthday.as_text() if row.birthday else "",
            row.language,
            self._when(row.joined_at),
            _yes_no(row.promotions_consent),
            _yes_no(row.surveys_enabled),
            _yes_no(row.reachable),
            row.referred_by or "",
            self._program.tier_for(max(row.qualifying_points, 0)).key,
            row.balance,
            row.visits,
            self._program.shop.money.format(row.spend_minor, grouped=False),
            self._when(row.last_purchase_at),
            "|".join(row.flags),
            row.quadrant or "",
            self._when(row.erased_at),
        ]

    def _ledger_cells(self, row: LedgerRow) -> list[Any]:
        return [
            row.id,
            self._when(row.at),
            row.member_code,
            row.points,
            row.reason,
            row.actor,
            row.note or "",
        ]

    def _when(self, moment: datetime | None) -> str:
        return moment.astimezone(self._zone).isoformat() if moment else ""


def _writer(handle: TextIO, delimiter: str) -> Any:
    return csv.writer(handle, delimiter=delimiter, quoting=csv.QUOTE_MINIMAL)


def _yes_no(value: bool) -> str:
    return "yes" if value else "no"


def zipped_if_large(export: ExportFile) -> ExportFile:
    if export.path.stat().st_size <= LARGEST_UPLOAD:
        return export
    archive = export.path.with_suffix(".zip")
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        bundle.write(export.path, export.path.name)
    export.path.unlink()
    return ExportFile(export.kind, archive, export.rows)
