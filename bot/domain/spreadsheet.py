"""An .xlsx workbook written row by row (openpyxl's write-only mode: memory stays flat), with
typed cells: dates as dates, money as numbers in the currency's format, text as text (so a
name that starts with "=" is shown, never run). A table longer than a sheet holds continues
on the next sheet, its header repeated.

openpyxl takes seconds for a large shop, so the workbook is written in the side process
(bot.side_process): the bot streams the rows into a file of pickled batches (SheetRows), and
`write_workbook` in the child turns that file into the workbook."""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO
from zoneinfo import ZoneInfo

from openpyxl import Workbook as OpenpyxlWorkbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from bot.domain.money import Currency

SHEET_ROWS = 1_048_576  # Excel's limit, the header included
DATE_FORMAT = "yyyy-mm-dd hh:mm"
SHEET_TITLE_LENGTH = 31  # Excel's limit


@dataclass(frozen=True)
class Amount:
    """Money in minor units, for a cell in the currency's format."""

    minor: int


@dataclass(frozen=True)
class Table:
    title: str
    header: list[str]
    text: list[bool]  # which columns hold text whatever they look like


@dataclass
class SheetRows:
    """The workbook's tables on their way to the side process: each table's rows as pickled
    batches in one file, a None after each table's last batch."""

    path: Path
    tables: list[Table] = field(default_factory=list)
    _file: BinaryIO | None = None

    def start(self, table: Table) -> None:
        if self._file is None:
            self._file = self.path.open("wb")
        self.tables.append(table)

    def add(self, rows: list[list[Any]]) -> None:
        assert self._file is not None
        pickle.dump(rows, self._file, protocol=pickle.HIGHEST_PROTOCOL)

    def end_table(self) -> None:
        assert self._file is not None
        pickle.dump(None, self._file)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def write_workbook(
    path: Path, rows: Path, tables: list[Table], money: Currency, zone: ZoneInfo
) -> int:
    """The workbook of `tables`, their rows read from `rows` (SheetRows' file); the most sheets
    one table took. Runs in the side process."""
    book = Workbook(path, money, zone)
    with rows.open("rb") as source:
        for table in tables:
            book.start(table.title, table.header, table.text)
            while (batch := pickle.load(source)) is not None:
                book.append_many(batch)
    return book.close()


class Workbook:
    def __init__(
        self, path: Path, money: Currency, zone: ZoneInfo, *, sheet_rows: int = SHEET_ROWS
    ) -> None:
        self.path = path
        self._book = OpenpyxlWorkbook(write_only=True)
        self._decimals = money.decimals
        # 1.234,50 EUR as the shop writes it (the spreadsheet's own locale places the marks).
        fraction = "." + "0" * money.decimals if money.decimals else ""
        self._money_format = f'#,##0{fraction} "{money.code}"'
        self._zone = zone
        self._sheet_rows = sheet_rows
        self._sheet: WriteOnlyWorksheet | None = None
        self._title = ""
        self._header: list[str] = []
        self._text: list[bool] = []
        self._rows_in_sheet = 0
        self._sheets_of_table = 0
        self.most_sheets = 0

    def start(self, title: str, header: list[str], text: list[bool]) -> None:
        """A new table: `text` says which columns hold text whatever they look like."""
        self._title, self._header, self._text = title, header, text
        self._sheets_of_table = 0
        self._new_sheet()

    def append(self, cells: list[Any]) -> None:
        if self._rows_in_sheet >= self._sheet_rows:
            self._new_sheet()
        assert self._sheet is not None
        self._sheet.append(
            [self._cell(value, text) for value, text in zip(cells, self._text, strict=True)]
        )
        self._rows_in_sheet += 1

    def append_many(self, rows: list[list[Any]]) -> None:
        for cells in rows:
            self.append(cells)

    def close(self) -> int:
        """Write the file; the most sheets any one table took."""
        self._book.save(self.path)
        return self.most_sheets

    def _new_sheet(self) -> None:
        self._sheets_of_table += 1
        self.most_sheets = max(self.most_sheets, self._sheets_of_table)
        suffix = f" ({self._sheets_of_table})" if self._sheets_of_table > 1 else ""
        title = self._title[: SHEET_TITLE_LENGTH - len(suffix)] + suffix
        self._sheet = self._book.create_sheet(title)
        bold = Font(bold=True)
        header = []
        for name in self._header:
            cell = WriteOnlyCell(self._sheet, value=name)
            cell.font = bold
            header.append(cell)
        self._sheet.append(header)
        self._rows_in_sheet = 1

    def _cell(self, value: Any, text: bool) -> Any:
        """A plain value where openpyxl types it right by itself (a styled cell costs several
        times more to write); a styled or forced one where it would not."""
        assert self._sheet is not None
        if value is None or value == "":
            return None
        if isinstance(value, Amount):
            cell = WriteOnlyCell(self._sheet, value=Decimal(value.minor).scaleb(-self._decimals))
            cell.number_format = self._money_format
            return cell
        if isinstance(value, datetime):
            # Excel has no time zones: the shop's local time, as the owner reads it.
            local = value.astimezone(self._zone).replace(tzinfo=None)
            cell = WriteOnlyCell(self._sheet, value=local)
            cell.number_format = DATE_FORMAT
            return cell
        if text or isinstance(value, str):
            value = str(value)
            if not value.startswith("="):
                return value  # openpyxl writes any other text as text
            cell = WriteOnlyCell(self._sheet, value=value)
            cell.data_type = "s"  # never a formula, whatever the text starts with
            return cell
        return value
