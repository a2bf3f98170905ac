"""The report as Markdown (for a wiki, a merge request, or pandoc to Word).

Markdown passes HTML through: a title written as ``<img src=x onerror=...>`` would be live
markup in every viewer that renders the report.  Every text is escaped (:func:`escape`):
``&``, ``<`` and ``>`` become character references, so markup shows as the text it is,
and the brackets that start a link or an image are backslash-escaped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..report import CampaignReport
from ._tables import Kind, Table, format_cell, overview, tables

_BACKSLASHED = re.compile(r"([\\|\[\]])")
_REFERENCES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


def escape(text: str) -> str:
    """Make ``text`` safe inside a Markdown table cell and as plain Markdown text.

    ``&``, ``<`` and ``>`` become ``&amp;``, ``&lt;`` and ``&gt;`` (no HTML gets through);
    backslashes, pipes and square brackets are backslash-escaped (no cell is split, no
    link or image is made); line breaks become ``<br>``, the one markup written here.
    """
    text = _BACKSLASHED.sub(r"\\\1", text.translate(_REFERENCES))
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "<br>")


def pipe_table(headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[bool]) -> list[str]:
    lines = ["| " + " | ".join(escape(h) for h in headers) + " |",
             "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    lines += ["| " + " | ".join(escape(c) for c in row) + " |" for row in rows]
    return lines


def table_markdown(table: Table, level: int = 2) -> list[str]:
    lines = [f"{'#' * level} {table.title}", ""]
    if table.rows:
        numeric = [c.kind in (Kind.INT, Kind.RATE, Kind.NUMBER) for c in table.columns]
        lines += pipe_table([c.header for c in table.columns],
                            [[format_cell(v, c.kind) for v, c in zip(row, table.columns, strict=True)]
                             for row in table.rows], numeric)
    else:
        lines.append("（无）")
    if table.note:
        lines += ["", escape(table.note)]
    lines.append("")
    return lines


def render_markdown(report: CampaignReport) -> str:
    """The whole report: headline figures, then every table."""
    lines = [f"# 人民建议专题征集活动报告：{escape(report.theme)}", ""]
    lines += pipe_table(["项目", "数值"], overview(report), [False, False])
    lines.append("")
    for table in tables(report)[1:]:
        lines += table_markdown(table)
    return "\n".join(lines)
