"""The summary-phase documents (总结运用阶段, notice 四（三）): 摘报 and 分析报告, as Markdown.

The notice says high-quality suggestions go to the Party committee and government "as
originals, excerpts or analysis reports" (原件、摘报、分析报告).  These two functions draft
the excerpt and the analysis report from the campaign report, so the office edits a draft
built from the record instead of retyping figures.  Both use only what the report holds,
so they are masked exactly as the report is.  Every text from the report is escaped
(:func:`inline`): no HTML, link or Markdown syntax a citizen writes is live in them.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence

from .. import labels as L
from ..report import AWARD_ON_TIME_MIN, CampaignReport, ExcerptItem, SuggestionBrief, VersionRow
from ._tables import (
    NUM,
    PROVISIONAL_ZH,
    RATE,
    calendar_lines,
    choice_label,
    format_cell,
    legacy_line,
    local_text,
    step_label,
    version_label,
)
from .markdown import pipe_table

_DIGITS = "零一二三四五六七八九"
_MARKDOWN = re.compile(r"([\\`*_\[\]|#])")
_REFERENCES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


def chinese_number(n: int) -> str:
    """1 → 一, 10 → 十, 12 → 十二, 21 → 二十一 (for headings up to 99; larger numbers in digits)."""
    if not 0 < n < 100:
        return str(n)
    tens, ones = divmod(n, 10)
    head = "" if tens == 0 else ("十" if tens == 1 else _DIGITS[tens] + "十")
    return head + (_DIGITS[ones] if ones else "")


def inline(text: str) -> str:
    """Escape public text (titles, suggestions) so it prints as written, on one line.

    ``&``, ``<`` and ``>`` become character references, so HTML in it is shown, never run
    (a backslash before ``<`` is not honoured by every Markdown renderer); the other
    characters with a meaning in Markdown are backslash-escaped; line breaks become spaces.
    """
    escaped = _MARKDOWN.sub(r"\\\1", text.translate(_REFERENCES))
    return escaped.replace("\r\n", " ").replace("\r", " ").replace("\n", " ")


def _paragraphs(text: str) -> str:
    return "\n\n".join(inline(p) for p in text.splitlines() if p.strip()) or "（无）"


def _pct(value: float | None) -> str:
    return format_cell(value, RATE)


def _excerpt_item(index: int, item: ExcerptItem, masked: bool) -> list[str]:
    b = item.brief
    p = item.proposer
    who = f"{inline(p.name)}（{L.code_label(L.PROPOSER_KIND, p.kind)}）"
    if not masked:
        who += f"；电话：{inline(p.phone or '—')}；地址：{inline(p.address or '—')}"
    lines = [
        f"## {chinese_number(index)}、{inline(b.title)}",
        "",
        f"- 编号：{inline(b.id)}；登记号：{inline(b.registration_number or '—')}",
        f"- 方面：{inline(b.area_name or b.area)}" + (f"；议题：{inline(b.topic)}" if b.topic else ""),
        f"- 建议人：{who}",
        f"- 推荐单位：{inline(b.recommending_unit_name or b.recommending_unit or '群众直接提出')}；"
        f"主办单位：{inline(b.lead_unit_name or b.lead_unit or '—')}",
        f"- 办理结果：{L.code_label(L.OUTCOME, b.outcome) or '未决定'}"
        + (f"（采纳部分：{inline(b.adopted_part)}）" if b.adopted_part else ""),
    ]
    if b.adopted_into:
        lines.append(f"- 吸纳转化为：{inline(b.adopted_into)}")
    if b.evaluation_total is not None or b.reward_tier:
        lines.append(f"- 评比总分：{b.evaluation_total if b.evaluation_total is not None else '—'}；"
                     f"奖励备选等次：{L.code_label(L.REWARD_TIER, b.reward_tier) or '—'}")
    lines += ["", "### 建议事项", "", _paragraphs(item.subject), "", "### 存在问题", "", _paragraphs(item.problem),
              "", "### 意见建议", "", _paragraphs(item.measures), ""]
    if item.reply:
        lines += ["### 办理答复", "", _paragraphs(item.reply), ""]
    return lines


def _header(report: CampaignReport) -> list[str]:
    """The calendar mode and, when some deadline is provisional, why: the first lines of both documents."""
    return [line for name, text in calendar_lines(report) for line in (f"{name}：{inline(text)}", "")]


def excerpt_report(report: CampaignReport) -> str:
    """摘报: the suggestions reported upward as excerpts, and the reward candidates, in full.

    Order: reward tier (special first), then id.  Proposers appear as the report shows them:
    masked unless the report was built unmasked by the collection office.
    """
    selected = report.summary_phase.selected
    lines = [
        "# 人民建议摘报",
        "",
        f"「{inline(report.theme)}」人民建议专题征集活动（{report.campaign}），"
        f"共摘报建议 {len(selected)} 件。统计时间：{local_text(report.generated_at)}。",
        "",
    ]
    if report.masked:
        lines += ["> 本摘报已对建议人个人信息脱敏。", ""]
    lines += _header(report)
    if not selected:
        lines += ["本期无摘报建议。", ""]
    for index, item in enumerate(selected, start=1):
        lines += _excerpt_item(index, item, report.masked)
    return "\n".join(lines)


def _brief_line(b: SuggestionBrief) -> str:
    parts = [f"主办单位：{inline(b.lead_unit_name or b.lead_unit or '—')}",
             f"办理结果：{L.code_label(L.OUTCOME, b.outcome) or '未决定'}"]
    if b.adopted_into:
        form = f"（{L.code_label(L.ADOPTION_FORM, b.adoption_form)}）" if b.adoption_form else ""
        parts.append(f"吸纳转化为：{inline(b.adopted_into)}{form}")
    if b.reward_tier:
        parts.append(f"奖励备选：{L.code_label(L.REWARD_TIER, b.reward_tier)}")
    if b.typical_case:
        parts.append("典型案例")
    return f"- 「{inline(b.title)}」（{inline(b.id)}；{'；'.join(parts)}）"


def _counted(table: Mapping[str, str], counts: Mapping[str, int]) -> str:
    return "，".join(f"{choice_label(table, k)} {n} 件" for k, n in counts.items() if n) or "暂无"


def _versions(kind: str, rows: tuple[VersionRow, ...]) -> str:
    listed = "；".join(f"{inline(version_label(v.version))}（建议 {v.suggestions} 件，事件 {v.events} 条）"
                      for v in rows)
    return f"{kind}版本 {len(rows)} 个：{listed}。"


def _by_unit(items: Sequence[tuple[str, bool]]) -> str:
    """``区交通运输局 2 件（其中暂定期限 1 件）``, most first: an overdue or due-soon line."""
    total: Counter[str] = Counter()
    provisional: Counter[str] = Counter()
    for unit, is_provisional in items:
        total[unit] += 1
        provisional[unit] += is_provisional
    return "，".join(
        f"{inline(u)} {n} 件" + (f"（其中{PROVISIONAL_ZH}期限 {provisional[u]} 件）" if provisional[u] else "")
        for u, n in total.most_common())


def analysis_report(report: CampaignReport) -> str:
    """分析报告: the campaign in numbers and highlights, in the order such reports are written.

    Sections: overall (arrivals by phase and channel, quota, versions), handling (outcomes,
    research methods and reply forms, timeliness, objections, extensions, satisfaction),
    areas and their best adopted suggestions, adopted measures by kind, typical cases,
    evaluation, originals and rewards, organisation award candidates, and what needs
    attention (overdue and due-soon steps by unit, each saying how many deadlines are
    provisional).  The calendar mode heads it, with the note on provisional deadlines.
    """
    r = report
    phases = "，".join(f"{inline(p.name)} {p.count} 件" for p in r.by_phase if p.count)
    channels = "，".join(f"{L.code_label(L.CHANNEL, k)} {n} 件"
                        for k, n in sorted(r.by_channel.items(), key=lambda kv: -kv[1]) if n)
    met = sum(1 for q in r.quota if q.met)
    steps = "，".join(f"{step_label(s.step)} {_pct(s.rate)}" for s in r.on_time_by_step)
    o = r.by_outcome
    s = r.satisfaction
    ex = r.extensions
    ob = r.objections
    overdue_provisional = sum(1 for x in r.overdue if x.provisional)
    lines = [
        f"# 「{inline(r.theme)}」人民建议专题征集活动分析报告",
        "",
        f"统计时间：{local_text(r.generated_at)}；依据事件记录 {r.events} 条（摘要 `{r.history_digest[:16]}`）。",
        "",
        *_header(r),
        f"## {chinese_number(1)}、总体情况",
        "",
        f"本次活动共收到人民建议 {r.suggestions} 件（{phases or '暂无'}）。征集渠道：{channels or '暂无'}。"
        f"应推荐单位 {len(r.quota)} 个，完成推荐任务（不少于规定篇数）{met} 个。",
        "",
    ]
    if r.workflow_version is not None or r.policy_version is not None:
        chosen = "；".join(f"{kind}版本 {inline(version_label(value))}" for kind, value in
                           (("办理流程", r.workflow_version), ("期限规则", r.policy_version)) if value is not None)
        lines += [f"本报告仅统计{chosen}下的建议。", ""]
    if r.versions.split:
        lines += [_versions("办理流程", r.versions.workflow), "", _versions("期限规则", r.versions.policy), ""]
    legacy = legacy_line(r)
    if legacy:
        lines += [f"早期版本事件：{legacy}。", ""]
    lines += [
        f"## {chinese_number(2)}、办理情况",
        "",
        f"已作出办理决定 {r.decided} 件，其中采纳 {o.get('adopted', 0)} 件、"
        f"部分采纳 {o.get('partially_adopted', 0)} 件、不予采纳 {o.get('declined', 0)} 件，"
        f"采纳率 {_pct(r.adoption_rate)}。"
        f"调研论证方式：{_counted(L.RESEARCH_METHOD, r.by_research_method)}；"
        f"答复方式：{_counted(L.REPLY_FORM, r.by_reply_form)}。",
        "",
        f"按时办理率 {_pct(r.on_time_rate)}（{steps}）。逾期未办结 {len(r.overdue)} 件"
        + (f"（其中{PROVISIONAL_ZH}期限 {overdue_provisional} 件）" if overdue_provisional else "")
        + f"，重新办理 {r.reopens} 次。"
        f"承办单位提出异议 {ob.objected} 件，异议成立 {ob.accepted} 件、不成立 {ob.rejected} 件，"
        f"待核实 {ob.pending} 件。"
        f"申请延期 {ex.requested} 次，批准 {ex.approved} 次（共 {ex.days} 天）、不予批准 {ex.rejected} 次，"
        f"待批 {ex.pending} 件。",
        "",
        f"建议人评价 {s.rated} 件：满意 {s.satisfied} 件、基本满意 {s.basically_satisfied} 件、"
        f"不满意 {s.dissatisfied} 件，满意率 {_pct(s.rate)}；评价期满未评价 {s.unrated} 件，待评价 {s.awaiting} 件。",
        "",
        f"## {chinese_number(3)}、各方面建议情况",
        "",
    ]
    lines += pipe_table(
        ["方面", "建议数", "采纳", "部分采纳", "不予采纳", "采纳率"],
        [[a.name or a.code, str(a.suggestions), str(a.adopted), str(a.partially_adopted), str(a.declined),
          _pct(a.adoption_rate)] for a in r.by_area],
        [False, True, True, True, True, True],
    )
    lines.append("")
    for h in r.highlights:
        lines += [f"### {inline(h.name or h.area)}", ""] + [_brief_line(b) for b in h.items] + [""]
    sp = r.summary_phase
    lines += [f"## {chinese_number(4)}、吸纳转化运用", ""]
    if sp.adoptions:
        lines += [f"按转化形式：{_counted(L.ADOPTION_FORM, r.by_adoption_form)}。", ""]
    lines += [_brief_line(b) for b in sp.adoptions] or ["暂无记录的吸纳转化成果。"]
    lines += ["", f"## {chinese_number(5)}、典型案例", ""]
    lines += [_brief_line(b) for b in sp.typical_cases] or ["暂无。"]
    ev = sp.evaluations
    forms = "，".join(f"{L.code_label(L.REPORT_FORM, k)} {n} 件" for k, n in sp.upward_reports.items() if n)
    not_adopted = "，".join(f"{name} {sp.not_adopted.get(key, 0)} 件"
                            for key, name in (("reward_candidates", "奖励备选"), ("originals", "原件呈报"),
                                              ("typical_cases", "典型案例")) if sp.not_adopted.get(key, 0))
    lines += [
        "",
        f"## {chinese_number(6)}、评比与报送",
        "",
        f"已评比 {ev.count} 件，质量、价值、效果平均分分别为 {format_cell(ev.mean_quality, NUM)}、"
        f"{format_cell(ev.mean_value, NUM)}、{format_cell(ev.mean_effect, NUM)}（总分平均 "
        f"{format_cell(ev.mean_total, NUM)}）。呈报党委政府：{forms or '暂无'}；"
        f"呈送市信访办 {sp.forwarded_to_city} 件；"
        f"纳入奖励备选 {len(sp.reward_candidates)} 件。"
        + (f"其中未被采纳的（早期版本允许的记录）：{not_adopted}。" if not_adopted else ""),
        "",
    ]
    if sp.originals:
        lines += ["以原件呈报：", ""] + [_brief_line(b) for b in sp.originals] + [""]
    if sp.reward_candidates:
        lines += ["奖励备选：", ""] + [_brief_line(b) for b in sp.reward_candidates]
    lines += ["", f"## {chinese_number(7)}、组织奖候选单位", "",
              f"条件：完成推荐任务、作为主办单位按时办理率不低于 {AWARD_ON_TIME_MIN:.0%}、"
              "推荐建议至少 1 件被采纳。", ""]
    lines += [f"{a.rank}. {inline(a.name)}（推荐 {a.recommended} 件，被采纳 {a.adopted} 件，"
              f"按时率 {_pct(a.on_time_rate) if a.judged else '无主办件'}）"
              for a in r.organisation_award] or ["暂无符合条件的单位。"]
    short = [q for q in r.quota if not q.met]
    lines += ["", f"## {chinese_number(8)}、需关注的问题", ""]
    if r.overdue:
        lines.append("逾期未办结：" + _by_unit([(x.lead_unit_name or x.lead_unit or "区征集办", x.provisional)
                                              for x in r.overdue]) + "。")
    if r.due_soon:
        lines.append(f"{local_text(r.due_soon_until)} 前即将到期："
                     + _by_unit([(x.lead_unit_name or x.lead_unit or "区征集办", x.provisional) for x in r.due_soon])
                     + "。")
    if ob.pending or ex.pending:
        lines.append(f"待区征集办核实的异议 {ob.pending} 件，待批的延期申请 {ex.pending} 件。")
    if short:
        lines.append(f"未完成推荐任务的单位 {len(short)} 个：" + "、".join(inline(q.name) for q in short) + "。")
    if not r.overdue and not r.due_soon and not short and not ob.pending and not ex.pending:
        lines.append("暂无。")
    lines.append("")
    return "\n".join(lines)
