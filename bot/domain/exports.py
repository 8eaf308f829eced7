"""The owner's exports: a workbook for people (an .xlsx, one sheet of customers, the ledger on
as many sheets as it needs) and the same two tables as CSV files for tools.

The workbook is typed: dates are dates, money is a number in the shop's currency format, and
phones, codes and names are text (so nothing a customer typed runs as a formula, and no
apostrophe shows). It is written row by row in the side process (bot.domain.spreadsheet says
how) while the bot writes the CSV files, so memory stays flat whatever the ledger's size. The
CSV files are UTF-8 with a byte-order mark (so Excel does not guess another encoding), dates in
ISO 8601 in the shop's time zone, ";" between columns where the decimal mark is "," (as a
Spanish spreadsheet expects), else ","; text a spreadsheet would run as a formula is written so
it is shown, not run. Headers, sheet and file names and the words in cells are in the owner's
language (ExportWording). A file too large for a chat upload is zipped.
"""

from __future__ import annotations

import asyncio
import csv
import re
import zipfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from bot.clock import Clock
from bot.domain.churn import map_lines
from bot.domain.membership import TIER_WINDOW
from bot.domain.models import Actor
from bot.domain.spreadsheet import Amount, SheetRows, Table, write_workbook
from bot.program import Program
from bot.side_process import SideProcess
from bot.storage.database import Database
from bot.storage.exports import CustomerRow, ExportRepository, LedgerRow
from bot.storage.staff import AuditLog

WORKBOOK_LEDGER_ROWS = 200_000  # a longer ledger goes in the CSV file only
BATCH = 2_000  # rows written to the CSV file, and handed on for the workbook, at a time
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
LEDGER_COLUMNS = ("id", "at", "member_code", "points", "reason", "reward", "actor", "note")
TEXT_COLUMNS = frozenset({"member_code", "name", "phone", "birthday", "referred_by", "note"})


@dataclass(frozen=True)
class ExportWording:
    """The owner's words: `words` (labels.j2's export_words) holds the column titles, yes and
    no, sheet and file names; `reasons` the ledger's reasons, `tiers` and `rewards` names by key,
    `quadrants` the map's groups."""

    words: dict[str, str]
    reasons: dict[str, str]
    tiers: dict[str, str]
    rewards: dict[str, str]
    quadrants: dict[str, str]

    def header(self, columns: tuple[str, ...]) -> list[str]:
        return [self.words[column] for column in columns]


@dataclass(frozen=True)
class ExportFile:
    kind: str  # "workbook", "customers" or "ledger"
    path: Path
    rows: int
    sheets: int = 1  # the workbook's sheets of ledger rows
    ledger_left_out: int = 0  # ledger rows the workbook leaves to the CSV file


class ExportService:
    def __init__(
        self,
        database: Database,
        reader: Database,
        clock: Clock,
        program: Program,
        zone: ZoneInfo,
        side: SideProcess,
    ) -> None:
        self._writer = database  # for the audit log only
        self._db = reader
        self._clock = clock
        self._program = program
        self._zone = zone
        self._side = side
        self.delimiter = ";" if program.shop.decimal_mark == "," else ","

    @asynccontextmanager
    async def files(self, owner: Actor, wording: ExportWording) -> AsyncIterator[list[ExportFile]]:
        """The workbook, then the two CSV files, in a folder that is removed once the caller
        has sent them. Taking every customer's personal data out of the bot is written to the
        audit log."""
        now = self._clock.now()
        async with self._writer.transaction() as tx:
            await AuditLog(tx).record(owner.label, "export", now, subject="customers,ledger")
        stamp = now.astimezone(self._zone).strftime("%Y-%m-%d")
        names = wording.words
        self._side.prepare(write_workbook.__module__)
        with TemporaryDirectory(prefix="loyalty-export-") as folder:
            directory = Path(folder)
            book_path = directory / f"{names['workbook']}-{stamp}.xlsx"
            sheets = SheetRows(directory / "workbook-rows.pickle")
            async with self._db.reading() as tx:
                exports = ExportRepository(tx)
                staff = await exports.staff_names()
                ledger_in_book = await exports.ledger_rows() <= WORKBOOK_LEDGER_ROWS
                customers = await self._write(
                    "customers",
                    directory / f"{names['customers']}-{stamp}.csv",
                    CUSTOMER_COLUMNS,
                    wording,
                    sheets,
                    (
                        self._customer_cells(row, wording)
                        async for row in exports.customers(
                            now, now - TIER_WINDOW, map_lines(self._program)
                        )
                    ),
                )
                ledger_rows = (
                    self._ledger_cells(row, wording, staff) async for row in exports.ledger()
                )
                ledger_path = directory / f"{names['ledger']}-{stamp}.csv"
                if ledger_in_book:
                    ledger = await self._write(
                        "ledger", ledger_path, LEDGER_COLUMNS, wording, sheets, ledger_rows
                    )
                    book_sheets = await self._build(book_path, sheets)
                else:
                    # Past WORKBOOK_LEDGER_ROWS the ledger comes as CSV only (the caption says
                    # why: a workbook of a million rows takes minutes to write and to open),
                    # and the workbook is built meanwhile, in the side process.
                    async with asyncio.TaskGroup() as both:
                        building = both.create_task(self._build(book_path, sheets))
                        ledger = await self._write(
                            "ledger", ledger_path, LEDGER_COLUMNS, wording, None, ledger_rows
                        )
                    book_sheets = building.result()
            book = ExportFile(
                "workbook",
                book_path,
                customers.rows + (ledger.rows if ledger_in_book else 0),
                book_sheets,
                ledger_left_out=0 if ledger_in_book else ledger.rows,
            )
            yield [zipped_if_large(export) for export in (book, customers, ledger)]

    async def _build(self, path: Path, sheets: SheetRows) -> int:
        sheets.close()
        money, zone = self._program.shop.money, self._zone
        return await self._side.run(write_workbook, path, sheets.path, sheets.tables, money, zone)

    async def _write(
        self,
        kind: str,
        path: Path,
        columns: tuple[str, ...],
        wording: ExportWording,
        sheets: SheetRows | None,
        rows: AsyncIterator[list[Any]],
    ) -> ExportFile:
        """The CSV file, and the table's rows for the workbook unless `sheets` is None."""
        count = 0
        header = wording.header(columns)
        if sheets is not None:
            text = [column in TEXT_COLUMNS for column in columns]
            sheets.start(Table(wording.words[f"{kind}_sheet"], header, text))
        batch: list[list[Any]] = []
        with path.open("w", encoding="utf-8-sig", newline="") as handle:
            writer = _writer(handle, self.delimiter)
            writer.writerow(header)
            async for cells in rows:
                batch.append(cells)
                if len(batch) >= BATCH:
                    count += self._flush(batch, writer, sheets)
                    batch = []
            count += self._flush(batch, writer, sheets)
        if sheets is not None:
            sheets.end_table()
        return ExportFile(kind, path, count)

    def _flush(self, batch: list[list[Any]], writer: Any, sheets: SheetRows | None) -> int:
        as_text = self._as_text
        writer.writerows([as_text(cell) for cell in cells] for cells in batch)
        if sheets is not None and batch:
            sheets.add(batch)
        return len(batch)

    def _customer_cells(self, row: CustomerRow, wording: ExportWording) -> list[Any]:
        words = wording.words
        tier = self._program.tier_for(max(row.qualifying_points, 0)).key
        return [
            row.member_code,
            row.name or "",
            row.phone or "",
            row.birthday.as_text() if row.birthday else "",
            row.language,
            row.joined_at,
            words["yes"] if row.promotions_consent else words["no"],
            words["yes"] if row.surveys_enabled else words["no"],
            words["yes"] if row.reachable else words["no"],
            row.referred_by or "",
            wording.tiers.get(tier, tier),
            row.balance,
            row.visits,
            Amount(row.spend_minor),
            row.last_purchase_at,
            ", ".join(words.get(flag, flag) for flag in row.flags),
            wording.quadrants.get(row.quadrant, row.quadrant) if row.quadrant else "",
            row.erased_at,
        ]

    def _ledger_cells(
        self, row: LedgerRow, wording: ExportWording, staff: dict[str, str]
    ) -> list[Any]:
        reward = wording.rewards.get(row.reward_key, row.reward_key) if row.reward_key else ""
        return [
            row.id,
            row.at,
            row.member_code,
            row.points,
            wording.reasons.get(row.reason, row.reason),
            reward,
            _who(row.actor, staff, wording),
            row.note or "",
        ]

    def _as_text(self, cell: Any) -> Any:
        """A cell as the CSV writes it: dates in ISO 8601 in the shop's zone, money as the shop
        writes it without grouping."""
        kind = type(cell)
        if kind is int:  # most cells: ten million of them in a large export
            return cell
        if kind is str:
            return shown_not_run(cell)
        if cell is None:
            return ""
        if isinstance(cell, datetime):
            return cell.astimezone(self._zone).isoformat()
        if isinstance(cell, Amount):
            return self._program.shop.money.format(cell.minor, grouped=False)
        return cell


def _who(actor: str, staff: dict[str, str], wording: ExportWording) -> str:
    """A ledger row's actor ("staff:telegram:42") as the owner knows them: by name."""
    role, _, who = actor.partition(":")
    if who in staff:
        return staff[who]
    if role == "owner":
        return wording.words["owner"]
    if role in ("system", "job"):
        return wording.words["program"]
    return actor


# Text a spreadsheet would run as a formula (a customer named "=HYPERLINK(...)", a staff note
# starting with "@"): OWASP's rule for CSV injection, as defusedcsv applies it, kept here because
# defusedcsv's writer checks every cell, numbers and dates too, and so took half the time of a
# million-row export; only text can carry a formula, and only text comes through here.
FORMULA_STARTS = frozenset("=+-@|%")
_A_NUMBER = re.compile(r"-?[0-9,.]+")


def shown_not_run(text: str) -> str:
    if text[:1] in FORMULA_STARTS and not _A_NUMBER.fullmatch(text):
        return "'" + text.replace("|", "\\|")
    return text


def _writer(handle: TextIO, delimiter: str) -> Any:
    return csv.writer(handle, delimiter=delimiter, quoting=csv.QUOTE_MINIMAL)


def zipped_if_large(export: ExportFile) -> ExportFile:
    if export.path.stat().st_size <= LARGEST_UPLOAD:
        return export
    archive = export.path.with_suffix(".zip")
    # The fastest level: the gain of a higher one is a few megabytes; its cost, seconds.
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as bundle:
        bundle.write(export.path, export.path.name)
    export.path.unlink()
    return ExportFile(export.kind, archive, export.rows, export.sheets, export.ledger_left_out)
