"""Renderers: every format opens, shows the report, and leaks no personal data."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import json
import logging
import re
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
from jianyi_flow.domain.calendar import strict_calendar
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
    assert overdue[0][6] == "期限性质" and overdue[1][6] == "正式"
    for name in ("即将到期清单", "异议处理", "延期情况", "按调研论证方式", "按答复方式", "按吸纳转化形式",
                 "原件呈报建议"):
        assert name in workbook.sheetnames
    assert "按版本" not in workbook.sheetnames  # one version only


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
    assert "……另有 11 行未显示" in text  # by_state has 14 rows


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
    assert "采纳率 66.7%" in text and "按时办理率 95.1%" in text and "满意率 95.2%" in text
    assert "### 产业发展" in text and "《永川区科技创新服务平台建设实施方案》" in text
    assert "## 五、典型案例" in text and "「培育汽车零部件产业集群」" in text.split("## 五、典型案例")[1]
    assert "1. 胜利路街道" in text and "逾期未办结：区交通运输局 1 件，区征集办 1 件。" in text
    assert "2024-12-27 10:00 前即将到期：区经济信息委 1 件。" in text
    assert "承办单位提出异议 2 件，异议成立 1 件、不成立 1 件" in text
    assert "申请延期 2 次，批准 1 次（共 20 天）、不予批准 1 次" in text
    assert "按转化形式：完善政策措施 1 件，健全机制制度 1 件。" in text
    assert "以原件呈报：" in text and "书面征求意见 22 件" in text and "短信 12 件" in text
    assert "日历模式：暂定模式" in text and "暂定期限" not in text  # nothing provisional in this campaign


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


# --- provisional deadlines and versions, in every format --------------------------------------------


ROW_FORMATS = ("text", "md", "html", "csv", "xlsx")
"""The formats that draw the report's tables."""


class _Tables(HTMLParser):
    """The rows of every ``<section id=...>`` table of the HTML page, and the header table."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, list[list[str]]] = {}
        self._section = "overview"
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "section":
            self._section = dict(attrs).get("id") or ""
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.setdefault(self._section, []).append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def table_rows(fmt: str, path: Path, name: str, title: str) -> list[list[str]]:
    """The rows (header first) of the table ``name`` / ``title`` as the output in ``fmt`` shows them."""
    if fmt == "csv":
        (found,) = [f for f in path.iterdir() if f.name.endswith(f"_{name}.csv")]
        return list(csv.reader(io.StringIO(found.read_text(encoding="utf-8-sig"))))
    if fmt == "xlsx":
        sheet = load_workbook(path)[title]
        rows = [["" if c is None else str(c) for c in row] for row in sheet.iter_rows(values_only=True)]
        return rows[:rows.index([""] * len(rows[0]))] if [""] * len(rows[0]) in rows else rows  # the note follows
    text = path.read_text(encoding="utf-8")
    if fmt == "html":
        page = _Tables()
        page.feed(text)
        return page.rows.get(name, [])
    if fmt == "md":
        block = text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]
        return [[c.strip() for c in line.strip("|").split(" | ")] for line in block.splitlines()
                if line.startswith("| ")]
    block = text.split(f"【{title}】\n", 1)[1].split("\n\n", 1)[0]
    # no header, no rule, no note; the cells here hold no spaces (a time splits into its day and hour)
    return [line.split() for line in block.splitlines()[2:] if len(line.split()) > 3]


def header_text(fmt: str, path: Path) -> str:
    """The report's header (概况) as the output shows it, one string."""
    if fmt in ("csv", "xlsx"):
        return "\n".join(" ".join(row) for row in table_rows(fmt, path, "overview", "概况"))
    if fmt == "html":
        return "\n".join(" ".join(row) for row in table_rows(fmt, path, "overview", "概况"))
    return path.read_text(encoding="utf-8").split("【" if fmt == "text" else "\n## ", 1)[0]


@pytest.fixture(scope="module")
def provisional_outputs(built: rf.Built, tmp_path_factory: pytest.TempPathFactory
                        ) -> tuple[CampaignReport, dict[str, Path]]:
    report = build_report(built.campaign, rf.provisional(built.store), rf.NOW)
    out = tmp_path_factory.mktemp("provisional")
    return report, {fmt: render(report, fmt, out / f"report.{fmt}") for fmt in FORMATS}


@pytest.mark.parametrize("fmt", ROW_FORMATS)
def test_every_deadline_row_says_whether_it_is_provisional(
        provisional_outputs: tuple[CampaignReport, dict[str, Path]], fmt: str) -> None:
    _, outputs = provisional_outputs
    path = outputs[fmt]
    for name, title, expected in (("overdue", "逾期清单", {"s08": "暂定", "s09": "正式"}),
                                  ("due_soon", "即将到期清单", {"s18": "暂定"})):
        rows = table_rows(fmt, path, name, title)
        if fmt != "text":
            assert rows[0][6] == "期限性质", (fmt, rows[0])
            rows = rows[1:]
        found = {row[0]: row[6 if fmt != "text" else 7] for row in rows}  # text splits the due time in two
        assert found == expected, (fmt, name, rows)


@pytest.mark.parametrize("fmt", ROW_FORMATS)
def test_the_header_shows_the_calendar_mode_and_why_deadlines_are_provisional(
        provisional_outputs: tuple[CampaignReport, dict[str, Path]], fmt: str) -> None:
    report, outputs = provisional_outputs
    header = header_text(fmt, outputs[fmt])
    assert "日历模式" in header and "暂定模式" in header
    assert report.provisional_note is not None and report.provisional_note in header, header


def test_json_and_the_summary_documents_mark_provisional_deadlines(
        provisional_outputs: tuple[CampaignReport, dict[str, Path]]) -> None:
    report, outputs = provisional_outputs
    data = json.loads(outputs["json"].read_text(encoding="utf-8"))
    assert data["calendar_mode"] == "provisional" and data["provisional_note"] == report.provisional_note
    assert [(o["id"], o["provisional"]) for o in data["overdue"]] == [("s08", True), ("s09", False)]
    assert [(o["id"], o["provisional"]) for o in data["due_soon"]] == [("s18", True)]
    analysis = outputs["analysis"].read_text(encoding="utf-8")
    assert "逾期未办结：区交通运输局 1 件（其中暂定期限 1 件），区征集办 1 件。" in analysis
    assert "即将到期：区经济信息委 1 件（其中暂定期限 1 件）。" in analysis
    assert "逾期未办结 2 件（其中暂定期限 1 件）" in analysis
    for document in ("analysis", "excerpt"):
        text = outputs[document].read_text(encoding="utf-8")
        assert "日历模式：暂定模式" in text and f"暂定期限：3 个。{report.provisional_note}" in text


def test_a_strict_report_says_so(built: rf.Built) -> None:
    strict = build_report(built.campaign, built.store, rf.NOW, calendar=strict_calendar())
    assert re.search(r"\n日历模式 +严格模式（只按已发布的放假安排计算期限）\n", render_text(strict))
    assert "日历模式：严格模式" in analysis_report(strict)


@pytest.fixture(scope="module")
def two_version_outputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[rf.TwoVersions, dict[str, Path]]:
    t = rf.two_versions()
    report = build_report(t.campaign, t.store, t.now)
    out = tmp_path_factory.mktemp("versions")
    return t, {fmt: render(report, fmt, out / f"report.{fmt}") for fmt in FORMATS}


@pytest.mark.parametrize("fmt", ROW_FORMATS)
def test_every_format_shows_the_split_by_version(two_version_outputs: tuple[rf.TwoVersions, dict[str, Path]],
                                                 fmt: str) -> None:
    t, outputs = two_version_outputs
    rows = table_rows(fmt, outputs[fmt], "versions", "按版本")
    if fmt != "text":
        assert rows[0][:4] == ["类别", "版本", "建议数", "事件数"]
        rows = rows[1:]
    found = [(r[1], r[2], r[3]) for r in rows]
    assert found == [(t.v1.workflow.version, "1", "3"), (t.v2.workflow.version, "2", "2"),
                     (t.v1.policy_version, "1", "3"), (t.v2.policy_version, "2", "2")]
    assert "2 个（见“按版本”）" in header_text(fmt, outputs[fmt])


def test_json_and_the_analysis_show_the_split_by_version(
        two_version_outputs: tuple[rf.TwoVersions, dict[str, Path]]) -> None:
    t, outputs = two_version_outputs
    data = json.loads(outputs["json"].read_text(encoding="utf-8"))
    assert [(v["version"], v["suggestions"]) for v in data["versions"]["workflow"]] == [
        (t.v1.workflow.version, 1), (t.v2.workflow.version, 2)]
    analysis = outputs["analysis"].read_text(encoding="utf-8")
    assert f"办理流程版本 2 个：{t.v1.workflow.version}（建议 1 件，事件 3 条）" in analysis
    assert f"期限规则版本 2 个：{t.v1.policy_version}（建议 1 件，事件 3 条）" in analysis


def test_a_report_for_one_version_says_so(two_version_outputs: tuple[rf.TwoVersions, dict[str, Path]]) -> None:
    t, _ = two_version_outputs
    only = build_report(t.campaign, t.store, t.now, workflow_version=t.v1.workflow.version)
    assert f"{t.v1.workflow.version}（本报告仅统计该版本下的建议）" in render_text(only)
    assert f"本报告仅统计办理流程版本 {t.v1.workflow.version}下的建议。" in analysis_report(only)
