"""The report as a list of tables: the one shape every tabular renderer draws.

Text, Markdown, HTML, CSV and XLSX all show the same tables with the same Chinese
headers, so they are built once here from a :class:`~jianyi_flow.report.CampaignReport`;
each renderer only decides how a cell looks (a rate as ``95.0%`` in text, as a number
with a percent format in Excel).

The first table (概况, :func:`overview`) is the report's header in every format: it states
the calendar mode and, when some deadline is provisional, the one-line note why
(:func:`calendar_lines`), and the workflow and deadline-policy versions.  Every deadline row
(逾期清单, 即将到期清单) has a 期限性质 column, ``暂定`` or ``正式``; the 按版本 table is there
only when the report holds more than one version.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping, Sequence

import attrs

from .. import labels as L
from ..domain.calendar import PROVISIONAL_LABEL_ZH
from ..domain.clock import SHANGHAI
from ..report import (
    AWARD_ON_TIME_MIN,
    OBJECTION,
    UNRECORDED,
    UNVERSIONED,
    CampaignReport,
    SuggestionBrief,
    VersionRow,
)

Cell = str | int | float | bool | dt.date | dt.datetime | None


class Kind(enum.Enum):
    """How a column's values are meant, so each format can show them properly."""

    TEXT = "text"
    INT = "int"
    RATE = "rate"
    """A fraction 0–1 (or ``None`` when there is nothing to divide by)."""
    NUMBER = "number"
    """A mean or other decimal."""
    DATETIME = "datetime"
    DATE = "date"
    BOOL = "bool"


@attrs.frozen
class Column:
    header: str
    kind: Kind = Kind.TEXT


@attrs.frozen
class Table:
    """One table: ``name`` is an ASCII identifier (file names), ``title`` the Chinese caption."""

    name: str
    title: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[Cell, ...], ...]
    note: str = ""


def _t(name: str, title: str, columns: Sequence[tuple[str, Kind]], rows: Sequence[Sequence[Cell]],
       note: str = "") -> Table:
    return Table(name, title, tuple(Column(h, k) for h, k in columns), tuple(tuple(r) for r in rows), note)


TEXT, INT, RATE, NUM, TIME, DAY, BOOL = (
    Kind.TEXT, Kind.INT, Kind.RATE, Kind.NUMBER, Kind.DATETIME, Kind.DATE, Kind.BOOL
)


def format_cell(value: Cell, kind: Kind) -> str:
    """A cell as text: rates as percentages, times in Asia/Shanghai to the minute, ``—`` for nothing."""
    if value is None:
        return "—"
    if kind is Kind.RATE and isinstance(value, int | float):
        return f"{value * 100:.1f}%"
    if isinstance(value, bool):
        return "是" if value else "否"
    if kind is Kind.NUMBER and isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, dt.datetime):
        return local_text(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def local_text(value: dt.datetime) -> str:
    """An instant as Asia/Shanghai wall-clock time to the minute (how the office reads times)."""
    return value.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


# --- words for the report's own codes (the enums' words are in jianyi_flow.labels) -------------

PROVISIONAL_ZH = PROVISIONAL_LABEL_ZH
"""How a provisional deadline is marked in every format (暂定)."""
OFFICIAL_ZH = "正式"
"""How a deadline counted on published schedules only is marked."""

CALENDAR_MODE_ZH: dict[str, str] = {
    "provisional": "暂定模式（未发布放假安排的年份按《全国年节及纪念日放假办法》推算，所涉期限标“暂定”）",
    "strict": "严格模式（只按已发布的放假安排计算期限）",
}
"""The report header's calendar mode line."""

STEP_ZH: dict[str, str] = {**L.STEP, OBJECTION: "异议核实处理"}
"""The judged steps: :data:`jianyi_flow.labels.STEP` and the office's decision on an objection."""

UNRECORDED_ZH = "未记录"
UNVERSIONED_ZH = "未记录版本（早期版本写入）"

VERSION_KIND_ZH = {"workflow": "办理流程", "policy": "期限规则"}


def step_label(step: str | None) -> str:
    return L.code_label(STEP_ZH, step)


def deadline_kind(provisional: bool) -> str:
    """``暂定`` or ``正式``: what every deadline row says about its due time."""
    return PROVISIONAL_ZH if provisional else OFFICIAL_ZH


def version_label(version: str | None) -> str:
    return UNVERSIONED_ZH if version == UNVERSIONED else (version or "")


def choice_label(table: Mapping[str, str], code: str) -> str:
    """An enum value's word, or 未记录 for :data:`~jianyi_flow.report.UNRECORDED`."""
    return UNRECORDED_ZH if code == UNRECORDED else L.code_label(table, code)


def _version_line(rows: Sequence[VersionRow], chosen: str | None) -> str:
    if chosen is not None:
        return f"{version_label(chosen)}（本报告仅统计该版本下的建议）"
    if not rows:
        return "—"
    if len(rows) == 1:
        return version_label(rows[0].version)
    return f"{len(rows)} 个（见“按版本”）"


def calendar_lines(report: CampaignReport) -> list[tuple[str, str]]:
    """The header's calendar mode and, when some deadline is provisional, the one-line note why."""
    lines = [("日历模式", L.code_label(CALENDAR_MODE_ZH, report.calendar_mode))]
    if report.provisional_note:
        lines.append((f"{PROVISIONAL_ZH}期限", f"{report.provisional_deadlines} 个。{report.provisional_note}"))
    return lines


def legacy_line(report: CampaignReport) -> str | None:
    """What older event kinds were counted as, or ``None`` when the store holds none."""
    returned = report.legacy_events.get("return_transfer", 0)
    extended = report.legacy_events.get("extend", 0)
    parts = []
    if returned:
        parts.append(f"退回（return_transfer）{returned} 件，按“异议成立”统计")
    if extended:
        parts.append(f"延期（extend）{extended} 次，按“申请并批准延期”统计")
    return "；".join(parts) or None


def overview(report: CampaignReport) -> list[tuple[str, str]]:
    """The headline figures as (label, text) pairs: the report's header in every format."""
    def fmt_rate(value: float | None) -> str:
        return format_cell(value, RATE)

    r = report
    s = r.satisfaction
    ex = r.extensions
    ob = r.objections
    lines = [
        ("活动", r.campaign),
        ("主题", r.theme),
        ("统计时间", local_text(r.generated_at)),
        *calendar_lines(r),
        ("办理流程版本", _version_line(r.versions.workflow, r.workflow_version)),
        ("期限规则版本", _version_line(r.versions.policy, r.policy_version)),
        ("建议总数", str(r.suggestions)),
        ("已作出办理决定", str(r.decided)),
        ("采纳率（含部分采纳）", fmt_rate(r.adoption_rate)),
        ("按时办理率", fmt_rate(r.on_time_rate)),
        ("满意率（满意+基本满意）", fmt_rate(s.rate)),
        ("逾期未办结", str(len(r.overdue))),
        (f"即将到期（至 {local_text(r.due_soon_until)}）", str(len(r.due_soon))),
        ("延期（申请/批准/不予批准/待批）", f"{ex.requested}/{ex.approved}/{ex.rejected}/{ex.pending}"),
        ("异议（提出/成立/不成立/待核）", f"{ob.objected}/{ob.accepted}/{ob.rejected}/{ob.pending}"),
        ("重新办理次数", str(r.reopens)),
        ("事件总数", str(r.events)),
        ("历史记录摘要（SHA-256）", r.history_digest),
        ("个人信息", "已脱敏" if r.masked else f"未脱敏（查看人：{r.viewer}）"),
    ]
    legacy = legacy_line(r)
    if legacy:
        lines.append(("早期版本事件", legacy))
    return lines


def _brief_rows(items: Sequence[SuggestionBrief]) -> list[list[Cell]]:
    return [
        [b.id, b.registration_number, b.title, b.area_name or b.area, b.lead_unit_name or b.lead_unit,
         L.code_label(L.OUTCOME, b.outcome), L.code_label(L.REWARD_TIER, b.reward_tier), b.evaluation_total,
         b.adopted_into, L.code_label(L.ADOPTION_FORM, b.adoption_form),
         b.typical_case, "、".join(L.code_label(L.REPORT_FORM, f) for f in b.upward_reports), b.forwarded_to_city]
        for b in items
    ]


BRIEF_COLUMNS = [
    ("编号", TEXT), ("登记号", TEXT), ("标题", TEXT), ("方面", TEXT), ("主办单位", TEXT), ("办理结果", TEXT),
    ("奖励等次", TEXT), ("评比总分", INT), ("吸纳转化为", TEXT), ("吸纳转化形式", TEXT), ("典型案例", BOOL),
    ("呈报方式", TEXT), ("呈送市信访办", BOOL),
]


def _not_adopted_note(report: CampaignReport, key: str) -> str:
    n = report.summary_phase.not_adopted.get(key, 0)
    return f"其中 {n} 件未被采纳（早期版本允许的记录）。" if n else ""


def _counts(name: str, title: str, header: str, table: Mapping[str, str], counts: Mapping[str, int],
            note: str = "") -> Table:
    return _t(name, title, [("代码", TEXT), (header, TEXT), ("件数", INT)],
              [[k, choice_label(table, k), n] for k, n in counts.items()], note)


def _version_rows(report: CampaignReport) -> list[list[Cell]]:
    rows: list[list[Cell]] = []
    for kind, found in (("workflow", report.versions.workflow), ("policy", report.versions.policy)):
        rows += [[VERSION_KIND_ZH[kind], version_label(v.version), v.suggestions, v.events, v.first_event_at]
                 for v in found]
    return rows


def tables(report: CampaignReport) -> list[Table]:
    """Every table of the report, in reading order (``按版本`` only when there is more than one version)."""
    r = report
    sp = r.summary_phase
    ex = r.extensions
    ob = r.objections
    upward: list[list[Cell]] = [[L.code_label(L.REPORT_FORM, k), n] for k, n in sp.upward_reports.items()]
    upward.append(["呈送市信访办", sp.forwarded_to_city])
    deadline_columns = [("编号", TEXT), ("登记号", TEXT), ("标题", TEXT), ("状态", TEXT), ("环节", TEXT),
                        ("办理期限", TIME), ("期限性质", TEXT), ("主办单位", TEXT)]
    out = [_t("overview", "概况", [("项目", TEXT), ("数值", TEXT)], overview(r))]
    if r.versions.split:
        out.append(_t("versions", "按版本", [("类别", TEXT), ("版本", TEXT), ("建议数", INT), ("事件数", INT),
                                           ("最早事件时间", TIME)], _version_rows(r),
                      note="建议数按建议当前所处的版本统计（流程：最近一个事件的版本；期限规则：现行期限所依据的版本）；"
                           "事件数按写入事件时的版本统计（期限规则：设定期限的事件）。"))
    out += [
        _t("by_state", "按办理状态", [("状态代码", TEXT), ("状态", TEXT), ("件数", INT)],
           [[k, L.code_label(L.STATE, k), n] for k, n in r.by_state.items()]),
        _t("by_phase", "按收件阶段", [("阶段代码", TEXT), ("阶段", TEXT), ("开始", DAY), ("结束", DAY), ("件数", INT)],
           [[p.code, p.name, p.start, p.end, p.count] for p in r.by_phase]),
        _t("arrivals_by_week", "按周收件", [("周一", DAY), ("件数", INT)],
           [[w.week_start, w.count] for w in r.arrivals_by_week]),
        _t("by_area", "按方面", [("代码", TEXT), ("方面", TEXT), ("建议数", INT), ("采纳", INT), ("部分采纳", INT),
                                ("不予采纳", INT), ("未决定", INT), ("采纳率", RATE)],
           [[a.code, a.name, a.suggestions, a.adopted, a.partially_adopted, a.declined, a.undecided,
             a.adoption_rate] for a in r.by_area]),
        _t("by_topic", "按参考议题", [("代码", TEXT), ("议题", TEXT), ("件数", INT)],
           [[c.code, c.name, c.count] for c in r.by_topic]),
        _t("by_channel", "按征集渠道", [("渠道代码", TEXT), ("渠道", TEXT), ("件数", INT)],
           [[k, L.code_label(L.CHANNEL, k), n] for k, n in r.by_channel.items()]),
        _t("by_recommending_unit", "按推荐单位", [("代码", TEXT), ("推荐单位", TEXT), ("件数", INT)],
           [[c.code, c.name, c.count] for c in r.by_recommending_unit]),
        _t("by_lead_unit", "按主办单位", [("代码", TEXT), ("主办单位", TEXT), ("件数", INT)],
           [[c.code, c.name, c.count] for c in r.by_lead_unit]),
        _t("by_outcome", "按办理结果", [("结果代码", TEXT), ("办理结果", TEXT), ("件数", INT)],
           [[k, L.code_label(L.OUTCOME, k), n] for k, n in r.by_outcome.items()],
           note=f"已决定 {r.decided} 件，采纳率（采纳+部分采纳）/已决定 = {format_cell(r.adoption_rate, RATE)}"),
        _counts("by_research_method", "按调研论证方式", "调研论证方式", L.RESEARCH_METHOD, r.by_research_method,
                note="已调研论证的建议，按最近一次调研论证的方式统计。"),
        _counts("by_reply_form", "按答复方式", "答复方式", L.REPLY_FORM, r.by_reply_form,
                note="已答复的建议，按答复方式统计。"),
        _counts("by_adoption_form", "按吸纳转化形式", "吸纳转化形式", L.ADOPTION_FORM, r.by_adoption_form,
                note="已记录吸纳转化运用的建议，按转化成的措施类别统计。"),
        _t("on_time_by_step", "各环节按时办理", [("环节代码", TEXT), ("环节", TEXT), ("已评判", INT), ("按时", INT),
                                          ("超时", INT), ("其中在办逾期", INT), ("未到期", INT), ("按时率", RATE),
                                          (f"{PROVISIONAL_ZH}期限（已评判）", INT),
                                          (f"{PROVISIONAL_ZH}期限（未到期）", INT)],
           [[s.step, step_label(s.step), s.judged, s.on_time, s.late, s.open_overdue, s.pending, s.rate,
             s.provisional_judged, s.provisional_pending] for s in r.on_time_by_step],
           note=f"总体按时办理率 {format_cell(r.on_time_rate, RATE)}"),
        _t("on_time_by_unit", "各主办单位按时办理", [("代码", TEXT), ("单位", TEXT), ("已评判", INT), ("按时", INT),
                                             ("超时", INT), ("按时率", RATE)],
           [[u.unit, u.name, u.judged, u.on_time, u.late, u.rate] for u in r.on_time_by_unit]),
        _t("overdue", "逾期清单", [*deadline_columns, ("逾期工作日", INT)],
           [[o.id, o.registration_number, o.title, L.code_label(L.STATE, o.state), step_label(o.due_step),
             o.due_at, deadline_kind(o.provisional), o.lead_unit_name or o.lead_unit or "区征集办",
             o.working_days_overdue] for o in r.overdue]),
        _t("due_soon", "即将到期清单", [*deadline_columns, ("剩余工作日", INT)],
           [[d.id, d.registration_number, d.title, L.code_label(L.STATE, d.state), step_label(d.due_step),
             d.due_at, deadline_kind(d.provisional), d.lead_unit_name or d.lead_unit or "区征集办",
             d.working_days_left] for d in r.due_soon],
           note=f"尚未逾期、{local_text(r.due_soon_until)} 前到期的环节。"),
        _t("quota", "推荐任务完成情况", [("代码", TEXT), ("单位", TEXT), ("类别", TEXT), ("已推荐", INT),
                                   ("应推荐", INT), ("完成", BOOL), ("差额", INT)],
           [[q.unit, q.name, L.code_label(L.UNIT_KIND, q.kind), q.recommended, q.required, q.met, q.shortfall]
            for q in r.quota]),
        _t("satisfaction", "满意度", [("评价", TEXT), ("件数", INT)],
           [["满意", r.satisfaction.satisfied], ["基本满意", r.satisfaction.basically_satisfied],
            ["不满意", r.satisfaction.dissatisfied], ["已评价合计", r.satisfaction.rated],
            ["评价期满未评价", r.satisfaction.unrated], ["待评价", r.satisfaction.awaiting]],
           note=f"满意率（满意+基本满意）/已评价 = {format_cell(r.satisfaction.rate, RATE)}"),
        _t("objections", "异议处理", [("代码", TEXT), ("单位", TEXT), ("提出异议", INT), ("异议成立", INT),
                                  ("异议不成立", INT)],
           [[u.unit, u.name, u.objected, u.accepted, u.rejected] for u in ob.by_unit],
           note=f"承办单位认为不属本单位职责提出异议 {ob.objected} 件，区征集办核实后异议成立 {ob.accepted} 件、"
                f"不成立 {ob.rejected} 件，待核实 {ob.pending} 件（信访工作条例第二十三条）。"),
        _t("extensions", "延期情况", [("代码", TEXT), ("单位", TEXT), ("申请", INT), ("批准", INT), ("不予批准", INT),
                                  ("批准天数", INT)],
           [[u.unit, u.name, u.requested, u.approved, u.rejected, u.days] for u in ex.by_unit],
           note=f"申请延期 {ex.requested} 次，批准 {ex.approved} 次（共 {ex.days} 天）、不予批准 {ex.rejected} 次，"
                f"待批 {ex.pending} 件"
                + "".join(f"；{step_label(k)} {n} 次" for k, n in ex.by_step.items() if n)
                + ("；按天数：" + "，".join(f"{d.days} 天 {d.count} 次" for d in ex.by_days) if ex.by_days else "")
                + "。"),
        _t("upward_reports", "呈报情况", [("呈报方式", TEXT), ("件数", INT)], upward),
        _t("evaluations", "评比得分", [("项目", TEXT), ("数值", NUM)],
           [["已评比件数", sp.evaluations.count], ["质量平均分", sp.evaluations.mean_quality],
            ["价值平均分", sp.evaluations.mean_value], ["效果平均分", sp.evaluations.mean_effect],
            ["总分平均", sp.evaluations.mean_total]]),
        _t("reward_candidates", "奖励备选建议", BRIEF_COLUMNS, _brief_rows(sp.reward_candidates),
           note=_not_adopted_note(r, "reward_candidates")),
        _t("originals", "原件呈报建议", BRIEF_COLUMNS, _brief_rows(sp.originals),
           note=_not_adopted_note(r, "originals")),
        _t("adoptions", "吸纳转化运用", BRIEF_COLUMNS, _brief_rows(sp.adoptions)),
        _t("typical_cases", "典型案例", BRIEF_COLUMNS, _brief_rows(sp.typical_cases),
           note=_not_adopted_note(r, "typical_cases")),
        _t("organisation_award", "组织奖候选单位", [("名次", INT), ("代码", TEXT), ("单位", TEXT), ("已推荐", INT),
                                             ("应推荐", INT), ("被采纳", INT), ("按时率", RATE), ("已评判环节", INT)],
           [[a.rank, a.unit, a.name, a.recommended, a.required, a.adopted, a.on_time_rate, a.judged]
            for a in r.organisation_award],
           note=f"条件：完成推荐任务，作为主办单位按时办理率不低于{AWARD_ON_TIME_MIN:.0%}（无办理环节视为符合），"
                "且推荐的建议至少1件被采纳或部分采纳；按被采纳件数、推荐件数排序。"),
    ]
    return out
