"""XLSX: one sheet per table, Chinese headers, numbers kept as numbers.

Rates are stored as fractions with a percent format, so the office can sum and chart them
in Excel; times are written as Asia/Shanghai wall-clock times because Excel has no time
zones.  openpyxl is optional (the ``reports`` extra) and imported only here.

Every text is written as a text cell.  openpyxl stores a string that starts with ``=`` as
a formula, and one of Excel's error literals (``#N/A``...) as an error value; a text that
a spreadsheet would read as a formula gets a ``'`` in front (:mod:`._formula`, as for CSV),
and so does an error literal, so neither can happen to a title written by the public.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

from ..domain.clock import SHANGHAI
from ..report import CampaignReport
from ._deps import MissingExtra
from ._formula import neutral_text
from ._tables import Kind, Table, tables

_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")


def sheet_title(table: Table) -> str:
    """An Excel-safe sheet name (31 characters, none of ``[]:*?/\\``)."""
    return _FORBIDDEN.sub("_", table.title)[:31]


ERROR_LITERALS: tuple[str, ...] = ("#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A")
"""Excel's error values (ECMA-376 Part 1, 18.17.4.1): openpyxl stores a string equal to one as an error cell."""


def text_cell(text: str) -> str:
    """``text`` as a cell value that openpyxl stores as text: neither a formula nor an error value."""
    text = neutral_text(text)
    return "'" + text if text in ERROR_LITERALS else text


def _cell(value: Any, kind: Kind) -> Any:
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, str):
        return text_cell(value)
    if isinstance(value, dt.datetime):
        return value.astimezone(SHANGHAI).replace(tzinfo=None, microsecond=0)
    return value


_FORMATS = {Kind.RATE: "0.0%", Kind.NUMBER: "0.00", Kind.DATETIME: "yyyy-mm-dd hh:mm", Kind.DATE: "yyyy-mm-dd"}


def _display_width(value: Any) -> int:
    text = str(value) if value is not None else ""
    return sum(2 if ord(ch) > 0x2E7F else 1 for ch in text)


def write_xlsx(report: CampaignReport, out_path: str | Path) -> Path:
    """Write the workbook to ``out_path`` (parent directories are created)."""
    try:
        from openpyxl import Workbook
        from openpyxl.styles import Font
    except ImportError as exc:
        raise MissingExtra("openpyxl", "XLSX reports") from exc
    workbook = Workbook()
    first = workbook.active
    if first is not None:
        workbook.remove(first)
    bold = Font(bold=True)
    for table in tables(report):
        sheet = workbook.create_sheet(sheet_title(table))
        sheet.append([text_cell(c.header) for c in table.columns])
        for cell in sheet[1]:
            cell.font = bold
        for row in table.rows:
            sheet.append([_cell(v, c.kind) for v, c in zip(row, table.columns, strict=True)])
        for index, column in enumerate(table.columns, start=1):
            fmt = _FORMATS.get(column.kind)
            width = _display_width(column.header)
            for (cell,) in sheet.iter_rows(min_row=2, min_col=index, max_col=index):
                if fmt is not None and cell.value is not None:
                    cell.number_format = fmt
                width = max(width, min(_display_width(cell.value), 60))
            letter = sheet.cell(row=1, column=index).column_letter
            sheet.column_dimensions[letter].width = width + 2
        if table.note:
            sheet.append([])
            sheet.append([text_cell(table.note)])
        sheet.freeze_panes = "A2"
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    workbook.save(out)
    return out
