"""Chinese labels for the codes a report carries.

The report itself keeps codes (``adopted``, ``research``...) so it is stable data; every
renderer shows the same Chinese words for them, from here.  An unknown code is shown as
itself rather than failing: a newer store may hold values this version does not know.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..domain.deadlines import Step
from ..domain.model import Channel, Outcome, ProposerKind, Rating, ReportForm, RewardTier, State

STATE: Mapping[str, str] = {
    State.RECEIVED: "已收到",
    State.REGISTERED: "已登记",
    State.TRANSFERRED: "已转送交办",
    State.RESEARCHED: "已调研论证",
    State.ADOPTED: "采纳",
    State.PARTIALLY_ADOPTED: "部分采纳",
    State.DECLINED: "不予采纳",
    State.REPLIED: "已回复",
    State.RATED: "已评价",
    State.NOT_ACCEPTED: "不予受理",
    State.WITHDRAWN: "已撤回",
    State.RETURNED: "已退回",
    State.UNRATED: "评价期满未评价",
}

OUTCOME: Mapping[str, str] = {
    Outcome.ADOPTED: "采纳",
    Outcome.PARTIALLY_ADOPTED: "部分采纳",
    Outcome.DECLINED: "不予采纳",
    "undecided": "未决定",
}

RATING: Mapping[str, str] = {
    Rating.SATISFIED: "满意",
    Rating.BASICALLY_SATISFIED: "基本满意",
    Rating.DISSATISFIED: "不满意",
}

CHANNEL: Mapping[str, str] = {
    Channel.ONLINE_PORTAL: "门户网站",
    Channel.WECHAT: "微信公众号",
    Channel.DOUYIN: "抖音",
    Channel.EMAIL: "电子邮箱",
    Channel.LETTER: "书信",
    Channel.ON_SITE: "现场征集",
    Channel.CIRCUIT_VISIT: "巡回接访",
    Channel.PHONE: "电话",
}

STEP: Mapping[str, str] = {
    Step.REGISTER: "登记转送",
    Step.OBJECT_TRANSFER: "异议退回",
    Step.RESEARCH: "调研论证并决定",
    Step.REPLY: "答复建议人",
    Step.RATE: "满意度评价",
}

FORM: Mapping[str, str] = {
    ReportForm.ORIGINAL: "原件",
    ReportForm.EXCERPT: "摘报",
    ReportForm.ANALYSIS: "分析报告",
}

TIER: Mapping[str, str] = {
    RewardTier.SPECIAL: "特等",
    RewardTier.FIRST: "一等",
    RewardTier.SECOND: "二等",
    RewardTier.THIRD: "三等",
    RewardTier.ENCOURAGEMENT: "鼓励",
}

PROPOSER_KIND: Mapping[str, str] = {
    ProposerKind.CITIZEN: "市民",
    ProposerKind.INFORMATION_OFFICER: "人民建议信息员",
    ProposerKind.PARTY_MEMBER_OR_CADRE: "党员干部",
    ProposerKind.PARTY_CONGRESS_DEPUTY: "党代表",
    ProposerKind.PEOPLES_CONGRESS_DEPUTY: "人大代表",
    ProposerKind.CPPCC_MEMBER: "政协委员",
}

UNIT_KIND: Mapping[str, str] = {"street": "街道", "town": "镇", "department": "区级部门"}


def label(table: Mapping[str, str], code: str | None) -> str:
    """The Chinese label of ``code`` ("" for ``None``, the code itself if unknown)."""
    if code is None:
        return ""
    return table.get(code, code)
