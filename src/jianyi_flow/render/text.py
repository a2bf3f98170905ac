"""The terminal view (used by the CLI): plain text, columns aligned for Chinese characters.

A CJK character takes two terminal columns, so padding by ``len`` would misalign every
table with Chinese in it; widths here follow Unicode East Asian Width.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from ..report import CampaignReport
from ._tables import Kind, Table, format_cell, overview, tables


def display_width(text: str) -> int:
    """Terminal columns ``text`` takes: wide and fullwidth characters count two."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def _pad(text: str, width: int, right: bool) -> str:
    gap = " " * max(width - display_width(text), 0)
    return gap + text if right else text + gap


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[bool]) -> list[str]:
    """Aligned lines: numbers right-aligned, text left-aligned, two spaces between columns."""
    widths = [display_width(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], display_width(cell))
    lines = ["  ".join(_pad(h, widths[i], numeric[i]) for i, h in enumerate(headers)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(_pad(c, widths[i], numeric[i]) for i, c in enumerate(row)).rstrip())
    return lines


def _table_lines(table: Table, max_rows: int | None) -> list[str]:
    lines = [f"【{table.title}】"]
    if not table.rows:
        lines.append("（无）")
    else:
        shown = table.rows if max_rows is None else table.rows[:max_rows]
        numeric = [c.kind in (Kind.INT, Kind.RATE, Kind.NUMBER) for c in table.columns]
        lines += format_table([c.header for c in table.columns],
                              [[format_cell(v, c.kind) for v, c in zip(row, table.columns, strict=True)]
                               for row in shown], numeric)
        if len(shown) < len(table.rows):
            lines.append(f"……另有 {len(table.rows) - len(shown)} 行未显示")
    if table.note:
        lines.append(table.note)
    return lines


def render_text(report: CampaignReport, *, max_rows: int | None = None) -> str:
    """The whole report as text; ``max_rows`` cuts long tables (the CLI's default view)."""
    pairs = overview(report)
    width = max(display_width(k) for k, _ in pairs)
    lines = [f"人民建议专题征集活动报告 {report.campaign}「{report.theme}」", ""]
    lines += [f"{_pad(k, width, False)}  {v}" for k, v in pairs]
    for table in tables(report)[1:]:
        lines.append("")
        lines += _table_lines(table, max_rows)
    return "\n".join(lines) + "\n"
