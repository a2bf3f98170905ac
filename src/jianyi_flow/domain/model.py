"""The domain model: suggestions, proposers, actors and events, as immutable attrs classes.

A command never edits a suggestion in place: it produces an :class:`Event` whose
``changes`` say which fields took which values, and
:func:`~jianyi_flow.domain.codec.apply_event` folds that event into the previous
suggestion.  Replaying a suggestion's events from nothing therefore rebuilds it exactly
(:func:`~jianyi_flow.domain.codec.replay`), which is what makes the history trustworthy
and what the tests check.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from typing import Any

import attrs


class State(enum.StrEnum):
    """Where a suggestion is in its handling (办理状态)."""

    RECEIVED = "received"  # 已收到
    REGISTERED = "registered"  # 已登记
    TRANSFERRED = "transferred"  # 已转送交办
    RESEARCHED = "researched"  # 已调研论证
    ADOPTED = "adopted"  # 采纳
    PARTIALLY_ADOPTED = "partially_adopted"  # 部分采纳
    DECLINED = "declined"  # 不予采纳
    REPLIED = "replied"  # 已回复
    RATED = "rated"  # 已评价
    NOT_ACCEPTED = "not_accepted"  # 不予受理 (not a suggestion, e.g. a personal complaint)
    WITHDRAWN = "withdrawn"  # 建议人撤回
    RETURNED = "returned"  # 已退回 (a misrouted transfer back with the office, to be routed again)
    OBJECTED = "objected"  # 异议待核 (the lead unit objected to a misroute; the office verifies)
    UNRATED = "unrated"  # 评价期满未评价 (rating window closed, never rated)


TERMINAL_STATES = frozenset({State.NOT_ACCEPTED, State.WITHDRAWN, State.UNRATED})
"""States no command leaves (RATED is final too, except for one reopen after 'dissatisfied')."""


class Channel(enum.StrEnum):
    """How the suggestion arrived (征集渠道)."""

    ONLINE_PORTAL = "online_portal"  # 门户网站
    WECHAT = "wechat"  # 微信公众号
    DOUYIN = "douyin"  # 抖音
    EMAIL = "email"  # 电子邮箱
    LETTER = "letter"  # 书信
    ON_SITE = "on_site"  # 现场征集
    CIRCUIT_VISIT = "circuit_visit"  # 巡回接访
    PHONE = "phone"  # 电话
    RECOMMENDATION_FORM = "recommendation_form"  # 建议征集推荐表 (a unit's recommendation, notice 四（二）2)


class ProposerKind(enum.StrEnum):
    """Who the proposer is (建议人身份)."""

    CITIZEN = "citizen"  # 市民
    INFORMATION_OFFICER = "information_officer"  # 人民建议信息员
    PARTY_MEMBER_OR_CADRE = "party_member_or_cadre"  # 党员干部
    PARTY_CONGRESS_DEPUTY = "party_congress_deputy"  # 党代表
    PEOPLES_CONGRESS_DEPUTY = "peoples_congress_deputy"  # 人大代表
    CPPCC_MEMBER = "cppcc_member"  # 政协委员


class Outcome(enum.StrEnum):
    """The handling unit's decision (办理结果)."""

    ADOPTED = "adopted"  # 采纳
    PARTIALLY_ADOPTED = "partially_adopted"  # 部分采纳
    DECLINED = "declined"  # 不予采纳


class Rating(enum.StrEnum):
    """The proposer's rating of the reply (满意度评价)."""

    SATISFIED = "satisfied"  # 满意
    BASICALLY_SATISFIED = "basically_satisfied"  # 基本满意
    DISSATISFIED = "dissatisfied"  # 不满意


class Role(enum.StrEnum):
    """What an actor acts as.  Permission rules are written in terms of these."""

    PROPOSER = "proposer"  # 建议人
    INFORMATION_OFFICER = "information_officer"  # 人民建议信息员
    RECOMMENDING_UNIT = "recommending_unit"  # 推荐单位 (town/street or department)
    COLLECTION_OFFICE = "collection_office"  # 区征集办
    HANDLING_UNIT = "handling_unit"  # 承办单位 (lead or co-handling)
    HANDLING_UNIT_HEAD = "handling_unit_head"  # 承办单位负责人 (approves its unit's extensions)
    LEADERSHIP = "leadership"  # 党委政府
    MUNICIPAL_OFFICE = "municipal_office"  # 市信访办 (市政府人民建议征集办公室)
    EVALUATOR = "evaluator"  # 评比人
    SYSTEM = "system"  # the engine itself (tick)


class ReportForm(enum.StrEnum):
    """How a suggestion is reported upward to the party committee and government (呈报方式)."""

    ORIGINAL = "original"  # 原件
    EXCERPT = "excerpt"  # 摘报
    ANALYSIS = "analysis"  # 分析报告


class RewardTier(enum.StrEnum):
    """Reward candidate tiers (奖励等次), after the Chongqing people's-suggestion reward rules."""

    SPECIAL = "special"  # 特等
    FIRST = "first"  # 一等
    SECOND = "second"  # 二等
    THIRD = "third"  # 三等
    ENCOURAGEMENT = "encouragement"  # 鼓励


class Step(enum.StrEnum):
    """The steps of handling a suggestion that have a deadline (see :mod:`jianyi_flow.domain.deadlines`)."""

    REGISTER = "register"
    """Register the suggestion and route it to the unit with authority, counted from receipt."""
    OBJECT_TRANSFER = "object_transfer"
    """A unit objects to a suggestion transferred to it that is not within its remit."""
    RESEARCH = "research"
    """The responsible unit studies the suggestion and decides whether to adopt it."""
    REPLY = "reply"
    """The decision is written up and sent to the proposer."""
    RATE = "rate"
    """The proposer may rate the handling (满意度评价)."""


class ResearchMethod(enum.StrEnum):
    """How the handling unit researched the suggestion (调研论证方式; 信访工作条例 Art. 29 研究论证)."""

    FORUM = "forum"  # 座谈
    SEMINAR = "seminar"  # 研讨
    HEARING = "hearing"  # 听证
    FIELD_VISIT = "field_visit"  # 实地走访
    WRITTEN_CONSULTATION = "written_consultation"  # 书面征求意见
    SURVEY = "survey"  # 问卷调查
    EXPERT_REVIEW = "expert_review"  # 专家论证
    OTHER = "other"  # 其他


class ReplyForm(enum.StrEnum):
    """How the reply reached the proposer (答复方式)."""

    WRITTEN = "written"  # 书面
    PHONE = "phone"  # 电话
    SMS = "sms"  # 短信
    ONLINE = "online"  # 网络
    IN_PERSON = "in_person"  # 当面


class AdoptionForm(enum.StrEnum):
    """What an adopted suggestion became (吸纳转化运用; notice 四（三）: 健全机制制度、完善政策措施)."""

    POLICY = "policy"  # 完善政策措施
    MECHANISM = "mechanism"  # 健全机制制度
    WORK_MEASURE = "work_measure"  # 改进工作举措
    OTHER = "other"  # 其他


SCORE_MIN = 0
SCORE_MAX = 10


@attrs.frozen
class Evaluation:
    """A summary-phase evaluation on quality, value and effect (质量、价值、效果).

    Each dimension is scored 0–10 by a named evaluator; ``total`` is their sum (0–30).
    The notice names the three dimensions but no scale: 0–10 is our documented choice.
    """

    quality: int
    value: int
    effect: int
    evaluator: str

    @property
    def total(self) -> int:
        return self.quality + self.value + self.effect


def _mask_middle(value: str | None) -> str | None:
    if value is None:
        return None
    if len(value) <= 4:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 5) + value[-2:]


def mask_name(name: str) -> str:
    """张三丰 → 张**: keeps the family name only."""
    return name[:1] + "*" * max(len(name) - 1, 1) if name else name


def mask_phone(phone: str | None) -> str | None:
    """13812345678 → 138******78."""
    return _mask_middle(phone)


def _lenient(kind: type[enum.Enum], value: Any) -> Any:
    """``value`` as a member of ``kind`` if it is one of its values, else ``value`` unchanged.

    Leaving a bad value in place lets :class:`~jianyi_flow.Flow` refuse it with a
    :class:`~jianyi_flow.errors.ValidationError` naming the field, instead of a bare
    ``ValueError`` from a constructor.
    """
    if isinstance(value, kind):
        return value
    try:
        return kind(value)
    except (ValueError, TypeError):
        return value


def _to_proposer_kind(value: Any) -> Any:
    return _lenient(ProposerKind, value)


def _to_role(value: Any) -> Any:
    return _lenient(Role, value)


def _to_channel(value: Any) -> Any:
    return _lenient(Channel, value)


def _tuple_of_codes(value: Any) -> Any:
    """Lists become tuples; a single string is kept as is (so Flow refuses it, not splits it)."""
    return tuple(value) if isinstance(value, (list, tuple, set, frozenset)) else value


def _masked_repr(value: object) -> str:
    return "'***'" if value else repr(value)


@attrs.frozen(repr=False)
class Proposer:
    """The person who made the suggestion (建议人).

    ``phone`` and ``address`` never appear in ``repr`` (nor the name of a confidential
    proposer); a ``confidential`` proposer asked
    for name and privacy to be kept: handling units see a masked view (:meth:`masked`).
    """

    name: str
    kind: ProposerKind = attrs.field(default=ProposerKind.CITIZEN, converter=_to_proposer_kind)
    phone: str | None = attrs.field(default=None, repr=_masked_repr)
    address: str | None = attrs.field(default=None, repr=_masked_repr)
    confidential: bool = False
    account: str | None = None
    """The portal account that speaks for the proposer (used to check who may rate)."""
    vaulted: bool = attrs.field(default=False, metadata={"added_later": True})
    """The name, phone, address and account live in the store's personal-data vault, not in the
    history (:mod:`jianyi_flow.domain.personal`); ``False`` for suggestions received before it."""
    erased: str | None = attrs.field(default=None, metadata={"added_later": True})
    """``"erased"`` (已删除) or ``"pseudonymised"`` (已脱敏) once the vaulted data was erased."""

    def __repr__(self) -> str:
        name = mask_name(self.name) if self.confidential else self.name
        extra = "" if not self.vaulted else f", vaulted=True, erased={self.erased!r}"
        return (
            f"Proposer(name={name!r}, kind={self.kind!r}, phone={_masked_repr(self.phone)}, "
            f"address={_masked_repr(self.address)}, confidential={self.confidential!r}, account={self.account!r}"
            f"{extra})"
        )

    def pseudonymous(self) -> Proposer:
        """This proposer without the data the vault holds (what the history records of them)."""
        if self.erased:
            return self
        return Proposer("", self.kind, None, None, self.confidential, None, self.vaulted, self.erased)

    def masked(self) -> Proposer:
        """The view for someone who may not see personal data.

        The phone is masked, the address hidden and the portal account dropped (it may be a
        phone number or an e-mail address); a confidential proposer's name is masked too.
        An erased proposer has nothing left to mask.
        """
        if self.erased:
            return self
        return attrs.evolve(
            self,
            name=mask_name(self.name) if self.confidential else self.name,
            phone=mask_phone(self.phone),
            address=None if self.address is None else "***",
            account=None,
        )


@attrs.frozen
class Actor:
    """Who runs a command: an id, a role, and the unit they act for where it applies."""

    id: str
    role: Role = attrs.field(converter=_to_role)
    unit: str | None = None
    name: str | None = None

    def __str__(self) -> str:
        where = f"@{self.unit}" if self.unit else ""
        return f"{self.role.value}:{self.id}{where}"

    @property
    def key(self) -> str:
        """``role:id@unit``: who this is, as one string (idempotency keys are scoped to it)."""
        return str(self)

    @property
    def ref(self) -> str:
        """``role:id``: the person behind the actor whatever unit they act for (``received_by``)."""
        return f"{self.role.value}:{self.id}"


SYSTEM_ACTOR = Actor(id="jianyi_flow", role=Role.SYSTEM)


@attrs.frozen
class SuggestionDraft:
    """What a proposer or portal submits; :meth:`jianyi_flow.Flow.receive` turns it into a suggestion.

    The three parts a suggestion has: ``subject`` (建议事项), ``problem`` (存在问题)
    and ``measures`` (意见建议/具体措施).
    """

    title: str
    subject: str
    problem: str
    measures: str
    area: str
    proposer: Proposer
    channel: Channel = attrs.field(default=Channel.ONLINE_PORTAL, converter=_to_channel)
    topic: str | None = None
    recommending_unit: str | None = None
    accused_units: tuple[str, ...] = attrs.field(default=(), converter=_tuple_of_codes)
    """Units the material accuses: it is never transferred to them (信访工作条例 Art. 30)."""
    institution: str | None = None
    """The kind of institution the suggestion comes from when that is not a participating unit
    (``"school"``, ``"hospital"``): a campaign says which unit recommends for it (区教委, 区卫健委)."""


@attrs.frozen
class ExtensionRequest:
    """A handling unit's request to extend its current deadline (申请延期), awaiting approval."""

    days: int
    reason: str
    requested_by: str
    """The requesting actor as ``role:id@unit``."""
    requested_at: dt.datetime


@attrs.frozen
class Suggestion:
    """One suggestion and everything decided about it so far (one row in a store).

    Fields after ``updated_at`` have defaults, so a field added later replays from events
    written before it existed.
    """

    id: str
    campaign: str | None
    title: str
    subject: str
    problem: str
    measures: str
    area: str
    topic: str | None
    channel: Channel
    proposer: Proposer
    recommending_unit: str | None
    accused_units: tuple[str, ...]
    state: State
    version: int
    received_at: dt.datetime
    updated_at: dt.datetime
    registration_number: str | None = None
    lead_unit: str | None = None
    """The lead handling unit (主办单位)."""
    co_units: tuple[str, ...] = ()
    """Co-handling units (协办单位)."""
    transferred_at: dt.datetime | None = None
    research_notes: str | None = None
    outcome: Outcome | None = None
    outcome_reason: str | None = None
    adopted_part: str | None = None
    reply: str | None = None
    replied_at: dt.datetime | None = None
    rating: Rating | None = None
    rating_comment: str | None = None
    reopen_count: int = 0
    return_count: int = 0
    due_step: Step | None = None
    """Which step the current deadline is for."""
    due_at: dt.datetime | None = None
    """When the current step is due (end of its Asia/Shanghai day); ``None`` when nothing is due."""
    due_from: dt.datetime | None = None
    """When the current step's period started: what ``due_at`` is counted from (for re-timing)."""
    due_provisional: bool = False
    """``due_at`` or ``objection_due_at`` was counted over provisional calendar days (暂定)."""
    objection_due_at: dt.datetime | None = None
    """Until when the lead unit may object to a misrouted transfer (信访工作条例 Art. 23)."""
    extended: bool = False
    """The current step's deadline was extended (at most once per step)."""
    extension_days: int | None = None
    """By how many calendar days the current step's deadline was extended."""
    extension_request: ExtensionRequest | None = None
    """A handling unit's pending request to extend the current deadline (申请延期)."""
    objection_reason: str | None = None
    """The lead unit's reasons for objecting to a misrouted transfer, while the office decides."""
    research_method: ResearchMethod | None = None
    """How the unit researched the suggestion (座谈, 听证...)."""
    reply_form: ReplyForm | None = None
    """How the reply reached the proposer (书面, 电话...)."""
    adoption_form: AdoptionForm | None = None
    """What kind of measure an adopted suggestion became (政策措施, 机制制度...)."""
    received_by: str | None = None
    """Who took the suggestion in: the submitting actor's ``Actor.ref`` (``role:id``)."""
    institution: str | None = None
    """The kind of institution it came from, when not a participating unit (``school``, ``hospital``)."""
    workflow: str | None = None
    """The workflow definition version the suggestion's latest event was written under."""
    policy: str | None = None
    """The deadline policy version its current deadline was set under."""
    overdue_flagged_at: dt.datetime | None = None
    """The due time for which an overdue notice was last recorded (keeps ``tick`` idempotent)."""
    closed_at: dt.datetime | None = None
    upward_reports: tuple[ReportForm, ...] = ()
    """Forms in which it was reported to the party committee and government (呈报)."""
    forwarded_to_city_at: dt.datetime | None = None
    """When it was forwarded to the municipal office (呈送市信访办)."""
    evaluation: Evaluation | None = None
    reward_tier: RewardTier | None = None
    """Reward candidate tier (纳入奖励备选范围), if nominated."""
    adopted_into: str | None = None
    """The measure or document it was turned into (吸纳转化运用)."""
    typical_case: bool = False
    """Marked as a typical case (典型案例)."""
    event_hash: str = ""
    """Hash of the latest event: the head of the suggestion's tamper-evident chain."""

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    def units(self) -> tuple[str, ...]:
        """Every unit involved: recommending, lead and co-handling (for visibility rules)."""
        found = [u for u in (self.recommending_unit, self.lead_unit) if u]
        return tuple(dict.fromkeys([*found, *self.co_units]))


def _masked_changes(changes: Mapping[str, Any]) -> Mapping[str, Any]:
    """``changes`` with the proposer's phone and address hidden (for ``repr`` and logs)."""
    proposer = changes.get("proposer")
    if not isinstance(proposer, Mapping):
        return changes
    hidden = {k: ("***" if k in ("phone", "address") and v else v) for k, v in proposer.items()}
    if proposer.get("confidential") and isinstance(proposer.get("name"), str):
        hidden["name"] = mask_name(proposer["name"])
    return {**changes, "proposer": hidden}


@attrs.frozen
class Event:
    """One command's record in a suggestion's history.

    ``changes`` maps each field of :class:`Suggestion` the command changed to its new value,
    encoded as JSON-ready data (see :func:`~jianyi_flow.domain.codec.encode_changes`); a
    field the command set to the value it already had is left out (``due_step`` excepted:
    :func:`~jianyi_flow.domain.codec.changed_fields`).  Events written before that name
    such fields too; replay gives the same row either way.
    ``payload`` holds the rest of what was said (notes, approver...).  ``prev_hash``/``hash``
    chain the events of a suggestion so an edited, deleted or reordered event is detected
    (:mod:`jianyi_flow.domain.history`).

    ``notices`` (the recipients of the outbox messages the command created), ``workflow``
    and ``policy`` (the versions that produced it) are covered by the hash.  ``seq`` (the
    event's position in its store's log, given by the store) and ``mac`` (the keyed seal
    of ``hash``, when an anchor key is configured) are not: they are checked on their own.
    """

    suggestion_id: str
    version: int
    kind: str
    from_state: State | None
    to_state: State
    actor: Actor
    at: dt.datetime
    reason: str | None = None
    changes: Mapping[str, Any] = attrs.field(factory=dict, repr=lambda c: repr(_masked_changes(c)))
    payload: Mapping[str, Any] = attrs.field(factory=dict)
    prev_hash: str = ""
    hash: str = ""
    notices: tuple[str, ...] = ()
    workflow: str | None = None
    policy: str | None = None
    seq: int | None = None
    mac: str | None = None

