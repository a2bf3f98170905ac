"""The Yongchuan 2024 preset against its source: the notice text and the units CSV.

The notice and the CSV live in ``shared/`` beside the repository (``../shared`` from the
clone, as in CI).  Comparisons against them are skipped when that copy is absent; the
hard-coded spot checks below run everywhere.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from importlib import resources
from pathlib import Path

import attrs
import pytest

from jianyi_flow import ValidationError
from jianyi_flow.domain.campaign import HANDLING_COMMANDS, SUMMARY_COMMANDS, Campaign, Unit, UnitKind
from jianyi_flow.domain.clock import start_of_local_day
from jianyi_flow.domain.deadlines import DEFAULT_POLICY
from jianyi_flow.domain.workflow import DESCRIPTIONS
from jianyi_flow.presets import get, load, load_file, names, yongchuan_2024

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
NOTICE = SHARED / "seed" / "yongchuan-2024-notice.txt"
UNITS_CSV = SHARED / "data" / "yongchuan-units.csv"
DOC = ROOT / "docs" / "campaign.md"

AREAS = ["产业发展", "扩大开放", "深化改革", "超大城市治理", "城乡融合", "绿色生态", "区域协同"]
TOPICS_PER_AREA = {"A1": 5, "A2": 5, "A3": 4, "A4": 5, "A5": 3, "A6": 6, "A7": 5}
SPOT_CHECKS = {
    1: "以科技创新引领现代化产业体系建设。",
    2: "全面增强“33618”现代制造业集群体系整体能级。",
    7: "发挥重庆承东启西、通江达海的关键枢纽作用，加快构建通道、物流、产业融合互促高质高效发展新机制。",
    13: "“三攻坚一盘活”改革突破。",
    16: "以三级数字化城市运行和治理中心为抓手全面贯通“市—区县—镇街”治理体系。",
    22: "精准发力推动乡村全面振兴，加快构建产业升级、人口集聚、城镇发展、乡村振兴的制度机制和政策体系。",
    29: "落实《成渝地区双城经济圈建设规划纲要》。",
    33: "建设巴蜀文化旅游走廊。",
}


def notice_text() -> str:
    if not NOTICE.exists():
        pytest.skip(f"the notice is not available at {NOTICE}")
    return NOTICE.read_text(encoding="utf-8")


def attachment_topics(text: str) -> tuple[list[str], list[tuple[int, str, str]]]:
    """Areas and (number, area name, title) parsed from 附件1, joining titles the notice breaks across lines."""
    lines = [line.strip() for line in text[text.index("附件1：") :].splitlines() if line.strip()]
    areas: list[str] = []
    topics: list[list[object]] = []
    for line in lines[2:]:
        heading = re.fullmatch(r"[一二三四五六七]、(.+)", line)
        numbered = re.fullmatch(r"(\d+)\. (.+)", line)
        if heading:
            areas.append(heading.group(1))
        elif numbered:
            topics.append([int(numbered.group(1)), areas[-1], numbered.group(2)])
        else:
            topics[-1][2] = f"{topics[-1][2]}{line}"
    return areas, [(int(str(n)), str(a), str(t)) for n, a, t in topics]


# --- registry ---------------------------------------------------------------------------------------


def test_registry_knows_yongchuan_2024() -> None:
    assert names() == ("yongchuan-2024",)
    assert get("yongchuan-2024") is yongchuan_2024()
    assert load("yongchuan-2024") is yongchuan_2024()


def test_load_takes_a_preset_name_or_a_campaign_file(tmp_path: Path) -> None:
    data = resources.files("jianyi_flow.presets").joinpath("yongchuan_2024.json").read_text("utf-8")
    path = tmp_path / "copy.json"
    path.write_text(data, encoding="utf-8")
    assert load(str(path)) == load(path) == yongchuan_2024()
    with pytest.raises(ValidationError) as info:
        load("yongchuan-2042")
    assert info.value.field == "preset"
    assert "yongchuan-2024" in info.value.rule and ".toml" in info.value.rule
    with pytest.raises(ValidationError) as info:
        load(str(tmp_path / "missing.toml"))
    assert info.value.field == "path"


@pytest.mark.parametrize("name", ["yongchuan-2025", "", "YONGCHUAN-2024"])
def test_an_unknown_preset_name_lists_the_known_ones(name: str) -> None:
    with pytest.raises(ValidationError) as info:
        get(name)
    assert info.value.field == "name"
    assert "yongchuan-2024" in info.value.rule
    assert repr(name) in info.value.rule


def test_the_preset_is_package_data() -> None:
    data = json.loads(resources.files("jianyi_flow.presets").joinpath("yongchuan_2024.json").read_text("utf-8"))
    assert Campaign.from_dict(data) == yongchuan_2024()


# --- content ----------------------------------------------------------------------------------------


def test_code_theme_and_notice_metadata() -> None:
    c = yongchuan_2024()
    assert c.code == "YC2024"
    assert c.theme == "开启新篇章 重庆向未来"
    assert c.notice is not None
    assert c.notice.title == "关于开展2024年人民建议专题征集活动的通知"
    assert c.notice.issuers == ("中共永川区委社会工作部", "重庆市永川区信访办公室")
    assert c.notice.issued_on.isoformat() == "2024-08-08"
    assert c.notice.contact is not None
    assert (c.notice.contact.name, c.notice.contact.phone, c.notice.contact.email) == (
        "周仲实",
        "023-49299053",
        "ycqxfbbxjfk001@163.com",
    )
    assert c.notice.published == "此件公开发布"


def test_seven_areas_with_codes_a1_to_a7_in_the_notice_order() -> None:
    c = yongchuan_2024()
    assert [(a.code, a.name) for a in c.areas] == [(f"A{i}", name) for i, name in enumerate(AREAS, start=1)]


def test_the_area_name_discrepancy_is_recorded() -> None:
    c = yongchuan_2024()
    assert c.area("A7").name == "区域协同"
    assert any("区域协调" in note and "区域协同" in note for note in c.notes)


def test_thirty_three_topics_numbered_and_coded_in_order() -> None:
    c = yongchuan_2024()
    assert [t.number for t in c.topics] == list(range(1, 34))
    assert [t.code for t in c.topics] == [f"T{n:02d}" for n in range(1, 34)]
    assert {a: len(c.topics_of(a)) for a in c.area_codes} == TOPICS_PER_AREA


@pytest.mark.parametrize(("number", "title"), sorted(SPOT_CHECKS.items()))
def test_topic_titles_spot_checks(number: int, title: str) -> None:
    assert yongchuan_2024().topic(f"T{number:02d}").title == title


def test_every_topic_title_matches_the_notice_attachment_verbatim() -> None:
    areas, topics = attachment_topics(notice_text())
    c = yongchuan_2024()
    assert areas == [a.name for a in c.areas]
    assert len(topics) == 33
    assert [(t.number, c.area(t.area).name, t.title) for t in c.topics] == topics


def test_the_body_of_the_notice_still_says_quyu_xietiao() -> None:
    """If the notice is ever corrected, the note about the discrepancy must go."""
    text = notice_text()
    assert "区域协调" in text[: text.index("附件1：")]
    assert "七、区域协同" in text


def test_every_quoted_source_is_verbatim_notice_text() -> None:
    """Sources quote the notice between 「」; each quote must be found in the notice as written."""
    text = notice_text()
    c = yongchuan_2024()
    sources = [p.source for p in c.phases] + [r.source for r in c.phase_rules] + [c.recommendation.source]
    quotes = [q for s in sources for q in re.findall(r"「(.*?)」", s)]
    assert len(quotes) >= len(c.phases) + len(SUMMARY_COMMANDS) + 1
    assert [q for q in quotes if q not in text] == []


def test_phases_are_the_notice_dates() -> None:
    c = yongchuan_2024()
    assert [(p.code, p.name_zh, p.start.isoformat(), p.end.isoformat()) for p in c.phases] == [
        ("launch", "启动阶段", "2024-08-01", "2024-08-20"),
        ("implementation", "实施阶段", "2024-08-21", "2024-11-30"),
        ("summary", "总结运用阶段", "2024-12-01", "2024-12-30"),
    ]


def test_phase_dates_appear_in_the_notice() -> None:
    text = notice_text()
    for p in yongchuan_2024().phases:
        start, end = (f"{d.year}年{d.month}月{d.day}日" for d in (p.start, p.end))
        written = f"{p.name_zh}（{start}-{end}）"
        assert written in text


# --- phase rules ----------------------------------------------------------------------------------


def test_phase_rules_table() -> None:
    c = yongchuan_2024()
    receive = c.phase_rule("receive")
    assert receive is not None and receive.phases == ("launch", "implementation")
    for command in SUMMARY_COMMANDS:
        rule = c.phase_rule(command)
        upward = command in ("report_upward", "forward_to_city")  # 呈报, 呈送: notice 四（二）3 and 四（三）
        assert rule is not None and rule.phases == (("implementation", "summary") if upward else ("summary",)), command
    for command in HANDLING_COMMANDS:
        rule = c.phase_rule(command)
        assert rule is not None and rule.phases is None, command
    assert {r.command for r in c.phase_rules} == {"receive", *SUMMARY_COMMANDS, *HANDLING_COMMANDS}


def test_every_workflow_command_has_a_phase_decision() -> None:
    """A command added to the workflow must be placed in the table (or knowingly left out here)."""
    decide = {"adopt", "adopt_partially", "decline"}
    commands = {("decide" if c in decide else c) for c in DESCRIPTIONS}
    c = yongchuan_2024()
    assert sorted(cmd for cmd in commands if c.phase_rule(cmd) is None) == []


# --- units ----------------------------------------------------------------------------------------


def test_seven_streets_sixteen_towns_and_unique_codes() -> None:
    c = yongchuan_2024()
    kinds = [u.kind for u in c.units]
    assert kinds.count(UnitKind.STREET) == 7
    assert kinds.count(UnitKind.TOWN) == 16
    assert len(set(c.unit_codes)) == len(c.units)
    assert len(set(c.topic_codes)) == 33 and len(set(c.area_codes)) == 7
    assert all(u.name.endswith("街道") for u in c.units if u.kind is UnitKind.STREET)
    assert all(u.name.endswith("镇") for u in c.units if u.kind is UnitKind.TOWN)


def test_organisers_and_recommendation_rule() -> None:
    c = yongchuan_2024()
    assert [u.code for u in c.organisers] == ["SHGZB", "XFB"]
    rule = c.recommendation
    assert rule.minimum == 2
    assert rule.kinds == frozenset(UnitKind)
    assert dict(rule.recommended_via) == {"school": "JW", "hospital": "WJW"}
    assert (c.unit("JW").name, c.unit("WJW").name) == ("区教委", "区卫健委")
    assert rule.deadline_phase == "implementation"
    assert rule.required_for(c.unit("ZSL")) == 2
    assert rule.required_for(c.unit("JW")) == 2
    assert rule.required_for(c.unit("XFB")) == 0


def test_only_typical_departments_are_editable() -> None:
    c = yongchuan_2024()
    editable = [u for u in c.units if u.editable]
    assert editable and all(u.kind is UnitKind.DEPARTMENT and u.source.endswith("editable") for u in editable)
    assert not any(u.editable for u in c.units if u.kind is not UnitKind.DEPARTMENT)
    assert not c.unit("JW").editable and not c.unit("SHGZB").editable


def test_units_match_the_csv() -> None:
    if not UNITS_CSV.exists():
        pytest.skip(f"the units CSV is not available at {UNITS_CSV}")
    with UNITS_CSV.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    c = yongchuan_2024()
    assert [(u.code, u.name, u.kind.value) for u in c.units] == [(r["code"], r["name"], r["kind"]) for r in rows]
    first_source = rows[0]["source"]
    for unit, row in zip(c.units, rows, strict=True):
        expected_source = first_source if row["source"] == "same" else row["source"]
        assert unit.source == expected_source, unit.code
        assert unit.editable == (row["source"] == "typical district department; editable"), unit.code
        assert unit.organiser == ("organiser" in row["source"]), unit.code


# --- the office, its hours, routing and deadlines -------------------------------------------------


def test_the_office_unit_runs_the_collection_office() -> None:
    c = yongchuan_2024()
    assert c.office_unit == "XFB"
    assert c.unit("XFB").organiser and "collection office" in c.unit("XFB").source


def test_office_hours_and_routing() -> None:
    c = yongchuan_2024()
    assert c.office_hours == ((dt.time(9), dt.time(12)), (dt.time(14), dt.time(17, 30)))
    assert set(c.routing) == set(c.area_codes)
    for area, units in c.routing.items():
        assert units, area
        for code in units:  # routing names the illustrative departments, so it is configuration like them
            unit = c.unit(code)
            assert unit.kind is UnitKind.DEPARTMENT and unit.editable and not unit.organiser, code
    assert any("Routing" in note and "illustrative" in note for note in c.notes)


def test_the_deadline_policy_is_in_the_file_with_its_sources() -> None:
    c = yongchuan_2024()
    assert c.deadlines == DEFAULT_POLICY
    data = json.loads(resources.files("jianyi_flow.presets").joinpath("yongchuan_2024.json").read_text("utf-8"))
    assert [d["step"] for d in data["deadlines"]] == [step.value for step, _, _ in DEFAULT_POLICY.describe()]
    assert all(d["source"] for d in data["deadlines"])


# --- editable configuration -----------------------------------------------------------------------


def test_an_edited_copy_loads_from_a_file(tmp_path: Path) -> None:
    data = json.loads(resources.files("jianyi_flow.presets").joinpath("yongchuan_2024.json").read_text("utf-8"))
    data["units"] = [u for u in data["units"] if not u["editable"]] + [
        {"code": "TYJ", "name": "区体育局", "kind": "department", "source": "our list", "editable": True}
    ]
    data["routing"] = {"A1": ["TYJ"]}  # routing names units, so it goes with the list it names
    path = tmp_path / "ours.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    ours = load_file(path)
    assert ours.unit("TYJ") == Unit("TYJ", "区体育局", UnitKind.DEPARTMENT, "our list", editable=True)
    assert "FGW" not in ours.unit_codes
    assert ours.topics == yongchuan_2024().topics


def test_replacing_units_in_code_keeps_the_rest() -> None:
    c = yongchuan_2024()
    ours = attrs.evolve(c, units=[u for u in c.units if not u.editable], routing={})
    assert len(ours.units) == len(c.units) - sum(u.editable for u in c.units)
    assert ours.phases == c.phases


@pytest.mark.parametrize(
    ("content", "rule_part"),
    [("{not json", "not valid JSON"), ('{"code": "X"}', "is required")],
)
def test_a_broken_file_is_a_validation_error(tmp_path: Path, content: str, rule_part: str) -> None:
    path = tmp_path / "broken.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValidationError) as info:
        load_file(path)
    assert rule_part in info.value.rule


def test_a_missing_file_is_a_validation_error(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as info:
        load_file(tmp_path / "nope.json")
    assert info.value.field == "path"


# --- docs -----------------------------------------------------------------------------------------


def test_docs_list_every_area_topic_and_unit_as_in_the_data() -> None:
    doc = DOC.read_text(encoding="utf-8")
    c = yongchuan_2024()
    for a in c.areas:
        assert f"| {a.code} | {a.name} |" in doc, a.code
    for t in c.topics:
        assert f"| {t.code} | {t.number} | {t.area} | {t.title} |" in doc, t.code
    for u in c.units:
        editable, organiser = ("yes" if flag else "no" for flag in (u.editable, u.organiser))
        row = f"| {u.code} | {u.name} | {u.kind.value} | {editable} | {organiser} |"
        assert row in doc, u.code
    for p in c.phases:
        assert f"| {p.code} | {p.name_zh} | {p.start.isoformat()} | {p.end.isoformat()} |" in doc, p.code


def test_docs_phase_rule_table_matches_the_guard() -> None:
    """Each row of the command × phase table says what ``is_open`` says on a day of that column."""
    doc = DOC.read_text(encoding="utf-8")
    c = yongchuan_2024()
    columns = [dt.date(2024, 7, 31), *(p.start for p in c.phases), *(p.end for p in c.phases), dt.date(2024, 12, 31)]
    assert "| command | before | launch | implementation | summary | after |" in doc
    for rule in c.phase_rules:
        open_on = [c.is_open(rule.command, start_of_local_day(day)) for day in columns]
        # the table has one column per phase: a phase's start and end must agree
        starts, ends = open_on[1:4], open_on[4:7]
        assert starts == ends, rule.command
        cells = ["open" if is_open else "—" for is_open in [open_on[0], *starts, open_on[7]]]
        assert f"| `{rule.command}` | {' | '.join(cells)} |" in doc, rule.command
