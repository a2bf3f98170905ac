"""Renderers: every format opens, shows the report, and leaks no personal data."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import json
import logging
import sys
import warnings
import zipfile
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from openpyxl import load_workbook

import report_fixtures as rf
from jianyi_flow import MemoryStore, ValidationError
from jianyi_flow.render import (
    FORMATS,
    INSTALL_HINT,
    MissingExtra,
    analysis_report,
    excerpt_report,
    render,
    render_html,
    render_markdown,
    render_text,
)
from jianyi_flow.render.charts import charts
from jianyi_flow.render.markdown import escape
from jianyi_flow.render.text import display_width
from jianyi_flow.report import CampaignReport, build_report

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def built() -> rf.Built:
    return rf.build()


@pytest.fixture(scope="module")
def report(built: rf.Built) -> CampaignReport:
    return build_report(built.campaign, built.store, rf.NOW)


@pytest.fixture(scope="module")
def unmasked(built: rf.Built) -> CampaignReport:
    return build_report(built.campaign, built.store, rf.NOW, unmasked=True, actor=rf.OFFICE)


@pytest.fixture(scope="module")
def outputs(report: CampaignReport, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("masked")
    written = {fmt: render(report, fmt, out / f"report.{fmt}") for fmt in FORMATS}
    written["zip"] = render(report, "csv", out / "report.zip")
    return written


def xlsx_text(path: Path) -> str:
    workbook = load_workbook(path)
    return "\n".join(str(cell) for sheet in workbook for row in sheet.iter_rows(values_only=True)
                     for cell in row if cell is not None)


def all_text(fmt: str, path: Path) -> str:
    """Everything a reader of the output could see, as one string."""
    if fmt == "xlsx":
        return xlsx_text(path)
    if fmt == "csv":
        return "\n".join(p.read_text(encoding="utf-8-sig") for p in sorted(path.iterdir()))
    if fmt == "zip":
        with zipfile.ZipFile(path) as archive:
            return "\n".join(archive.read(n).decode("utf-8-sig") for n in archive.namelist())
    return path.read_text(encoding="utf-8")


# --- personal data -------------------------------------------------------------------------------


def test_no_output_contains_a_phone_an_address_or_a_confidential_name(
        outputs: dict[str, Path], built: rf.Built, report: CampaignReport) -> None:
    texts = {fmt: all_text(fmt, path) for fmt, path in outputs.items()}
    texts["excerpt()"] = excerpt_report(report)
    texts["analysis()"] = analysis_report(report)
    assert set(texts) >= {"text", "md", "html", "csv", "zip", "xlsx", "json", "excerpt", "analysis"}
    for fmt in ("excerpt", "excerpt()", "json"):
        assert "市民01" in texts[fmt], fmt  # the proposers are there, masked: a non-confidential name shows
    for fmt, text in texts.items():
        for secret in (*built.phones, *built.addresses, rf.CONFIDENTIAL_NAME):
            assert secret not in text, f"{secret} leaked into {fmt}"


def test_unmasked_json_and_excerpt_show_the_proposers(unmasked: CampaignReport, tmp_path: Path) -> None:
    text = render(unmasked, "json", tmp_path / "r.json").read_text(encoding="utf-8")
    excerpt = excerpt_report(unmasked)
    for n in (1, 2, 4):
        for content in (text, excerpt):
            assert rf.phone_of(n) in content
    assert rf.CONFIDENTIAL_NAME in text and rf.CONFIDENTIAL_NAME in excerpt
    assert "脱敏" not in excerpt.splitlines()[4]


# --- HTML ----------------------------------------------------------------------------------------


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.headers: list[str] = []
        self.sections: list[str] = []
        self._in_th = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "img":
            self.images.append(found.get("src") or "")
        if tag == "section":
            self.sections.append(found.get("id") or "")
        self._in_th = tag == "th"

    def handle_endtag(self, tag: str) -> None:
        self._in_th = False

    def handle_data(self, data: str) -> None:
        if self._in_th:
            self.headers.append(data)


def parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    page.close()
    return page


def pngs(page: _Page) -> Iterator[bytes]:
    for src in page.images:
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix)
        yield base64.b64decode(src[len(prefix):], validate=True)


def test_html_page_parses_and_embeds_three_png_charts(outputs: dict[str, Path]) -> None:
    html = outputs["html"].read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    page = parse(html)
    images = list(pngs(page))
    assert len(images) == 3
    assert all(png.startswith(PNG) for png in images)
    assert {"charts", "by_area", "overdue", "quota", "organisation_award"} <= set(page.sections)
    assert "逾期工作日" in page.headers and "采纳率" in page.headers
    assert "src=\"http" not in html and "<script" not in html  # self-contained, nothing fetched


def test_html_without_cjk_font_labels_by_code_with_a_legend(report: CampaignReport) -> None:
    page = parse(render_html(report, font=None))
    assert "legend" in page.sections


def test_html_with_a_named_font_that_is_missing_neither_warns_nor_fails(
        report: CampaignReport, caplog: pytest.LogCaptureFixture) -> None:
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        html = render_html(report, font="Noto Sans CJK SC")  # Chinese labels, whether or not the font exists
    assert not [w for w in caught if "Glyph" in str(w.message) or "findfont" in str(w.message)]
    assert not [r for r in caplog.records if "findfont" in r.getMessage()]
    page = parse(html)
    assert "legend" not in page.sections
    assert all(png.startswith(PNG) for png in pngs(page))


def test_charts_for_an_empty_campaign(built: rf.Built) -> None:
    empty = build_report(built.campaign, MemoryStore(), rf.NOW)
    drawn = charts(empty, font=None)
    assert [c.name for c in drawn] == ["arrivals", "outcomes_by_area", "on_time_by_unit"]
    assert all(c.png.startswith(PNG) for c in drawn)


def test_every_format_renders_an_empty_campaign(built: rf.Built, tmp_path: Path) -> None:
    empty = build_report(built.campaign, MemoryStore(), rf.NOW)
    for fmt in FORMATS:
        path = render(empty, fmt, tmp_path / f"empty.{fmt}")
        assert path.exists()
    assert "本期无摘报建议" in excerpt_report(empty)
    assert empty.on_time_rate is None and "—" in render_text(empty)


# --- XLSX ----------------------------------------------------------------------------------------


def test_xlsx_reads_back_with_chinese_sheets_and_headers(outputs: dict[str, Path]) -> None:
    workbook = load_workbook(outputs["xlsx"])
    assert workbook.sheetnames[:4] == ["概况", "按办理状态", "按收件阶段", "按周收件"]
    for name in ("按方面", "各环节按时办理", "各主办单位按时办理", "逾期清单", "推荐任务完成情况", "满意度",
                 "奖励备选建议", "组织奖候选单位"):
        assert name in workbook.sheetnames
    areas = workbook["按方面"]
    rows = list(areas.iter_rows(values_only=True))
    assert rows[0] == ("代码", "方面", "建议数", "采纳", "部分采纳", "不予采纳", "未决定", "采纳率")
    assert rows[1][:4] == ("A1", "产业发展", 7, 4)
    rate = areas.cell(row=2, column=8)
    assert rate.value == pytest.approx(4 / 6) and rate.number_format == "0.0%"
    overdue = list(workbook["逾期清单"].iter_rows(values_only=True))
    assert overdue[1][0] == "s08" and overdue[1][-1] == 19
    assert overdue[1][5] == dt.datetime(2024, 11, 25, 23, 59, 59)  # Shanghai wall-clock time, no zone


# --- CSV -----------------------------------------------------------------------------------------


def test_csv_directory_has_one_bom_file_per_table(outputs: dict[str, Path]) -> None:
    files = sorted(outputs["csv"].iterdir())
    assert files[0].name == "01_overview.csv"
    assert all(f.read_bytes().startswith(b"\xef\xbb\xbf") for f in files)
    by_state = next(f for f in files if f.name.endswith("_by_state.csv"))
    rows = list(csv.reader(io.StringIO(by_state.read_text(encoding="utf-8-sig"))))
    assert rows[0] == ["状态代码", "状态", "件数"]
    assert ["rated", "已评价", "21"] in rows
    with zipfile.ZipFile(outputs["zip"]) as archive:
        assert sorted(archive.namelist()) == [f.name for f in files]
        assert archive.read(by_state.name) == by_state.read_bytes()


# --- text and Markdown ---------------------------------------------------------------------------


def test_text_view_aligns_chinese_columns(report: CampaignReport) -> None:
    lines = render_text(report).splitlines()
    start = lines.index("【按方面】")
    block = lines[start + 1:start + 10]  # header, rule, seven areas
    widths = {display_width(line) for line in block}
    assert len(widths) == 1, block  # the last column (a rate) is right-aligned: every line ends together
    assert "产业发展" in block[2] and block[2].endswith("66.7%")


def test_text_view_can_cut_long_tables(report: CampaignReport) -> None:
    text = render_text(report, max_rows=3)
    assert "……另有 10 行未显示" in text  # by_state has 13 rows


def test_markdown(report: CampaignReport, outputs: dict[str, Path]) -> None:
    md = render_markdown(report)
    assert md.startswith("# 人民建议专题征集活动报告：开启新篇章 重庆向未来")
    assert "## 按方面" in md and "| A1 | 产业发展 | 7 | 4 | 0 | 2 | 1 | 66.7% |" in md
    assert outputs["md"].read_text(encoding="utf-8") == md
    assert escape("a|b\nc") == "a\\|b<br>c"


def test_json_file_is_to_dict(report: CampaignReport, outputs: dict[str, Path]) -> None:
    assert json.loads(outputs["json"].read_text(encoding="utf-8")) == json.loads(json.dumps(report.to_dict()))


# --- summary-phase documents ----------------------------------------------------------------------


def test_excerpt_report(report: CampaignReport) -> None:
    text = excerpt_report(report)
    assert text.startswith("# 人民建议摘报")
    assert "共摘报建议 3 件" in text
    order = [text.index(t) for t in ("推行涉企审批一网通办", "建设永川科技创新服务平台", "培育汽车零部件产业集群")]
    assert order == sorted(order)  # special tier, first tier, then the plain excerpt
    assert "李\\*\\*" in text and "奖励备选等次：特等" in text
    assert "### 存在问题" in text and "推荐单位：胜利路街道" in text


def test_analysis_report(report: CampaignReport) -> None:
    text = analysis_report(report)
    assert text.startswith("# 「开启新篇章 重庆向未来」人民建议专题征集活动分析报告")
    assert "共收到人民建议 30 件（启动阶段 2 件，实施阶段 28 件）" in text
    assert "采纳率 66.7%" in text and "按时办理率 95.0%" in text and "满意率 95.2%" in text
    assert "### 产业发展" in text and "《永川区科技创新服务平台建设实施方案》" in text
    assert "## 五、典型案例" in text and "「培育汽车零部件产业集群」" in text.split("## 五、典型案例")[1]
    assert "1. 胜利路街道" in text and "逾期未办结：区交通运输局 1 件，区征集办 1 件。" in text


# --- formats and optional dependencies -------------------------------------------------------------


def test_unknown_format(report: CampaignReport, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="known formats"):
        render(report, "pdf", tmp_path / "r.pdf")


@pytest.mark.parametrize(("module", "fmt"), [("openpyxl", "xlsx"), ("matplotlib", "html")])
def test_missing_optional_dependency_says_how_to_install(
        report: CampaignReport, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: str, fmt: str) -> None:
    for name in [m for m in sys.modules if m == module or m.startswith(module + ".")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    with pytest.raises(MissingExtra, match="reports") as caught:
        render(report, fmt, tmp_path / f"r.{fmt}")
    assert INSTALL_HINT in str(caught.value)
    assert isinstance(caught.value, ImportError)
