"""Renderers of the campaign report: one function, :func:`render`, and one module per format.

=========  ==========================================  ===========================
format     what is written to ``out_path``             needs
=========  ==========================================  ===========================
text       the terminal view (aligned plain text)      —
md         Markdown                                    —
html       one self-contained page with PNG charts     matplotlib (``reports`` extra)
csv        a directory of CSV files (or a ``.zip``)    —
xlsx       a workbook, one sheet per table             openpyxl (``reports`` extra)
json       :meth:`CampaignReport.to_dict`              —
excerpt    摘报 (Markdown)                              —
analysis   分析报告 (Markdown)                           —
=========  ==========================================  ===========================

The optional packages are imported only by the formats that need them; without them
those formats raise :class:`MissingExtra` saying ``pip install 'jianyi_flow[reports]'``.
Every format shows the report as built: masked unless built unmasked by the collection
office (see :func:`jianyi_flow.report.build_report`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..errors import ValidationError
from ..report import CampaignReport
from ._deps import INSTALL_HINT, MissingExtra
from .csv_tables import csv_files, write_csv
from .documents import analysis_report, excerpt_report
from .json_doc import render_json
from .markdown import render_markdown
from .text import render_text

__all__ = [
    "FORMATS",
    "INSTALL_HINT",
    "MissingExtra",
    "analysis_report",
    "csv_files",
    "excerpt_report",
    "render",
    "render_html",
    "render_json",
    "render_markdown",
    "render_text",
    "write_csv",
    "write_xlsx",
]


def render_html(report: CampaignReport, *, font: str | bool | None = True) -> str:
    """The HTML page (imports matplotlib on first use; see :mod:`.html_page`)."""
    from .html_page import render_html as page

    return page(report, font=font)


def write_xlsx(report: CampaignReport, out_path: str | Path) -> Path:
    """The XLSX workbook (imports openpyxl on first use; see :mod:`.xlsx`)."""
    from .xlsx import write_xlsx as workbook

    return workbook(report, out_path)


def _text_file(make: Callable[[CampaignReport], str]) -> Callable[[CampaignReport, Path], Path]:
    def write(report: CampaignReport, out: Path) -> Path:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(make(report), encoding="utf-8")
        return out

    return write


_WRITERS: dict[str, Callable[[CampaignReport, Path], Path]] = {
    "text": _text_file(render_text),
    "md": _text_file(render_markdown),
    "html": _text_file(render_html),
    "csv": write_csv,
    "xlsx": write_xlsx,
    "json": _text_file(render_json),
    "excerpt": _text_file(excerpt_report),
    "analysis": _text_file(analysis_report),
}

FORMATS: tuple[str, ...] = tuple(_WRITERS)
"""The formats :func:`render` writes."""


def render(report: CampaignReport, fmt: str, out_path: str | Path) -> Path:
    """Write ``report`` in format ``fmt`` (one of :data:`FORMATS`) to ``out_path``; returns the path written.

    Text formats are UTF-8 files; ``csv`` writes a directory, or a zip archive when
    ``out_path`` ends in ``.zip``.  An unknown format raises
    :class:`~jianyi_flow.errors.ValidationError` listing the known ones.
    """
    writer = _WRITERS.get(fmt)
    if writer is None:
        raise ValidationError("fmt", f"unknown report format {fmt!r}; known formats: {', '.join(FORMATS)}")
    return writer(report, Path(out_path))
