"""An .xlsx workbook written row by row (openpyxl's write-only mode: memory stays flat), with
typed cells: dates as dates, money as numbers in the currency's format, text as text (so a
name that starts with "=" is shown, never run). A table longer than a sheet holds continues
on the next sheet, its header repeated."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
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
        """Rows in one call, for a thread (the bot's event loop goes on meanwhile)."""
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
