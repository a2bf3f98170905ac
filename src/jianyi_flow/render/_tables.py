"""The report as a list of tables: the one shape every tabular renderer draws.

Text, Markdown, HTML, CSV and XLSX all show the same tables with the same Chinese
headers, so they are built once here from a :class:`~jianyi_flow.report.CampaignReport`;
each renderer only decides how a cell looks (a rate as ``95.0%`` in text, as a number
with a percent format in Excel).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence

import attrs

from ..domain.clock import SHANGHAI
from ..report import AWARD_ON_TIME_MIN, CampaignReport, SuggestionBrief
from . import _labels as L

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


def overview(report: CampaignReport) -> list[tuple[str, str]]:
    """The headline figures as (label, text) pairs."""
    def fmt_rate(value: float | None) -> str:
        return format_cell(value, RATE)

    s = report.satisfaction
    return [
        ("活动", report.campaign),
        ("主题", report.theme),
        ("统计时间", local_text(report.generated_at)),
        ("建议总数", str(report.suggestions)),
        ("已作出办理决定", str(report.decided)),
        ("采纳率（含部分采纳）", fmt_rate(report.adoption_rate)),
        ("按时办理率", fmt_rate(report.on_time_rate)),
        ("满意率（满意+基本满意）", fmt_rate(s.rate)),
        ("逾期未办结", str(len(report.overdue))),
        ("延期次数", str(report.extensions.count)),
        ("重新办理次数", str(report.reopens)),
        ("事件总数", str(report.events)),
        ("历史记录摘要（SHA-256）", report.history_digest),
        ("个人信息", "已脱敏" if report.masked else f"未脱敏（查看人：{report.viewer}）"),
    ]


def _brief_rows(items: Sequence[SuggestionBrief]) -> list[list[Cell]]:
    return [
        [b.id, b.registration_number, b.title, b.area_name or b.area, b.lead_unit_name or b.lead_unit,
         L.label(L.OUTCOME, b.outcome), L.label(L.TIER, b.reward_tier), b.evaluation_total, b.adopted_into,
         b.typical_case, "、".join(L.label(L.FORM, f) for f in b.upward_reports), b.forwarded_to_city]
        for b in items
    ]


_BRIEF_COLUMNS = [
    ("编号", TEXT), ("登记号", TEXT), ("标题", TEXT), ("方面", TEXT), ("主办单位", TEXT), ("办理结果", TEXT),
    ("奖励等次", TEXT), ("评比总分", INT), ("吸纳转化为", TEXT), ("典型案例", BOOL), ("呈报方式", TEXT),
    ("呈送市信访办", BOOL),
]


def tables(report: CampaignReport) -> list[Table]:
    """Every table of the report, in reading order."""
    r = report
    sp = r.summary_phase
    upward: list[list[Cell]] = [[L.label(L.FORM, k), n] for k, n in sp.upward_reports.items()]
    upward.append(["呈送市信访办", sp.forwarded_to_city])
    out = [
        _t("overview", "概况", [("项目", TEXT), ("数值", TEXT)], overview(r)),
        _t("by_state", "按办理状态", [("状态代码", TEXT), ("状态", TEXT), ("件数", INT)],
           [[k, L.label(L.STATE, k), n] for k, n in r.by_state.items()]),
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
           [[k, L.label(L.CHANNEL, k), n] for k, n in r.by_channel.items()]),
        _t("by_recommending_unit", "按推荐单位", [("代码", TEXT), ("推荐单位", TEXT), ("件数", INT)],
           [[c.code, c.name, c.count] for c in r.by_recommending_unit]),
        _t("by_lead_unit", "按主办单位", [("代码", TEXT), ("主办单位", TEXT), ("件数", INT)],
           [[c.code, c.name, c.count] for c in r.by_lead_unit]),
        _t("by_outcome", "按办理结果", [("结果代码", TEXT), ("办理结果", TEXT), ("件数", INT)],
           [[k, L.label(L.OUTCOME, k), n] for k, n in r.by_outcome.items()],
           note=f"已决定 {r.decided} 件，采纳率（采纳+部分采纳）/已决定 = {format_cell(r.adoption_rate, RATE)}"),
        _t("on_time_by_step", "各环节按时办理", [("环节代码", TEXT), ("环节", TEXT), ("已评判", INT), ("按时", INT),
                                          ("超时", INT), ("其中在办逾期", INT), ("未到期", INT), ("按时率", RATE)],
           [[s.step, L.label(L.STEP, s.step), s.judged, s.on_time, s.late, s.open_overdue, s.pending, s.rate]
            for s in r.on_time_by_step],
           note=f"总体按时办理率 {format_cell(r.on_time_rate, RATE)}"),
        _t("on_time_by_unit", "各主办单位按时办理", [("代码", TEXT), ("单位", TEXT), ("已评判", INT), ("按时", INT),
                                             ("超时", INT), ("按时率", RATE)],
           [[u.unit, u.name, u.judged, u.on_time, u.late, u.rate] for u in r.on_time_by_unit]),
        _t("overdue", "逾期清单", [("编号", TEXT), ("登记号", TEXT), ("标题", TEXT), ("状态", TEXT), ("逾期环节", TEXT),
                               ("办理期限", TIME), ("主办单位", TEXT), ("逾期工作日", INT)],
           [[o.id, o.registration_number, o.title, L.label(L.STATE, o.state), L.label(L.STEP, o.due_step),
             o.due_at, o.lead_unit_name or o.lead_unit or "区征集办", o.working_days_overdue] for o in r.overdue]),
        _t("quota", "推荐任务完成情况", [("代码", TEXT), ("单位", TEXT), ("类别", TEXT), ("已推荐", INT),
                                   ("应推荐", INT), ("完成", BOOL), ("差额", INT)],
           [[q.unit, q.name, L.label(L.UNIT_KIND, q.kind), q.recommended, q.required, q.met, q.shortfall]
            for q in r.quota]),
        _t("satisfaction", "满意度", [("评价", TEXT), ("件数", INT)],
           [["满意", r.satisfaction.satisfied], ["基本满意", r.satisfaction.basically_satisfied],
            ["不满意", r.satisfaction.dissatisfied], ["已评价合计", r.satisfaction.rated],
            ["评价期满未评价", r.satisfaction.unrated], ["待评价", r.satisfaction.awaiting]],
           note=f"满意率（满意+基本满意）/已评价 = {format_cell(r.satisfaction.rate, RATE)}"),
        _t("extensions", "延期情况", [("代码", TEXT), ("单位", TEXT), ("延期次数", INT)],
           [[c.code, c.name, c.count] for c in r.extensions.by_unit],
           note=f"共延期 {r.extensions.count} 次；" + "，".join(
               f"{L.label(L.STEP, k)} {n} 次" for k, n in r.extensions.by_step.items() if n)),
        _t("upward_reports", "呈报情况", [("呈报方式", TEXT), ("件数", INT)], upward),
        _t("evaluations", "评比得分", [("项目", TEXT), ("数值", NUM)],
           [["已评比件数", sp.evaluations.count], ["质量平均分", sp.evaluations.mean_quality],
            ["价值平均分", sp.evaluations.mean_value], ["效果平均分", sp.evaluations.mean_effect],
            ["总分平均", sp.evaluations.mean_total]]),
        _t("reward_candidates", "奖励备选建议", _BRIEF_COLUMNS, _brief_rows(sp.reward_candidates)),
        _t("adoptions", "吸纳转化运用", _BRIEF_COLUMNS, _brief_rows(sp.adoptions)),
        _t("typical_cases", "典型案例", _BRIEF_COLUMNS, _brief_rows(sp.typical_cases)),
        _t("organisation_award", "组织奖候选单位", [("名次", INT), ("代码", TEXT), ("单位", TEXT), ("已推荐", INT),
                                             ("应推荐", INT), ("被采纳", INT), ("按时率", RATE), ("已评判环节", INT)],
           [[a.rank, a.unit, a.name, a.recommended, a.required, a.adopted, a.on_time_rate, a.judged]
            for a in r.organisation_award],
           note=f"条件：完成推荐任务，作为主办单位按时办理率不低于{AWARD_ON_TIME_MIN:.0%}（无办理环节视为符合），"
                "且推荐的建议至少1件被采纳或部分采纳；按被采纳件数、推荐件数排序。"),
    ]
    return out
