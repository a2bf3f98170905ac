"""CSV: one file per table, in a directory or a zip archive.

Files are UTF-8 *with* a byte-order mark: Excel, which is what the office opens CSV with,
reads BOM-less UTF-8 as the local ANSI code page and shows Chinese as mojibake.  Empty
cells stay empty (not ``—``) so the files load cleanly into other tools too.  A text cell
that a spreadsheet would read as a formula (``=``, ``+``, ``-``, ``@``...) gets a ``'`` in
front (:mod:`._formula`); numbers, dates and rates are written as they are.
"""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

from ..report import CampaignReport
from ._formula import neutral_text
from ._tables import Cell, Kind, Table, format_cell, tables

ENCODING = "utf-8-sig"


def file_name(index: int, table: Table) -> str:
    """``01_overview.csv``: numbered so a directory listing keeps the report's order."""
    return f"{index:02d}_{table.name}.csv"


def csv_cell(value: Cell, kind: Kind) -> str:
    """A cell as CSV text: empty for nothing, a text neutralised against formula injection."""
    if value is None:
        return ""
    if isinstance(value, str):
        return neutral_text(value)
    return format_cell(value, kind)


def table_csv(table: Table) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([neutral_text(c.header) for c in table.columns])
    for row in table.rows:
        writer.writerow([csv_cell(v, c.kind) for v, c in zip(row, table.columns, strict=True)])
    return buf.getvalue()


def csv_files(report: CampaignReport) -> dict[str, bytes]:
    """File name → encoded CSV content, for every table."""
    return {file_name(i, t): table_csv(t).encode(ENCODING) for i, t in enumerate(tables(report), start=1)}


def write_csv(report: CampaignReport, out_path: str | Path) -> Path:
    """Write the tables under ``out_path``: a ``.zip`` archive if it ends so, else a directory."""
    out = Path(out_path)
    files = csv_files(report)
    if out.suffix.lower() == ".zip":
        out.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, data in files.items():
                archive.writestr(name, data)
        return out
    out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (out / name).write_bytes(data)
    return out
