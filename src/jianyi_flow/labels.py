"""Chinese labels for every code the API exposes: enum values, command names, input fields.

One table per enum, keyed by the member's value (its code), so a table serves a member
(``STATE[State.REGISTERED]``: a ``StrEnum`` member is equal to its value) and a code read
from a report or a JSON payload (``STATE["registered"]``) alike.  Renderers, the state
diagram, error messages (:mod:`jianyi_flow.errors`) and portals all take their Chinese
words from here; tests/test_labels.py fails when a member of an exposed enum has no
label, and keeps the "Labels" section of docs/glossary.md equal to :func:`glossary_tables`.

The words follow the 2024 Yongchuan notice and 信访工作条例 (2022); see docs/glossary.md.
This module imports nothing from the package: :mod:`jianyi_flow.errors`, which everything
imports, builds its Chinese messages from these tables.

>>> from jianyi_flow.domain.model import State
>>> label(State.REGISTERED)
'已登记'
>>> code_label(STATE, "registered"), code_label(STATE, None), code_label(STATE, "from_the_future")
('已登记', '', 'from_the_future')
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

__all__ = [
    "ADOPTION_FORM",
    "BY_ENUM",
    "CHANNEL",
    "COMMAND",
    "DAY_KIND",
    "FIELD",
    "OUTCOME",
    "PROPOSER_KIND",
    "RATING",
    "RECORD",
    "REPLY_FORM",
    "REPORT_FORM",
    "RESEARCH_METHOD",
    "REWARD_TIER",
    "ROLE",
    "SCOPE",
    "STATE",
    "STEP",
    "UNIT_KIND",
    "WINDOW",
    "code_label",
    "command_label",
    "field_label",
    "glossary_tables",
    "label",
]

# --- enums of jianyi_flow.domain.model ----------------------------------------------------

STATE: Mapping[str, str] = {
    "received": "已收到",
    "registered": "已登记",
    "transferred": "已转送交办",
    "researched": "已调研论证",
    "adopted": "采纳",
    "partially_adopted": "部分采纳",
    "declined": "不予采纳",
    "replied": "已回复",
    "rated": "已评价",
    "not_accepted": "不予受理",
    "withdrawn": "已撤回",
    "returned": "已退回",
    "objected": "异议待核",
    "unrated": "评价期满未评价",
}
"""``State`` (办理状态)."""

OUTCOME: Mapping[str, str] = {
    "adopted": "采纳",
    "partially_adopted": "部分采纳",
    "declined": "不予采纳",
}
"""``Outcome`` (办理结果)."""

RATING: Mapping[str, str] = {
    "satisfied": "满意",
    "basically_satisfied": "基本满意",
    "dissatisfied": "不满意",
}
"""``Rating`` (满意度评价)."""

ROLE: Mapping[str, str] = {
    "proposer": "建议人",
    "information_officer": "人民建议信息员",
    "recommending_unit": "推荐单位",
    "collection_office": "区征集办",
    "handling_unit": "承办单位",
    "handling_unit_head": "承办单位负责人",
    "leadership": "党委政府",
    "municipal_office": "市信访办",
    "evaluator": "评比人",
    "system": "系统",
}
"""``Role``."""

STEP: Mapping[str, str] = {
    "register": "登记转送",
    "object_transfer": "异议退回",
    "research": "调研论证并决定",
    "reply": "答复建议人",
    "rate": "满意度评价",
}
"""``Step``: the steps that have a deadline (办理环节)."""

CHANNEL: Mapping[str, str] = {
    "online_portal": "门户网站",
    "wechat": "微信公众号",
    "douyin": "抖音",
    "email": "电子邮箱",
    "letter": "书信",
    "on_site": "现场征集",
    "circuit_visit": "巡回接访",
    "phone": "电话",
    "recommendation_form": "建议征集推荐表",
}
"""``Channel`` (征集渠道)."""

PROPOSER_KIND: Mapping[str, str] = {
    "citizen": "市民",
    "information_officer": "人民建议信息员",
    "party_member_or_cadre": "党员干部",
    "party_congress_deputy": "党代表",
    "peoples_congress_deputy": "人大代表",
    "cppcc_member": "政协委员",
}
"""``ProposerKind`` (建议人身份)."""

REPORT_FORM: Mapping[str, str] = {
    "original": "原件",
    "excerpt": "摘报",
    "analysis": "分析报告",
}
"""``ReportForm`` (呈报方式)."""

REWARD_TIER: Mapping[str, str] = {
    "special": "特等",
    "first": "一等",
    "second": "二等",
    "third": "三等",
    "encouragement": "鼓励",
}
"""``RewardTier`` (奖励等次)."""

RESEARCH_METHOD: Mapping[str, str] = {
    "forum": "座谈",
    "seminar": "研讨",
    "hearing": "听证",
    "field_visit": "实地走访",
    "written_consultation": "书面征求意见",
    "survey": "问卷调查",
    "expert_review": "专家论证",
    "other": "其他",
}
"""``ResearchMethod`` (调研论证方式)."""

REPLY_FORM: Mapping[str, str] = {
    "written": "书面",
    "phone": "电话",
    "sms": "短信",
    "online": "网络",
    "in_person": "当面",
}
"""``ReplyForm`` (答复方式)."""

ADOPTION_FORM: Mapping[str, str] = {
    "policy": "完善政策措施",
    "mechanism": "健全机制制度",
    "work_measure": "改进工作举措",
    "other": "其他",
}
"""``AdoptionForm`` (吸纳转化运用的形式)."""

# --- enums of other modules ---------------------------------------------------------------

DAY_KIND: Mapping[str, str] = {
    "working_day": "工作日",
    "weekend": "休息日",
    "holiday": "法定节假日",
    "swapped_working_day": "调休上班日",
}
"""``DayKind`` of :mod:`jianyi_flow.domain.calendar`."""

UNIT_KIND: Mapping[str, str] = {
    "street": "街道",
    "town": "镇",
    "department": "区级部门",
}
"""``UnitKind`` of :mod:`jianyi_flow.domain.campaign`."""

SCOPE: Mapping[str, str] = {
    "any": "不限",
    "own_suggestion": "建议人本人",
    "submitted": "提交人",
    "recommending_unit": "推荐单位",
    "lead_unit": "主办单位",
    "handling_unit": "主办或协办单位",
}
"""``Scope`` of :mod:`jianyi_flow.service.permissions`: how an actor must relate to a suggestion."""

CALENDAR_MODE: Mapping[str, str] = {
    "provisional": "暂定模式（未公布年份按放假办法推定）",
    "strict": "严格模式（未公布年份不予计算）",
}
"""``CalendarMode`` of :mod:`jianyi_flow.domain.calendar`."""

HEALTH_STATUS: Mapping[str, str] = {
    "ok": "正常",
    "provisional": "含暂定日期",
    "uncovered": "有无法计算的年份",
}
"""``HealthStatus`` of :mod:`jianyi_flow.domain.calendar`."""

ORDER: Mapping[str, str] = {
    "id": "编号",
    "received_at": "收到时间",
    "due_at": "办理期限",
    "registration_number": "登记号",
}
"""``Order`` of :mod:`jianyi_flow.storage.base`: what a list is sorted by."""

RELATION: Mapping[str, str] = {
    "lead": "主办",
    "co_handling": "协办",
    "recommending": "推荐",
}
"""``Relation`` of :mod:`jianyi_flow.service.flow`: how a listed suggestion relates to a unit."""

RECIPIENT: Mapping[str, str] = {
    "office": "区征集办",
    "proposer": "建议人",
    "transfer_units": "主办和协办单位",
    "lead_unit_or_office": "主办单位（无则区征集办）",
    "lead_unit_and_office": "原主办单位和区征集办",
    "responsible": "当前办理单位（无则区征集办）",
    "leadership": "党委政府",
    "municipal_office": "市信访办",
}
"""``Recipient`` of :mod:`jianyi_flow.service.commands`: who an outbox message goes to."""

BY_ENUM: Mapping[str, Mapping[str, str]] = {
    "State": STATE,
    "Outcome": OUTCOME,
    "Rating": RATING,
    "Role": ROLE,
    "Step": STEP,
    "Channel": CHANNEL,
    "ProposerKind": PROPOSER_KIND,
    "ReportForm": REPORT_FORM,
    "RewardTier": REWARD_TIER,
    "ResearchMethod": RESEARCH_METHOD,
    "ReplyForm": REPLY_FORM,
    "AdoptionForm": ADOPTION_FORM,
    "DayKind": DAY_KIND,
    "UnitKind": UNIT_KIND,
    "Scope": SCOPE,
    "CalendarMode": CALENDAR_MODE,
    "HealthStatus": HEALTH_STATUS,
    "Order": ORDER,
    "Recipient": RECIPIENT,
    "Relation": RELATION,
}
"""The table of each exposed enum, by the enum's class name (the names are unique in the API)."""

# --- names that are not enums -------------------------------------------------------------

COMMAND: Mapping[str, str] = {
    "receive": "收到建议",
    "register": "登记",
    "not_accept": "不予受理",
    "transfer": "转送交办",
    "return_transfer": "退回",
    "object_transfer": "提出异议",
    "accept_objection": "异议成立",
    "reject_objection": "异议不成立",
    "research": "调研论证",
    "decide": "作出办理决定",
    "adopt": "采纳",
    "adopt_partially": "部分采纳",
    "decline": "不予采纳",
    "reply": "答复",
    "rate": "评价",
    "withdraw": "撤回",
    "reopen": "重新办理",
    "extend": "延期",
    "request_extension": "申请延期",
    "approve_extension": "批准延期",
    "reject_extension": "不予延期",
    "retime": "重新计算期限",
    "migrate_state": "迁移办理状态",
    "erase_personal_data": "删除个人信息",
    "erase_expired": "期满个人信息去标识化",
    "vault_personal_data": "个人信息迁移至个人信息库",
    "close_unrated": "评价期满",
    "flag_overdue": "超期提醒",
    "report_upward": "呈报",
    "forward_to_city": "呈送市信访办",
    "evaluate": "评比",
    "nominate_reward": "纳入奖励备选",
    "record_adoption": "吸纳转化运用",
    "mark_typical": "典型案例",
    "view": "查看",
    "get": "查看",
    "history": "查看办理记录",
    "list_suggestions": "查询建议列表",
    "available_commands": "可办理的操作",
    "overdue": "超期建议",
    "due_soon": "即将到期建议",
    "run_command": "执行新增的办理操作",
}
"""Commands: every ``Flow`` command, the workflow triggers ``decide`` fires (``adopt``,
``adopt_partially``, ``decline``), Flow's reads, and ``view`` (reading a suggestion, which
permissions check).  ``return_transfer`` and ``extend`` are commands of earlier versions that
stores written by them still hold."""

FIELD: Mapping[str, str] = {
    "draft": "建议内容",
    "title": "标题",
    "subject": "建议事项",
    "problem": "存在问题",
    "measures": "意见建议",
    "area": "领域",
    "topic": "议题",
    "channel": "征集渠道",
    "recommending_unit": "推荐单位",
    "accused_units": "被反映单位",
    "proposer": "建议人",
    "proposer.kind": "建议人身份",
    "proposer.name": "姓名",
    "proposer.phone": "电话",
    "proposer.address": "地址",
    "proposer.confidential": "是否保密",
    "proposer.account": "账号",
    "suggestion_id": "建议编号",
    "registration_number": "登记编号",
    "reason": "理由",
    "note": "备注",
    "lead_unit": "主办单位",
    "co_units": "协办单位",
    "findings": "调研论证情况",
    "outcome": "办理结果",
    "adopted_part": "采纳部分",
    "text": "答复内容",
    "rating": "评价",
    "comment": "评价意见",
    "days": "延期天数",
    "approver": "批准人",
    "form": "呈报方式",
    "method": "调研论证方式",
    "institution": "来源机构",
    "quality": "质量得分",
    "value": "价值得分",
    "effect": "效果得分",
    "evaluator": "评比人",
    "tier": "奖励等次",
    "adopted_into": "吸纳转化为",
    "typical_case": "典型案例",
    "forward_to_city": "呈送市信访办",
    "objection_due_at": "异议期限",
    "actor": "操作人",
    "actor.id": "操作人账号",
    "actor.role": "操作人角色",
    "actor.unit": "操作人单位",
    "actor.name": "操作人姓名",
    "idempotency_key": "提交编号",
    "now": "时间",
    "time": "时间",
}
"""Input fields, as error messages and portal forms name them (the keys are the names
:class:`~jianyi_flow.errors.ValidationError` reports in ``field``)."""

RECORD: Mapping[str, str] = {
    "suggestion": "建议",
    "area": "领域",
    "topic": "议题",
    "unit": "单位",
    "phase": "阶段",
    "campaign": "征集活动",
}
"""What :class:`~jianyi_flow.errors.NotFound` did not find (its ``what``)."""

WINDOW: Mapping[str, str] = {
    "objection": "异议期",
    "rating": "评价期",
}
"""Time windows a :class:`~jianyi_flow.errors.WindowClosed` names: the lead unit's
5-working-day objection window (信访工作条例 Art. 23) and the proposer's rating window."""


# --- lookups ------------------------------------------------------------------------------


def label(member: enum.Enum) -> str:
    """The Chinese label of a member of an exposed enum (its value if the enum has no table)."""
    table = BY_ENUM.get(type(member).__name__, {})
    return code_label(table, member)


def code_label(table: Mapping[str, str], code: object) -> str:
    """The label of ``code`` in ``table``: "" for ``None``, the code itself if unknown.

    ``code`` may be a value (``"registered"``) or an enum member.  An unknown code is shown
    as itself rather than failing: a newer store may hold values this version does not know.
    """
    if code is None:
        return ""
    key = code.value if isinstance(code, enum.Enum) else code
    if not isinstance(key, str):
        return str(key)
    return table.get(key, key)


def command_label(command: str) -> str:
    """The Chinese name of a command (the command itself if unknown)."""
    return code_label(COMMAND, command)


COMMAND_FIELD: Mapping[tuple[str, str], str] = {
    ("reply", "form"): "答复方式",
    ("record_adoption", "form"): "转化形式",
    ("report_upward", "form"): "呈报方式",
    ("request_extension", "days"): "延期天数",
    ("request_extension", "reason"): "延期理由",
    ("object_transfer", "reason"): "异议理由",
}
"""A field whose name means something else in one command (``form`` of ``reply`` is 答复方式)."""


def field_label(field: str, command: str | None = None) -> str:
    """The Chinese name of an input field (of ``command`` when given), ``""`` when there is none.

    ``proposer.phone`` has its own entry; other dotted or indexed names
    (``topics[T01].area``) have none, and an error message then quotes the field's code.
    """
    if command is not None:
        own = COMMAND_FIELD.get((command, field))
        if own is not None:
            return own
    return FIELD.get(field, "")


# --- docs ---------------------------------------------------------------------------------

_GLOSSARY_ENUMS: tuple[tuple[str, str, Mapping[str, str]], ...] = (
    ("State", "办理状态", STATE),
    ("Outcome", "办理结果", OUTCOME),
    ("Rating", "满意度评价", RATING),
    ("Role", "角色", ROLE),
    ("Step", "办理环节", STEP),
    ("Channel", "征集渠道", CHANNEL),
    ("ProposerKind", "建议人身份", PROPOSER_KIND),
    ("ReportForm", "呈报方式", REPORT_FORM),
    ("RewardTier", "奖励等次", REWARD_TIER),
    ("ResearchMethod", "调研论证方式", RESEARCH_METHOD),
    ("ReplyForm", "答复方式", REPLY_FORM),
    ("AdoptionForm", "吸纳转化运用形式", ADOPTION_FORM),
    ("DayKind", "日期类型", DAY_KIND),
    ("UnitKind", "单位类别", UNIT_KIND),
    ("Scope", "权限范围", SCOPE),
)


def _table(title: str, header: str, rows: Mapping[str, str]) -> list[str]:
    lines = [f"### {title}", "", f"| {header} | 中文 |", "|---|---|"]
    lines.extend(f"| `{code}` | {text} |" for code, text in rows.items())
    return [*lines, ""]


def glossary_tables() -> str:
    """The label tables of docs/glossary.md ("Labels" section), as Markdown."""
    lines: list[str] = []
    for name, title, table in _GLOSSARY_ENUMS:
        lines.extend(_table(f"`{name}` ({title})", "value", table))
    lines.extend(_table("Commands (操作)", "command", COMMAND))
    lines.extend(_table("Input fields (填写项)", "field", FIELD))
    return "\n".join(lines)
