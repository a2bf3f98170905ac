"""Issue 20 §5 and §6 over every report format: personal data masked, payloads inert.

The campaign of tests/hostile_report_fixtures.py writes a personal-data pattern or an
injection payload into every free text of its suggestions.  Its report is rendered in the
six formats (text, md, html, json, csv, xlsx) and the two summary documents (excerpt and
analysis, Markdown), and each output is read as its reader would see it (Markdown and HTML
unescaped, the workbook's cell values).

* Masked (the default report), no pattern may appear in any output; built unmasked by the
  collection office, every pattern appears in every output — so the search would see one
  that got through.
* No payload may be live: no CSV cell and no XLSX text cell starting with a formula
  trigger, no formula cell, no HTML element or attribute a citizen wrote, no Markdown
  link or image.  Text and JSON are data: nothing renders them, so payloads are "n/a".

The pattern × format table printed by ``python -m pytest tests/test_report_pii_formats.py -s``
is the one in docs/security.md; the test fails if the two differ.  On main the masked
outputs show every pattern but the proposer's own phone, and the payloads are live in CSV,
XLSX and Markdown.
"""

from __future__ import annotations

import csv
import html
import re
from html.parser import HTMLParser
from pathlib import Path

import openpyxl
import pytest

from hostile_report_fixtures import NOW, OFFICE, PAYLOADS, PII, build
from jianyi_flow.render import render
from jianyi_flow.report import build_report

ROOT = Path(__file__).resolve().parents[1]
FORMATS = ("text", "md", "html", "json", "csv", "xlsx", "excerpt", "analysis")
_FILE = {"text": "r.txt", "md": "r.md", "html": "r.html", "json": "r.json", "csv": "csv", "xlsx": "r.xlsx",
         "excerpt": "excerpt.md", "analysis": "analysis.md"}
MARKDOWN = frozenset({"md", "excerpt", "analysis"})
TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n")
"""OWASP's formula triggers; ``\\n`` too, because XML reading turns a stored ``\\r`` into ``\\n``."""
_MD_ESCAPE = re.compile(r"\\(.)")


def rendered(masked: bool, out: Path) -> dict[str, Path]:
    hostile = build()
    if masked:
        report = build_report(hostile.campaign, hostile.store, NOW)
    else:
        report = build_report(hostile.campaign, hostile.store, NOW, unmasked=True, actor=OFFICE)
    return {fmt: render(report, fmt, out / _FILE[fmt]) for fmt in FORMATS}


def cells(fmt: str, path: Path) -> list[str]:
    """The text cells of a CSV directory or a workbook (values as read back)."""
    if fmt == "csv":
        out: list[str] = []
        for f in sorted(path.glob("*.csv")):
            with f.open(encoding="utf-8-sig", newline="") as handle:
                out += [c for row in csv.reader(handle) for c in row]
        return out
    return [value for value, _ in xlsx_cells(path)]


def xlsx_cells(path: Path) -> list[tuple[str, str]]:
    """Every text or formula cell of a workbook: (value, openpyxl data type: ``s`` text, ``f`` formula...)."""
    book = openpyxl.load_workbook(path)
    return [(c.value, c.data_type) for sheet in book for row in sheet.iter_rows() for c in row
            if isinstance(c.value, str)]


def formula_cells(path: Path) -> list[str]:
    return [value for value, kind in xlsx_cells(path) if kind != "s"]


def seen(fmt: str, path: Path) -> str:
    """What a reader of the output sees: Markdown and HTML unescaped, the cells of CSV and XLSX."""
    if fmt in ("csv", "xlsx"):
        return "\n".join(cells(fmt, path))
    text = path.read_text(encoding="utf-8")
    if fmt in MARKDOWN:
        return html.unescape(_MD_ESCAPE.sub(r"\1", text))
    if fmt == "html":
        return html.unescape(text)
    return text


class _Elements(HTMLParser):
    """Every element and attribute of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _html_is_inert(payload: str, page: str) -> bool:
    parser = _Elements()
    parser.feed(page)
    handlers = [a for _, attrs in parser.tags for a in attrs if a.startswith("on")]
    scripts = [t for t, _ in parser.tags if t == "script"]
    foreign = [attrs for t, attrs in parser.tags if t == "img" and not (attrs.get("src") or "").startswith("data:")]
    return not handlers and not scripts and not foreign and html.unescape(page).count(payload) > 0


def _markdown_is_inert(payload: str, text: str) -> bool:
    raw_html = re.search(r"<(?!br>)[A-Za-z!/?]", text)
    link = re.search(r"(?<!\\)\]\(", text)
    return raw_html is None and link is None and payload in html.unescape(_MD_ESCAPE.sub(r"\1", text))


def _cells_judged(fmt: str, payload: str, path: Path) -> str:
    """``inert``; ``**live**`` if a cell holding the payload is a formula (XLSX) or starts with a
    trigger (CSV: a spreadsheet evaluates it on opening); ``**unquoted**`` for an XLSX text
    cell starting with a trigger (not evaluated on opening, but a formula once edited)."""
    key = payload.strip()
    if fmt == "csv":
        found = [c for c in cells(fmt, path) if key in c]
        assert found, payload
        return "**live**" if any(c.startswith(TRIGGERS) for c in found) else "inert"
    typed = [(value, kind) for value, kind in xlsx_cells(path) if key in value]
    assert typed, payload
    if any(kind != "s" for _, kind in typed):
        return "**live**"
    return "**unquoted**" if any(value.startswith(TRIGGERS) for value, _ in typed) else "inert"


def payload_cell(label: str, fmt: str, payload: str, path: Path) -> str:
    formula = label.startswith("formula")
    if fmt in ("text", "json"):
        return "n/a"
    if fmt in ("csv", "xlsx"):
        if not formula:
            return "n/a"
        return _cells_judged(fmt, payload, path)
    if formula:
        return "n/a"
    if fmt == "html":
        if label.startswith("Markdown"):
            return "n/a"
        return "inert" if _html_is_inert(payload, path.read_text(encoding="utf-8")) else "**live**"
    return "inert" if _markdown_is_inert(payload, path.read_text(encoding="utf-8")) else "**live**"


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Path], dict[str, Path]]:
    base = tmp_path_factory.mktemp("hostile")
    (base / "masked").mkdir()
    (base / "unmasked").mkdir()
    return rendered(True, base / "masked"), rendered(False, base / "unmasked")


def table(rows: list[tuple[str, list[str]]]) -> str:
    lines = ["| pattern or payload | " + " | ".join(FORMATS) + " |", "|---|" + "---|" * len(FORMATS)]
    lines += [f"| {label} | " + " | ".join(row) + " |" for label, row in rows]
    return "\n".join(lines) + "\n"


def test_every_format_masks_personal_data_and_keeps_payloads_inert(
    outputs: tuple[dict[str, Path], dict[str, Path]]
) -> None:
    masked, unmasked = outputs
    seen_masked = {fmt: seen(fmt, p) for fmt, p in masked.items()}
    seen_unmasked = {fmt: seen(fmt, p) for fmt, p in unmasked.items()}
    rows: list[tuple[str, list[str]]] = []
    for label, value in PII.items():
        assert all(value in seen_unmasked[fmt] for fmt in FORMATS), f"{label}: the search would not see it"
        rows.append((label, ["masked" if value not in seen_masked[fmt] else "**shown**" for fmt in FORMATS]))
    for label, payload in PAYLOADS.items():
        rows.append((label, [payload_cell(label, fmt, payload, masked[fmt]) for fmt in FORMATS]))
    figures = table(rows)
    print("\n" + figures)
    assert "**" not in figures, figures
    docs = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    assert figures in docs, "docs/security.md: the masking table differs from this test's; paste the printed one"


def test_no_csv_or_xlsx_cell_starts_with_a_formula_trigger(outputs: tuple[dict[str, Path], dict[str, Path]]) -> None:
    masked, unmasked = outputs
    for out in (masked, unmasked):  # neutralising does not depend on masking
        for fmt in ("csv", "xlsx"):
            assert [c for c in cells(fmt, out[fmt]) if c.startswith(TRIGGERS)] == []
        assert formula_cells(out["xlsx"]) == []


@pytest.mark.parametrize("fmt", ["md", "excerpt", "analysis"])
def test_no_markdown_output_carries_live_html_or_links(
    outputs: tuple[dict[str, Path], dict[str, Path]], fmt: str
) -> None:
    text = outputs[0][fmt].read_text(encoding="utf-8")
    for label, payload in PAYLOADS.items():
        if not label.startswith("formula"):
            assert _markdown_is_inert(payload, text), label
