"""The summary-phase documents (总结运用阶段, notice 四（三）): 摘报 and 分析报告, as Markdown.

The notice says high-quality suggestions go to the Party committee and government "as
originals, excerpts or analysis reports" (原件、摘报、分析报告).  These two functions draft
the excerpt and the analysis report from the campaign report, so the office edits a draft
built from the record instead of retyping figures.  Both use only what the report holds,
so they are masked exactly as the report is.
"""

from __future__ import annotations

import re
from collections import Counter

from ..report import AWARD_ON_TIME_MIN, CampaignReport, ExcerptItem, SuggestionBrief
from . import _labels as L
from ._tables import NUM, RATE, format_cell, local_text
from .markdown import pipe_table

_DIGITS = "零一二三四五六七八九"
_MARKDOWN = re.compile(r"([\\`*_\[\]<>|#])")


def chinese_number(n: int) -> str:
    """1 → 一, 10 → 十, 12 → 十二, 21 → 二十一 (for headings up to 99; larger numbers in digits)."""
    if not 0 < n < 100:
        return str(n)
    tens, ones = divmod(n, 10)
    head = "" if tens == 0 else ("十" if tens == 1 else _DIGITS[tens] + "十")
    return head + (_DIGITS[ones] if ones else "")


def inline(text: str) -> str:
    """Escape Markdown syntax in public text (titles, suggestions) so it prints as written."""
    return _MARKDOWN.sub(r"\\\1", text).replace("\n", " ")


def _paragraphs(text: str) -> str:
    return "\n\n".join(inline(p) for p in text.splitlines() if p.strip()) or "（无）"


def _pct(value: float | None) -> str:
    return format_cell(value, RATE)


def _excerpt_item(index: int, item: ExcerptItem, masked: bool) -> list[str]:
    b = item.brief
    p = item.proposer
    who = f"{inline(p.name)}（{L.label(L.PROPOSER_KIND, p.kind)}）"
    if not masked:
        who += f"；电话：{p.phone or '—'}；地址：{inline(p.address or '—')}"
    lines = [
        f"## {chinese_number(index)}、{inline(b.title)}",
        "",
        f"- 编号：{b.id}；登记号：{b.registration_number or '—'}",
        f"- 方面：{inline(b.area_name or b.area)}" + (f"；议题：{b.topic}" if b.topic else ""),
        f"- 建议人：{who}",
        f"- 推荐单位：{inline(b.recommending_unit_name or b.recommending_unit or '群众直接提出')}；"
        f"主办单位：{inline(b.lead_unit_name or b.lead_unit or '—')}",
        f"- 办理结果：{L.label(L.OUTCOME, b.outcome) or '未决定'}"
        + (f"（采纳部分：{inline(b.adopted_part)}）" if b.adopted_part else ""),
    ]
    if b.adopted_into:
        lines.append(f"- 吸纳转化为：{inline(b.adopted_into)}")
    if b.evaluation_total is not None or b.reward_tier:
        lines.append(f"- 评比总分：{b.evaluation_total if b.evaluation_total is not None else '—'}；"
                     f"奖励备选等次：{L.label(L.TIER, b.reward_tier) or '—'}")
    lines += ["", "### 建议事项", "", _paragraphs(item.subject), "", "### 存在问题", "", _paragraphs(item.problem),
              "", "### 意见建议", "", _paragraphs(item.measures), ""]
    if item.reply:
        lines += ["### 办理答复", "", _paragraphs(item.reply), ""]
    return lines


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
    if not selected:
        lines += ["本期无摘报建议。", ""]
    for index, item in enumerate(selected, start=1):
        lines += _excerpt_item(index, item, report.masked)
    return "\n".join(lines)


def _brief_line(b: SuggestionBrief) -> str:
    parts = [f"主办单位：{inline(b.lead_unit_name or b.lead_unit or '—')}",
             f"办理结果：{L.label(L.OUTCOME, b.outcome) or '未决定'}"]
    if b.adopted_into:
        parts.append(f"吸纳转化为：{inline(b.adopted_into)}")
    if b.reward_tier:
        parts.append(f"奖励备选：{L.label(L.TIER, b.reward_tier)}")
    if b.typical_case:
        parts.append("典型案例")
    return f"- 「{inline(b.title)}」（{b.id}；{'；'.join(parts)}）"


def analysis_report(report: CampaignReport) -> str:
    """分析报告: the campaign in numbers and highlights, in the order such reports are written.

    Sections: overall (arrivals by phase and channel, quota), handling (outcomes, timeliness,
    satisfaction), areas and their best adopted suggestions, adopted measures, typical
    cases, evaluation and rewards, organisation award candidates, and what needs attention.
    """
    r = report
    phases = "，".join(f"{p.name} {p.count} 件" for p in r.by_phase if p.count)
    channels = "，".join(f"{L.label(L.CHANNEL, k)} {n} 件"
                        for k, n in sorted(r.by_channel.items(), key=lambda kv: -kv[1]) if n)
    met = sum(1 for q in r.quota if q.met)
    steps = "，".join(f"{L.label(L.STEP, s.step)} {_pct(s.rate)}" for s in r.on_time_by_step)
    o = r.by_outcome
    s = r.satisfaction
    lines = [
        f"# 「{inline(r.theme)}」人民建议专题征集活动分析报告",
        "",
        f"统计时间：{local_text(r.generated_at)}；依据事件记录 {r.events} 条（摘要 `{r.history_digest[:16]}`）。",
        "",
        f"## {chinese_number(1)}、总体情况",
        "",
        f"本次活动共收到人民建议 {r.suggestions} 件（{phases or '暂无'}）。征集渠道：{channels or '暂无'}。"
        f"应推荐单位 {len(r.quota)} 个，完成推荐任务（不少于规定篇数）{met} 个。",
        "",
        f"## {chinese_number(2)}、办理情况",
        "",
        f"已作出办理决定 {r.decided} 件，其中采纳 {o.get('adopted', 0)} 件、"
        f"部分采纳 {o.get('partially_adopted', 0)} 件、不予采纳 {o.get('declined', 0)} 件，"
        f"采纳率 {_pct(r.adoption_rate)}。"
        f"按时办理率 {_pct(r.on_time_rate)}（{steps}）。逾期未办结 {len(r.overdue)} 件，延期 {r.extensions.count} 次，"
        f"重新办理 {r.reopens} 次。",
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
    lines += [_brief_line(b) for b in sp.adoptions] or ["暂无记录的吸纳转化成果。"]
    lines += ["", f"## {chinese_number(5)}、典型案例", ""]
    lines += [_brief_line(b) for b in sp.typical_cases] or ["暂无。"]
    ev = sp.evaluations
    forms = "，".join(f"{L.label(L.FORM, k)} {n} 件" for k, n in sp.upward_reports.items() if n)
    lines += [
        "",
        f"## {chinese_number(6)}、评比与报送",
        "",
        f"已评比 {ev.count} 件，质量、价值、效果平均分分别为 {format_cell(ev.mean_quality, NUM)}、"
        f"{format_cell(ev.mean_value, NUM)}、{format_cell(ev.mean_effect, NUM)}（总分平均 "
        f"{format_cell(ev.mean_total, NUM)}）。呈报党委政府：{forms or '暂无'}；"
        f"呈送市信访办 {sp.forwarded_to_city} 件；"
        f"纳入奖励备选 {len(sp.reward_candidates)} 件。",
        "",
    ]
    lines += [_brief_line(b) for b in sp.reward_candidates]
    lines += ["", f"## {chinese_number(7)}、组织奖候选单位", "",
              f"条件：完成推荐任务、作为主办单位按时办理率不低于 {AWARD_ON_TIME_MIN:.0%}、"
              "推荐建议至少 1 件被采纳。", ""]
    lines += [f"{a.rank}. {inline(a.name)}（推荐 {a.recommended} 件，被采纳 {a.adopted} 件，"
              f"按时率 {_pct(a.on_time_rate) if a.judged else '无主办件'}）"
              for a in r.organisation_award] or ["暂无符合条件的单位。"]
    overdue_units = Counter(o.lead_unit_name or o.lead_unit or "区征集办" for o in r.overdue)
    short = [q for q in r.quota if not q.met]
    lines += ["", f"## {chinese_number(8)}、需关注的问题", ""]
    if overdue_units:
        lines.append("逾期未办结：" + "，".join(f"{inline(u)} {n} 件" for u, n in overdue_units.most_common()) + "。")
    if short:
        lines.append(f"未完成推荐任务的单位 {len(short)} 个：" + "、".join(inline(q.name) for q in short) + "。")
    if not overdue_units and not short:
        lines.append("暂无。")
    lines.append("")
    return "\n".join(lines)

