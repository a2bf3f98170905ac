"""``CampaignSimulator``: a whole campaign through ``Flow`` on any store, reproducible by seed.

It plays every part of a campaign with the roles the permission table gives them: citizens
who submit at any hour by portal or WeChat, the collection office (区征集办) that enters
letters and visits, registers, transfers, rules on misroute objections, reopens, reports
upward (呈报) and forwards to the city (呈送); towns, streets and departments that send
their 推荐表 after the notice and within the implementation phase, 区教委 and 区卫健委
for schools and hospitals; handling units that research (saying how), decide, ask their
head for an extension and reply (saying in what form); proposers who rate or withdraw; and
the evaluation panel of the summary phase.  Office and unit work happens on working days
of the flow's business calendar, in the campaign's office hours.

Everything is drawn from one ``random.Random(seed)`` in the order the agenda is processed,
and the agenda is a heap ordered by (time, sequence number), times in whole seconds, no two
of the simulator's commands in the same second.  The same seed therefore gives the same
event log on every store, and the campaign report's ``history_digest`` shows it.

A run can be resumed: every command carries the idempotency key ``sim:<seed>:<n>`` and the
store keeps the run's identity (:data:`META_NAME`); see :meth:`CampaignSimulator.run`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import heapq
import json
import math
import random
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import attrs

from .domain.campaign import Campaign, UnitKind
from .domain.clock import SHANGHAI, FakeClock, start_of_local_day
from .domain.model import (
    Actor,
    AdoptionForm,
    Channel,
    Outcome,
    Proposer,
    ProposerKind,
    Rating,
    ReplyForm,
    ReportForm,
    ResearchMethod,
    RewardTier,
    Role,
    State,
    Step,
    SuggestionDraft,
)
from .domain.workflow import DECIDE_TRIGGERS
from .errors import ValidationError
from .service.campaign_flow import make_flow
from .service.flow import Flow
from .storage.base import BatchingStore, MetadataStore, Query, Store

__all__ = [
    "MAX_SUGGESTIONS",
    "META_NAME",
    "SIMULATOR_VERSION",
    "CampaignSimulator",
    "FlowFactory",
    "SimulationConfig",
    "SimulationResult",
]

SIMULATOR_VERSION = "sim-3"
"""Changes whenever the same seed would give another event log; part of a run's identity."""

META_NAME = "jianyi_flow.simulation"
"""The store metadata entry holding the identity of the simulation written into the store."""

MAX_SUGGESTIONS = 1_000_000

DAY = 86_400

CHANNEL_MIX: Mapping[Channel, float] = {
    Channel.ONLINE_PORTAL: 0.30,
    Channel.WECHAT: 0.24,
    Channel.DOUYIN: 0.05,
    Channel.EMAIL: 0.07,
    Channel.LETTER: 0.08,
    Channel.ON_SITE: 0.12,
    Channel.CIRCUIT_VISIT: 0.09,
    Channel.PHONE: 0.05,
}
"""How suggestions that no unit recommends arrive."""

OFFICE_CHANNELS = frozenset({Channel.EMAIL, Channel.LETTER, Channel.ON_SITE, Channel.CIRCUIT_VISIT, Channel.PHONE})
"""Channels the collection office enters itself, on working days in office hours."""

PROPOSER_MIX: Mapping[ProposerKind, float] = {
    ProposerKind.CITIZEN: 0.62,
    ProposerKind.INFORMATION_OFFICER: 0.15,
    ProposerKind.PARTY_MEMBER_OR_CADRE: 0.10,
    ProposerKind.PARTY_CONGRESS_DEPUTY: 0.03,
    ProposerKind.PEOPLES_CONGRESS_DEPUTY: 0.06,
    ProposerKind.CPPCC_MEMBER: 0.04,
}

HOUR_WEIGHTS: tuple[float, ...] = (0.3, 0.15, 0.08, 0.05, 0.05, 0.1, 0.3, 0.7, 1.0, 1.3, 1.4, 1.3,
                                   1.1, 1.0, 1.2, 1.3, 1.3, 1.2, 1.1, 1.4, 1.7, 1.8, 1.4, 0.8)
"""When citizens submit on-line, by hour of the Asia/Shanghai day (relative weights)."""

REPLY_FORMS: Mapping[Channel, Mapping[ReplyForm, float]] = {
    Channel.ONLINE_PORTAL: {ReplyForm.ONLINE: 0.6, ReplyForm.SMS: 0.25, ReplyForm.PHONE: 0.15},
    Channel.WECHAT: {ReplyForm.ONLINE: 0.6, ReplyForm.SMS: 0.25, ReplyForm.PHONE: 0.15},
    Channel.DOUYIN: {ReplyForm.ONLINE: 0.6, ReplyForm.SMS: 0.25, ReplyForm.PHONE: 0.15},
    Channel.EMAIL: {ReplyForm.ONLINE: 0.7, ReplyForm.WRITTEN: 0.3},
    Channel.LETTER: {ReplyForm.WRITTEN: 0.9, ReplyForm.PHONE: 0.1},
    Channel.ON_SITE: {ReplyForm.IN_PERSON: 0.4, ReplyForm.PHONE: 0.4, ReplyForm.WRITTEN: 0.2},
    Channel.CIRCUIT_VISIT: {ReplyForm.IN_PERSON: 0.4, ReplyForm.PHONE: 0.4, ReplyForm.WRITTEN: 0.2},
    Channel.PHONE: {ReplyForm.PHONE: 0.8, ReplyForm.SMS: 0.2},
    Channel.RECOMMENDATION_FORM: {ReplyForm.WRITTEN: 0.7, ReplyForm.IN_PERSON: 0.3},
}
"""How a unit replies, by the channel the suggestion came in by."""

RESEARCH_METHODS: Mapping[ResearchMethod, float] = {
    ResearchMethod.FORUM: 0.25,
    ResearchMethod.FIELD_VISIT: 0.25,
    ResearchMethod.WRITTEN_CONSULTATION: 0.20,
    ResearchMethod.SEMINAR: 0.12,
    ResearchMethod.SURVEY: 0.08,
    ResearchMethod.EXPERT_REVIEW: 0.06,
    ResearchMethod.HEARING: 0.02,
    ResearchMethod.OTHER: 0.02,
}

ADOPTION_FORMS: Mapping[AdoptionForm, float] = {
    AdoptionForm.POLICY: 0.3,
    AdoptionForm.MECHANISM: 0.3,
    AdoptionForm.WORK_MEASURE: 0.35,
    AdoptionForm.OTHER: 0.05,
}

_METHOD_ZH = {
    ResearchMethod.FORUM: "召开座谈会", ResearchMethod.SEMINAR: "组织专题研讨", ResearchMethod.HEARING: "举行听证",
    ResearchMethod.FIELD_VISIT: "实地走访", ResearchMethod.WRITTEN_CONSULTATION: "书面征求相关单位意见",
    ResearchMethod.SURVEY: "开展问卷调查", ResearchMethod.EXPERT_REVIEW: "邀请专家论证", ResearchMethod.OTHER: "调研",
}
_ADOPTION_ZH = {
    AdoptionForm.POLICY: "完善政策措施", AdoptionForm.MECHANISM: "健全工作机制",
    AdoptionForm.WORK_MEASURE: "改进工作举措", AdoptionForm.OTHER: "吸纳转化",
}
_INSTITUTIONS = {
    "school": ("第一中学", "第二中学", "实验小学", "职业教育中心", "中心小学", "萱花中学", "北山中学"),
    "hospital": ("人民医院", "中医院", "妇幼保健院", "中心卫生院", "精神卫生中心"),
}
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
_GIVEN = ("伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超",
          "秀英", "华", "建国", "晓东", "红梅", "志强", "海燕")
_ROADS = ("人民路", "新华路", "兴龙大道", "昌州大道", "文化路", "健康路", "和平街", "滨河路")


def _probability(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ValidationError(attribute.name, "must be a probability between 0 and 1")


def _count(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(attribute.name, "must be a whole number, 0 or more", code="too_small",
                              details={"min": 0})


def _non_negative(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1000.0:
        raise ValidationError(attribute.name, "must be a number from 0 to 1000")


def _outcome_mix(instance: object, attribute: attrs.Attribute[Mapping[Outcome, float]],
                 value: Mapping[Outcome, float]) -> None:
    if (
        not isinstance(value, Mapping) or not value or not all(isinstance(k, Outcome) for k in value)
        or not all(isinstance(w, (int, float)) and not isinstance(w, bool) and w >= 0 for w in value.values())
        or not sum(value.values()) > 0
    ):
        raise ValidationError("outcome_mix", "must map Outcome members to weights of 0 or more, not all 0")


def _default_outcomes() -> dict[Outcome, float]:
    return {Outcome.ADOPTED: 0.3, Outcome.PARTIALLY_ADOPTED: 0.3, Outcome.DECLINED: 0.4}


@attrs.frozen
class SimulationConfig:
    """What happens how often.  Probabilities are per suggestion unless said otherwise."""

    not_accepted: float = attrs.field(default=0.04, validator=_probability)
    """Not accepted at registration (不予受理, e.g. a personal complaint)."""
    withdrawn: float = attrs.field(default=0.02, validator=_probability)
    misrouted: float = attrs.field(default=0.06, validator=_probability)
    """Transferred first to a unit outside its remit, which objects within its 5 working days."""
    objection_upheld: float = attrs.field(default=0.75, validator=_probability)
    """Share of misroute objections the office accepts (the rest: the unit keeps the suggestion)."""
    co_handled: float = attrs.field(default=0.25, validator=_probability)
    slow_units: float = attrs.field(default=0.2, validator=_probability)
    """Share of handling units that are slow: their research overruns the deadline unless extended."""
    extension_when_slow: float = attrs.field(default=0.5, validator=_probability)
    """Share of a slow unit's suggestions for which it asks its head for more time."""
    extension_approved: float = attrs.field(default=0.85, validator=_probability)
    outcome_mix: Mapping[Outcome, float] = attrs.field(factory=_default_outcomes, validator=_outcome_mix)
    unrated: float = attrs.field(default=0.12, validator=_probability)
    """Replies never rated: ``tick`` closes them as ``unrated`` when the rating window ends."""
    dissatisfied: float = attrs.field(default=0.1, validator=_probability)
    reopen_when_dissatisfied: float = attrs.field(default=0.7, validator=_probability)
    confidential: float = attrs.field(default=0.1, validator=_probability)
    quota_missers: int = attrs.field(default=3, validator=_count)
    """How many units recommend fewer than their quota (the others meet it)."""
    extra_recommendations: float = attrs.field(default=2.0, validator=_non_negative)
    """On average, how many recommendations a unit sends beyond its quota (exponentially spread)."""
    extra_recommendations_max: int = attrs.field(default=8, validator=_count)
    recommended_share_max: float = attrs.field(default=0.5, validator=_probability)
    """At most this share of the suggestions come recommended (small runs cannot fill every quota)."""
    reported_during_implementation: float = attrs.field(default=0.25, validator=_probability)
    """Of the adopted suggestions of high quality, the share the office reports upward (摘报) right after the
    reply; a fifth of those it also forwards to the city (呈送)."""
    evaluated_adopted: float = attrs.field(default=0.6, validator=_probability)
    """Share of adopted or partially adopted suggestions evaluated (评比) in the summary phase."""
    evaluated_declined: float = attrs.field(default=0.1, validator=_probability)
    rewards: float = attrs.field(default=0.03, validator=_probability)
    """Share of the evaluated adopted suggestions nominated for a reward, best scores first."""
    originals: float = attrs.field(default=0.02, validator=_probability)
    """Share reported upward as 原件, best scores first."""
    typical_cases: float = attrs.field(default=0.01, validator=_probability)
    adoption_records: float = attrs.field(default=0.3, validator=_probability)
    """Share of the evaluated adopted suggestions whose unit records what they became (吸纳转化), best effect first."""
    tail_days: int = attrs.field(default=365, validator=_count)
    """How long after the summary phase handling may go on (the run stops earlier once nothing is open)."""

    def as_data(self) -> dict[str, Any]:
        """The configuration as JSON-ready data (its digest is part of a run's identity)."""
        data = attrs.asdict(self)
        data["outcome_mix"] = {k.value: float(w) for k, w in self.outcome_mix.items()}
        return data


@attrs.frozen
class SimulationResult:
    """What a run did.

    ``commands`` counts the simulator's own commands (``by_command``, by name), those a
    resumed run found already done in the store included; ``replayed`` is how many of them
    were.  ``ticks`` is the number of days ``Flow.tick`` ran and ``tick_events`` what those
    ticks wrote in this run (a resumed run finds part of that work done).  ``started`` and
    ``ended`` span the virtual time.
    """

    suggestions: int
    commands: int
    replayed: int
    ticks: int
    tick_events: int
    started: dt.datetime
    ended: dt.datetime
    by_command: Mapping[str, int]


@attrs.define
class _Plan:
    """One suggestion: its fate, drawn when it arrives, and the state the simulator's own commands left it in."""

    sid: str
    channel: Channel
    proposer: Actor
    area: str
    lead: str
    slow: bool
    misroute_to: str | None
    co_units: tuple[str, ...]
    outcome: Outcome
    fate: str
    """``normal``, ``not_accepted`` or ``withdrawn``."""
    rating: Rating | None
    reopen: bool
    extend: bool
    quality: float
    """Latent quality 0..1: what the office screens by and the evaluation scores scatter around."""
    state: State = State.RECEIVED
    round: int = 1
    scores: tuple[int, int, int] | None = None
    evaluated: bool = False
    tier: RewardTier | None = None
    rate_due: int | None = None
    """When an unrated reply's rating window ends (``tick`` then closes it), as a POSIX second."""
    forwarded: bool = False
    reports: list[ReportForm] = attrs.field(factory=list)

    @property
    def total(self) -> int:
        return sum(self.scores) if self.scores is not None else -1


_Item = tuple[int, int, str, str]
"""An agenda item: (POSIX second, sequence number, action, suggestion id)."""

_WITHDRAW_REASONS = ("建议人主动撤回", "问题已自行解决，申请撤回", "建议内容需要重新整理，先行撤回")
_OBJECTION_REASONS = ("该事项不属于本单位职责范围，建议转交相关主管部门",
                      "建议内容涉及其他部门法定职责，本单位无权办理")


def _at(ts: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, SHANGHAI)


def _midnight(day: dt.date) -> int:
    return int(start_of_local_day(day).timestamp())


def _day_of(ts: int) -> dt.date:
    return _at(ts).date()


def _noon(day: dt.date) -> dt.datetime:
    return start_of_local_day(day) + dt.timedelta(hours=12)


class _Mix:
    """A weighted choice, the cumulative weights computed once."""

    def __init__(self, mix: Mapping[Any, float]) -> None:
        self.keys = list(mix)
        total = 0.0
        self.cum: list[float] = []
        for k in self.keys:
            total += mix[k]
            self.cum.append(total)

    def pick(self, rng: random.Random) -> Any:
        return rng.choices(self.keys, cum_weights=self.cum)[0]


_CHANNELS = _Mix(CHANNEL_MIX)
_PROPOSERS = _Mix(PROPOSER_MIX)
_HOURS = _Mix(dict(enumerate(HOUR_WEIGHTS)))
_REPLY_FORMS = {channel: _Mix(mix) for channel, mix in REPLY_FORMS.items()}
_METHODS = _Mix(RESEARCH_METHODS)
_ADOPTIONS = _Mix(ADOPTION_FORMS)

FlowFactory = Callable[[Campaign, Store, FakeClock, Callable[[], str], Callable[[], str]], Flow]
"""``(campaign, store, clock, ids, salts) -> Flow``: builds a simulation's flow (:class:`CampaignSimulator`)."""


def _default_flow(campaign: Campaign, store: Store, clock: FakeClock, ids: Callable[[], str],
                  salts: Callable[[], str]) -> Flow:
    return make_flow(campaign, store, clock, policy=campaign.deadlines, ids=ids, salts=salts)


class CampaignSimulator:
    """Drives a whole campaign through ``Flow`` on ``store``, with a virtual clock.

    ``campaign`` gives the phases, units, quota, office unit, office hours, routing and
    deadline policy (a preset or a campaign file, docs/campaign.md).
    ``flow_factory(campaign, store, clock, ids, salts)`` builds the flow (default:
    :func:`~jianyi_flow.service.campaign_flow.make_flow` with the campaign's deadline policy,
    the default permission table and the personal-data vault); it passes ``ids`` on as the
    flow's id maker, which gives each arriving suggestion the id the simulator planned for it
    (``S0000001``...), and ``salts`` as its vault salts, drawn from the seed and that id, so
    that the same seed writes the same hashes.  ``progress`` is called
    with (arrivals done, total) as the run goes.  ``on_day(day, flow)`` runs after each
    simulated day's tick: the place for what an operator does on a given day (load the next
    year's holiday notice and ``flow.retime(...)``, switch the flow's policy...).  ``batch`` is
    how many agenda items share one ``store.batch()`` when the store is a
    :class:`~jianyi_flow.storage.base.BatchingStore`; it changes the speed, never the log.
    """

    def __init__(
        self,
        campaign: Campaign,
        store: Store,
        *,
        seed: int = 0,
        suggestions: int = 1000,
        config: SimulationConfig | None = None,
        flow_factory: FlowFactory | None = None,
        progress: Callable[[int, int], None] | None = None,
        on_day: Callable[[dt.date, Flow], None] | None = None,
        batch: int = 200,
    ) -> None:
        if not isinstance(suggestions, int) or isinstance(suggestions, bool) or not 0 <= suggestions <= MAX_SUGGESTIONS:
            raise ValidationError("suggestions", f"must be a whole number from 0 to {MAX_SUGGESTIONS:,}",
                                  code="out_of_range", details={"min": 0, "max": MAX_SUGGESTIONS})
        if not isinstance(seed, int) or isinstance(seed, bool) or abs(seed) >= 2**63:
            raise ValidationError("seed", "must be a whole number (at most 63 bits)", code="not_an_integer")
        if not isinstance(batch, int) or isinstance(batch, bool) or not 1 <= batch <= 100_000:
            raise ValidationError("batch", "must be a whole number from 1 to 100,000", code="out_of_range",
                                  details={"min": 1, "max": 100_000})
        if config is not None and not isinstance(config, SimulationConfig):
            raise ValidationError("config", "must be a SimulationConfig", code="wrong_type")
        if campaign.office_unit is None:
            raise ValidationError("campaign.office_unit", "the simulator needs the unit that runs the collection "
                                                          "office (office_unit in the campaign file)", code="required")
        self.campaign = campaign
        self.store = store
        self.seed = seed
        self.total = suggestions
        self.config = config or SimulationConfig()
        self.progress = progress
        self.on_day = on_day
        self.batch = batch
        self.rng = random.Random(seed)
        self.clock = FakeClock(start_of_local_day(campaign.phases[0].start))
        self._arriving = ""
        self.flow = (flow_factory or _default_flow)(campaign, store, self.clock, self._arriving_id,
                                                    self._arriving_salt)
        self.calendar = self.flow.calendar
        self.office_unit: str = campaign.office_unit
        self.institutions: dict[str, str] = {}
        """Suggestion id → the kind of institution it came from (``school``, ``hospital``), for those that did."""
        self.missers: frozenset[str] = frozenset()
        """The units drawn to recommend fewer than their quota."""
        self.slow: frozenset[str] = frozenset()
        """The handling units drawn to be slow."""
        self.handlers: dict[str, tuple[str, ...]] = {}
        """Area → the units its suggestions are transferred to (the campaign's routing)."""
        self._agenda: list[_Item] = []
        self._seq = 0
        self._taken: set[int] = set()
        self._plans: dict[str, _Plan] = {}
        self._arrivals: dict[str, tuple[Channel, str | None, str | None]] = {}
        self._count: dict[str, int] = {}
        self._n = 0
        self._replayed = 0
        self._resuming = True
        self._ran = False
        self._ticks = 0
        self._tick_events = 0
        self._arrived = 0
        hours = campaign.office_hours
        self._hours = [(t.hour * 3600 + t.minute * 60 + t.second, e.hour * 3600 + e.minute * 60 + e.second)
                       for t, e in hours]
        self._clerks = [Actor(f"clerk-{i}", Role.COLLECTION_OFFICE, unit=self.office_unit, name="区征集办")
                        for i in (1, 2, 3)]
        self._evaluators = [Actor(f"evaluator-{i}", Role.EVALUATOR, name="评审组") for i in (1, 2, 3)]
        self._actors: dict[tuple[str, Role], Actor] = {}
        self._eval_days: list[dt.date] = []
        self._select_days: list[dt.date] = []
        self._actions: dict[str, Callable[[int, str], None]] = {
            "receive": self._receive, "withdraw": self._withdraw, "register": self._register,
            "transfer": self._transfer, "object": self._object, "rule_objection": self._rule_objection,
            "request_extension": self._request_extension, "rule_extension": self._rule_extension,
            "research": self._research, "decide": self._decide, "reply": self._reply, "rate": self._rate,
            "reopen": self._reopen, "report_excerpt": self._report_excerpt, "forward": self._forward,
            "evaluate": self._evaluate, "select": self._select, "nominate": self._nominate,
            "report_original": self._report_original, "report_analysis": self._report_analysis,
            "typical": self._typical, "record_adoption": self._record_adoption,
        }

    # --- identity ------------------------------------------------------------------------
    def identity(self) -> dict[str, Any]:
        """What makes two runs the same run: simulator version, campaign, seed, size and a config digest."""
        c = self.campaign
        data = {
            "config": self.config.as_data(),
            "policy": self.flow.policy_version,
            "campaign": {
                "areas": list(c.area_codes), "topics": [[t.code, t.area] for t in c.topics],
                "phases": [[p.code, p.start.isoformat(), p.end.isoformat()] for p in c.phases],
                "units": [[u.code, u.kind.value, u.organiser] for u in c.units],
                "recommendation": [c.recommendation.minimum, sorted(k.value for k in c.recommendation.kinds),
                                   dict(sorted(c.recommendation.recommended_via.items())),
                                   c.recommendation.deadline_phase],
                "phase_rules": [[r.command, None if r.phases is None else list(r.phases)] for r in c.phase_rules],
                "notice": None if c.notice is None else c.notice.issued_on.isoformat(),
                "office_unit": c.office_unit,
                "office_hours": [[s.isoformat(), e.isoformat()] for s, e in c.office_hours],
                "routing": {a: list(units) for a, units in sorted(c.routing.items())},
            },
        }
        text = json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        return {"simulator": SIMULATOR_VERSION, "campaign": c.code, "seed": self.seed, "suggestions": self.total,
                "config": hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]}

    def _claim_store(self) -> None:
        """Record this run's identity in the store, or refuse a store that holds another run."""
        if not isinstance(self.store, MetadataStore):
            return
        ours = self.identity()
        text = self.store.get_meta(META_NAME)
        if text is None:
            if self.store.count(Query(campaign=self.campaign.code)) > 0:
                raise ValidationError("store", f"holds suggestions of campaign {self.campaign.code} that no "
                                               "simulation recorded; simulate into another store",
                                      details={"campaign": self.campaign.code},
                                      message_zh="该数据库中已有本活动的建议，且不是模拟写入的，请换用新的数据库进行模拟。")
            self.store.set_meta(META_NAME, json.dumps(ours, sort_keys=True))
            return
        try:
            theirs = json.loads(text)
        except ValueError:
            theirs = text
        if theirs != ours:
            raise ValidationError("store", f"holds another simulation ({_describe(theirs)}); this run is "
                                           f"{_describe(ours)}. Resume a run with the same campaign, seed, number "
                                           "of suggestions and configuration, or use another store",
                                  details={"stored": theirs, "this_run": ours},
                                  message_zh="该数据库中保存的是另一次模拟（活动、随机种子、建议数量或配置不同）。"
                                             "如需续跑，请使用相同的参数；否则请换用新的数据库。")

    # --- the run -------------------------------------------------------------------------
    def run(self) -> SimulationResult:
        """Run the campaign to the end of its handling tail and return what happened.

        On a store that already holds part of this very run (same :meth:`identity`, kept in
        the store's metadata), the run replays: it walks the same agenda, skips each command
        whose idempotency key the store already has, re-runs the day's ticks (they do only
        what is still undone) and continues from the first command not done.  A killed run
        leaves a prefix of its commands (each commit is atomic, a batch is one transaction),
        so the resumed store ends with the same ``history_digest`` as an uninterrupted run.
        A store holding another campaign, seed, size or configuration is refused
        (:class:`~jianyi_flow.errors.ValidationError`, field ``store``).
        """
        if self._ran:
            raise ValidationError("run", "a simulator runs once; to run or resume again, create another one",
                                  code="already_done")
        self._ran = True
        self._claim_store()
        started = self.clock.now()
        self._setup()
        summary = self.campaign.phases[-1]
        end_ts = _midnight(summary.end) + (1 + self.config.tail_days) * DAY
        next_tick = self.campaign.phases[0].start + dt.timedelta(days=1)
        agenda = self._agenda
        while agenda and agenda[0][0] <= end_ts:
            while _midnight(next_tick) <= agenda[0][0]:
                self._tick(next_tick)
                next_tick += dt.timedelta(days=1)
            limit = _midnight(next_tick)
            with self._batch():
                for _ in range(self.batch):
                    if not agenda or agenda[0][0] >= limit or agenda[0][0] > end_ts:
                        break
                    ts, _, action, sid = heapq.heappop(agenda)
                    self.clock.set(_at(ts))
                    self._actions[action](ts, sid)
        last = self._tail_end(end_ts)
        while next_tick <= last:
            self._tick(next_tick)
            next_tick += dt.timedelta(days=1)
        if self.progress is not None:
            self.progress(self.total, self.total)
        return SimulationResult(
            suggestions=self.total, commands=self._n, replayed=self._replayed, ticks=self._ticks,
            tick_events=self._tick_events, started=started, ended=self.clock.now(),
            by_command=dict(sorted(self._count.items())),
        )

    def _tail_end(self, end_ts: int) -> dt.date:
        """The last day to tick: the day after the last unrated reply's rating window ends."""
        dues = [p.rate_due for p in self._plans.values() if p.state is State.REPLIED and p.rate_due is not None]
        if not dues:
            return _day_of(int(self.clock.now().timestamp()))
        return _day_of(min(max(dues), end_ts)) + dt.timedelta(days=1)

    def _batch(self) -> AbstractContextManager[Any]:
        return self.store.batch() if isinstance(self.store, BatchingStore) else nullcontext()

    def _tick(self, day: dt.date) -> None:
        when = start_of_local_day(day)
        self.clock.set(when)
        with self._batch():
            events = self.flow.tick(when)
        self._ticks += 1
        self._tick_events += len(events)
        if self.on_day is not None:
            with self._batch():
                self.on_day(day, self.flow)

    def _push(self, ts: int, action: str, sid: str = "") -> None:
        self._seq += 1
        heapq.heappush(self._agenda, (ts, self._seq, action, sid))

    def _call(self, command: str, first: Any, actor: Actor, **kwargs: Any) -> None:
        """Run one Flow command under the run's next idempotency key (skipped if a resumed store has it)."""
        self._n += 1
        key = f"sim:{self.seed}:{self._n}"
        self._count[command] = self._count.get(command, 0) + 1
        if self._resuming:
            if self.store.idempotency(actor.key, key) is not None:
                self._replayed += 1
                return
            self._resuming = False  # what a killed run left is a prefix: everything from here on is new
        getattr(self.flow, command)(first, actor, idempotency_key=key, **kwargs)

    def _act(self, plan: _Plan, command: str, actor: Actor, trigger: str | None = None, **kwargs: Any) -> None:
        """A command on ``plan``'s suggestion; the simulator's record of its state follows the workflow."""
        self._call(command, plan.sid, actor, **kwargs)
        plan.state = self.flow.workflow.fire(trigger or command, plan.state, command)

    # --- time ----------------------------------------------------------------------------
    def _claim(self, ranges: Sequence[tuple[int, int]]) -> int | None:
        """A random second in ``ranges`` (half-open) that no other command of the run has; ``None`` if all are."""
        ranges = [(lo, hi) for lo, hi in ranges if hi > lo]
        total = sum(hi - lo for lo, hi in ranges)
        if total <= 0:
            return None
        k = self.rng.randrange(total)
        start = 0
        while k >= ranges[start][1] - ranges[start][0]:
            k -= ranges[start][1] - ranges[start][0]
            start += 1
        order = ranges[start:] + ranges[:start]
        first = True
        for lo, hi in order:
            begin = lo + k if first else lo
            for ts in range(begin, hi):
                if ts not in self._taken:
                    self._taken.add(ts)
                    return ts
            first = False
        lo, hi = ranges[start]
        for ts in range(lo, lo + k):  # the part of the first range before the drawn second
            if ts not in self._taken:
                self._taken.add(ts)
                return ts
        return None

    def _office_ranges(self, day: dt.date, after: int | None = None) -> list[tuple[int, int]]:
        base = _midnight(day)
        floor = -1 if after is None else after
        return [(max(base + a, floor + 1), base + b) for a, b in self._hours]

    def _office_on(self, day: dt.date, after: int | None = None) -> int:
        """A free second in office hours on ``day`` or the next working day with one, after ``after``."""
        day = self.calendar.add_working_days(day, 0)
        while True:
            ts = self._claim(self._office_ranges(day, after))
            if ts is not None:
                return ts
            day = self.calendar.add_working_days(day, 1)

    def _office_after(self, ts: int, working_days: int) -> int:
        """Office time ``working_days`` working days after ``ts`` (0: later the same working day, if any)."""
        day = self.calendar.add_working_days(_day_of(ts), 0)
        if working_days:
            day = self.calendar.add_working_days(day, working_days)
        return self._office_on(day, ts)

    def _days_left(self, step: Step, ts: int) -> int:
        """Working days from ``ts``'s day to the deadline of ``step`` started at ``ts`` (the flow's policy)."""
        due = self.flow.due_for(step, _at(ts)).date()
        return self.calendar.working_days_between(_day_of(ts), due)

    def _within(self, days_left: int, low: float, high: float) -> int:
        """A number of working days between ``low`` and ``high`` times ``days_left`` (at least 1)."""
        return self.rng.randint(max(1, int(days_left * low)), max(1, int(days_left * high)))

    def _any_time(self, day: dt.date, after: int = 0) -> int:
        """A citizen's moment on ``day`` (after ``after``): any hour, more often in the day and the evening."""
        base = _midnight(day)
        hour = _HOURS.pick(self.rng)
        ts = self._claim([(max(base + hour * 3600, base + 1, after + 1), base + (hour + 1) * 3600)])
        while ts is None:
            ts = self._claim([(max(base + 1, after + 1), base + DAY)])
            base += DAY  # the day is full (or over): the next one
        return ts

    def _arriving_id(self) -> str:
        """The id of the suggestion being received: planned by arrival order, whoever submits it."""
        return self._arriving

    def _arriving_salt(self) -> str:
        """The vault salt of the suggestion being received, from the seed and its id, so a run is reproducible."""
        return hashlib.sha256(f"{self.seed}:{self._arriving}".encode()).hexdigest()[:32]

    def _actor(self, unit: str, role: Role) -> Actor:
        actor = self._actors.get((unit, role))
        if actor is None:
            prefix = {Role.HANDLING_UNIT: "staff", Role.HANDLING_UNIT_HEAD: "head",
                      Role.RECOMMENDING_UNIT: "liaison"}[role]
            actor = self._actors[(unit, role)] = Actor(f"{prefix}-{unit}", role, unit=unit,
                                                       name=self.campaign.unit(unit).name)
        return actor

    def _clerk(self) -> Actor:
        return self.rng.choice(self._clerks)

    # --- set-up --------------------------------------------------------------------------
    def _setup(self) -> None:
        c, rng, cfg = self.campaign, self.rng, self.config
        departments = [u.code for u in c.units if u.kind is UnitKind.DEPARTMENT and not u.organiser]
        for area in c.area_codes:
            self.handlers[area] = tuple(c.routing.get(area, ())) or tuple(departments) or (self.office_unit,)
        routed = {u for units in self.handlers.values() for u in units}
        pool = [u for u in c.unit_codes if u in routed]
        self.slow = frozenset(u for u in pool if rng.random() < cfg.slow_units)
        self._misroute_pool = [u for u in departments if u in routed] or pool
        days = self._receiving_days()
        self._summary_days()
        counts = self._recommendation_counts(days)
        arrivals: list[tuple[int, Channel, str | None, str | None]] = []
        arrivals += self._recommended_arrivals(days, counts)
        arrivals += self._direct_arrivals(days, self.total - len(arrivals))
        arrivals.sort(key=lambda a: a[0])
        for n, (ts, channel, unit, institution) in enumerate(arrivals, start=1):
            sid = f"S{n:07d}"
            self._arrivals[sid] = (channel, unit, institution)
            self._push(ts, "receive", sid)
        if self._select_days:  # the choices are made before the office opens on the first day after evaluation
            first = _midnight(self._select_days[0])
            self._push(self._claim([(first + 1, first + 3600)]) or first + 1, "select")

    def _receiving_days(self) -> list[dt.date]:
        c = self.campaign
        first, last = c.phases[0].start, c.phases[-1].end
        days = [first + dt.timedelta(days=d) for d in range((last - first).days + 1)]
        open_days = [d for d in days if c.is_open("receive", _noon(d))]
        if not open_days and self.total:
            raise ValidationError("campaign", "no phase is open for receiving suggestions", code="required")
        return open_days

    def _summary_days(self) -> None:
        """Working days on which evaluation and the choices made from it are open: the first 60 % evaluate."""
        c = self.campaign
        first, last = c.phases[0].start, c.phases[-1].end
        days = [first + dt.timedelta(days=d) for d in range((last - first).days + 1)]
        commands = ("evaluate", "nominate_reward", "mark_typical", "record_adoption", "report_upward")
        usable = [d for d in days if self.calendar.is_working_day(d) and all(c.is_open(x, _noon(d)) for x in commands)]
        if len(usable) < 2:
            return
        cut = max(1, min(len(usable) - 1, math.ceil(len(usable) * 0.6)))
        self._eval_days, self._select_days = usable[:cut], usable[cut:]

    def _recommendation_counts(self, days: list[dt.date]) -> dict[str, int]:
        """How many suggestions each unit recommends: its quota and a few more, or fewer for the few that miss it."""
        c, rng, cfg = self.campaign, self.rng, self.config
        rule = c.recommendation
        owing = [u.code for u in c.units if rule.applies_to(u)]
        self.missers = frozenset(rng.sample(owing, min(cfg.quota_missers, len(owing))))
        counts: dict[str, int] = {}
        for unit in owing:
            if unit in self.missers:
                counts[unit] = rng.randint(0, rule.minimum - 1) if rule.minimum > 0 else 0
            else:
                extra = int(rng.expovariate(1 / cfg.extra_recommendations)) if cfg.extra_recommendations else 0
                counts[unit] = rule.minimum + min(extra, cfg.extra_recommendations_max)
        if not self._recommendation_days(days):
            return dict.fromkeys(owing, 0)
        cap = int(self.total * cfg.recommended_share_max)
        # a small run cannot fill every quota: trim the largest counts first, then units drop below their quota
        while sum(counts.values()) > cap:
            unit = max(owing, key=lambda u: (counts[u], -owing.index(u)))
            counts[unit] -= 1
        return counts

    def _recommendation_days(self, days: list[dt.date]) -> list[dt.date]:
        """Working days after the notice and within the quota's phase (the 推荐表 follow the notice)."""
        c = self.campaign
        phase = c.phase(c.recommendation.deadline_phase)
        after = c.notice.issued_on if c.notice is not None else None
        return [d for d in days if phase.contains(d) and (after is None or d > after)
                and self.calendar.is_working_day(d)]

    def _recommended_arrivals(self, days: list[dt.date],
                              counts: dict[str, int]) -> list[tuple[int, Channel, str | None, str | None]]:
        rng = self.rng
        window = self._recommendation_days(days)
        via = {unit: kind for kind, unit in self.campaign.recommendation.recommended_via.items()}
        out: list[tuple[int, Channel, str | None, str | None]] = []
        for unit, count in counts.items():
            if not count:
                continue
            batches = sorted(rng.sample(window, min(count, rng.randint(1, 3), len(window))))
            for i in range(count):
                ts = self._office_on(batches[i % len(batches)])
                out.append((ts, Channel.RECOMMENDATION_FORM, unit, via.get(unit)))
        return out

    def _direct_arrivals(self, days: list[dt.date], n: int) -> list[tuple[int, Channel, str | None, str | None]]:
        """Arrivals nobody recommends: a trickle during launch, the bulk later; on-line at any hour."""
        rng = self.rng
        launch = self.campaign.phases[0]
        several = len(self.campaign.phases) > 1
        weights = [0.3 if several and launch.contains(d) else 1.0 for d in days]
        working = [d for d in days if self.calendar.is_working_day(d)]
        working_weights = [w for d, w in zip(days, weights, strict=True) if self.calendar.is_working_day(d)]
        out: list[tuple[int, Channel, str | None, str | None]] = []
        for _ in range(max(n, 0)):
            channel = _CHANNELS.pick(rng)
            if channel in OFFICE_CHANNELS and working:
                day = rng.choices(working, weights=working_weights)[0]
                ts = self._office_on(day)
            else:
                day = rng.choices(days, weights=weights)[0]
                ts = self._any_time(day)
            out.append((ts, channel, None, None))
        return out

    # --- arrival -------------------------------------------------------------------------
    def _receive(self, ts: int, sid: str) -> None:
        c, rng, cfg = self.campaign, self.rng, self.config
        channel, unit, institution = self._arrivals.pop(sid)
        n = int(sid[1:])
        area = rng.choice(c.area_codes)
        topics = c.topics_of(area)
        topic = rng.choice(topics).code if topics and rng.random() < 0.85 else None
        kind: ProposerKind = _PROPOSERS.pick(rng)
        account = f"citizen-{n:07d}"
        if institution is not None:
            kind = ProposerKind.CITIZEN
            address = rng.choice(_INSTITUTIONS.get(institution, (institution,)))
            self.institutions[sid] = institution
        else:
            places = [u.name for u in c.units if u.kind is not UnitKind.DEPARTMENT]
            place = rng.choice(places) if places else ""
            address = f"{place}{rng.choice(_ROADS)}{rng.randint(1, 300)}号"
        proposer = Proposer(
            name=rng.choice(_SURNAMES) + rng.choice(_GIVEN),
            kind=kind,
            phone=f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}",
            address=address,
            confidential=rng.random() < cfg.confidential,
            account=account,
        )
        area_name = c.area(area).name
        subject = c.topic(topic).title[:40] if topic else area_name
        draft = SuggestionDraft(
            title=f"关于{area_name}的建议（{n}）",
            subject=f"{area_name}：{subject}",
            problem=f"在{area_name}方面，群众反映的问题之{n % 97}尚未解决。",
            measures=f"建议完善政策措施、健全机制制度，提升工作效能（方案{n % 89}）。",
            area=area,
            topic=topic,
            channel=channel,
            proposer=proposer,
            recommending_unit=unit,
            institution=institution,
        )
        if unit is not None:
            actor = self._actor(unit, Role.RECOMMENDING_UNIT)
        elif channel in OFFICE_CHANNELS:
            actor = self._clerk()
        elif kind is ProposerKind.INFORMATION_OFFICER:
            actor = Actor(account, Role.INFORMATION_OFFICER)
        else:
            actor = Actor(account, Role.PROPOSER)
        self._arriving = sid
        self._call("receive", draft, actor)
        plan = self._draw_plan(sid, channel, Actor(account, Role.PROPOSER), area)
        self._plans[sid] = plan
        self._arrived += 1
        if self.progress is not None and self._arrived % 500 == 0:
            self.progress(self._arrived, self.total)
        if plan.fate == "withdrawn":
            self._push(self._any_time(_day_of(ts) + dt.timedelta(days=rng.randint(1, 20))), "withdraw", sid)
        quick = min(rng.choice((0, 0, 1, 1, 2)), self._days_left(Step.REGISTER, ts) // 3)
        self._push(self._office_after(ts, quick), "register", sid)

    def _draw_plan(self, sid: str, channel: Channel, proposer: Actor, area: str) -> _Plan:
        rng, cfg = self.rng, self.config
        lead = rng.choice(self.handlers[area])
        wrong = [u for u in self._misroute_pool if u not in self.handlers[area]]
        misroute = rng.choice(wrong) if wrong and rng.random() < cfg.misrouted else None
        others = [u for u in self.handlers[area] if u != lead]
        co = (rng.choice(others),) if others and rng.random() < cfg.co_handled else ()
        r = rng.random()
        fate = "not_accepted" if r < cfg.not_accepted else "withdrawn" if r < cfg.not_accepted + cfg.withdrawn \
            else "normal"
        outcome = self._outcome()
        rating: Rating | None = None
        if rng.random() >= cfg.unrated:
            rating = Rating.DISSATISFIED if rng.random() < cfg.dissatisfied else rng.choice(
                (Rating.SATISFIED, Rating.SATISFIED, Rating.BASICALLY_SATISFIED))
        reopen = rating is Rating.DISSATISFIED and rng.random() < cfg.reopen_when_dissatisfied
        slow = lead in self.slow
        extend = rng.random() < cfg.extension_when_slow
        return _Plan(sid=sid, channel=channel, proposer=proposer, area=area, lead=lead, slow=slow,
                     misroute_to=misroute, co_units=co, outcome=outcome, fate=fate, rating=rating, reopen=reopen,
                     extend=extend, quality=self._quality(outcome))

    def _outcome(self) -> Outcome:
        mix = self.config.outcome_mix
        return self.rng.choices(list(mix), weights=list(mix.values()))[0]

    def _quality(self, outcome: Outcome) -> float:
        """Latent quality: adopted suggestions are better on the whole, with overlap."""
        a, b = {Outcome.ADOPTED: (5, 2), Outcome.PARTIALLY_ADOPTED: (4, 3), Outcome.DECLINED: (2, 4)}[outcome]
        return self.rng.betavariate(a, b)

    # --- handling --------------------------------------------------------------------------
    def _withdraw(self, ts: int, sid: str) -> None:
        plan = self._plans[sid]
        if self.flow.workflow.accepts("withdraw", plan.state):
            self._act(plan, "withdraw", plan.proposer, reason=self.rng.choice(_WITHDRAW_REASONS))

    def _register(self, ts: int, sid: str) -> None:
        plan = self._plans[sid]
        if plan.state is not State.RECEIVED:
            return
        if plan.fate == "not_accepted":
            self._act(plan, "not_accept", self._clerk(), reason="属个人诉求，不属于人民建议，已告知按信访事项另行反映")
            return
        self._act(plan, "register", self._clerk())
        quick = min(self.rng.choice((0, 1, 1, 2, 3)), self._days_left(Step.REGISTER, ts) // 3)
        self._push(self._office_after(ts, quick), "transfer", sid)

    def _transfer(self, ts: int, sid: str) -> None:
        plan = self._plans[sid]
        if plan.state not in (State.REGISTERED, State.RETURNED):
            return
        if plan.misroute_to is not None:
            self._act(plan, "transfer", self._clerk(), lead_unit=plan.misroute_to)
            window = self._days_left(Step.OBJECT_TRANSFER, ts)
            self._push(self._office_after(ts, self.rng.randint(min(1, window - 1), max(0, window - 1))), "object",
                       sid)
            return
        self._act(plan, "transfer", self._clerk(), lead_unit=plan.lead, co_units=plan.co_units)
        self._schedule_handling(ts, plan)

    def _object(self, ts: int, sid: str) -> None:
        plan = self._plans[sid]
        if plan.state is not State.TRANSFERRED or plan.misroute_to is None:
            return
        self._act(plan, "object_transfer", self._actor(plan.misroute_to, Role.HANDLING_UNIT),
                  reason=self.rng.choice(_OBJECTION_REASONS))
        self._push(self._office_after(ts, self.rng.randint(1, 3)), "rule_objection", sid)

    def _rule_objection(self, ts: int, sid: str) -> None:
        plan = self._plans[sid]
        if plan.state is not State.OBJECTED or plan.misroute_to is None:
            return
        if self.rng.random() < self.config.objection_upheld:
            self._act(plan, "accept_objection", self._clerk(), note="经核实，异议成立，重新转送")
            plan.misroute_to = None
            self._push(self._office_after(ts, self.rng.randint(0, 2)), "transfer", sid)
            return
        self._act(plan, "reject_objection", self._clerk(), reason="经核实，该事项属于本单位职责范围，异议不成立")
        plan.lead, plan.misroute_to, plan.co_units = plan.misroute_to, None, ()
        plan.slow = plan.lead in self.slow
        self._schedule_handling(ts, plan)

    def _schedule_handling(self, ts: int, plan: _Plan) -> None:
        """From a transfer (or a refused objection, or a reopening): research, or first an extension request."""
        rng = self.rng
        left = self._days_left(Step.RESEARCH, ts)
        if plan.slow and plan.extend:
            self._push(self._office_after(ts, max(1, left - rng.randint(3, 8))), "request_extension", plan.sid)
            return
        days = self._within(left, 0.8, 1.1) if plan.slow else self._within(left, 0.2, 0.6)
        self._push(self._office_after(ts, days), "research", plan.sid)

    def _request_extension(self, ts: int, sid: str) -> None:
        plan = self._plans[sid]
        if plan.state is not State.TRANSFERRED:
            return
        self._act(plan, "request_extension", self._actor(plan.lead, Role.HANDLING_UNIT),
                  days=self.rng.choice((15, 20, 30, 30)), reason="涉及多个部门职责，需进一步会商论证")
        self._push(self._office_after(ts, self.rng.randint(1, 2)), "rule_extension", sid)

    def _rule_extension(self, ts: int, sid: str) -> None:
        plan = self._plans[sid]
        if plan.state is not State.TRANSFERRED:
            return
        head = self._actor(plan.lead, Role.HANDLING_UNIT_HEAD)
        if self.rng.random() < self.config.extension_approved:
            self._act(plan, "approve_extension", head, note="同意延期")
        else:
            self._act(plan, "reject_extension", head, reason="应在规定期限内办结")
        self._push(self._office_after(ts, self.rng.randint(3, 12)), "research", sid)

    def _research(self, ts: int, sid: str) -> None:
        plan = self._plans[sid]
        if plan.state is not State.TRANSFERRED:
            return
        method: ResearchMethod = _METHODS.pick(self.rng)
        self._act(plan, "research", self._actor(plan.lead, Role.HANDLING_UNIT),
                  findings=f"经{_METHOD_ZH[method]}，听取相关方面意见，形成办理意见。", method=method)
        self._push(self._office_after(ts, self.rng.randint(1, 4)), "decide", sid)

    def _decide(self, ts: int, sid: str) -> None:
        plan = self._plans[sid]
        if plan.state is not State.RESEARCHED:
            return
        outcome = plan.outcome
        self._act(plan, "decide", self._actor(plan.lead, Role.HANDLING_UNIT), DECIDE_TRIGGERS[outcome.value],
                  outcome=outcome,
                  reason="现有政策已覆盖或条件暂不具备" if outcome is Outcome.DECLINED else None,
                  adopted_part="建议的第一项措施" if outcome is Outcome.PARTIALLY_ADOPTED else None)
        left = self._days_left(Step.REPLY, ts)
        days = self._within(left, 0.4, 1.3) if plan.slow else self._within(left, 0.1, 0.65)
        self._push(self._office_after(ts, days), "reply", sid)

    def _reply(self, ts: int, sid: str) -> None:
        plan = self._plans[sid]
        if plan.state not in (State.ADOPTED, State.PARTIALLY_ADOPTED, State.DECLINED):
            return
        form: ReplyForm = _REPLY_FORMS[plan.channel].pick(self.rng)
        self._act(plan, "reply", self._actor(plan.lead, Role.HANDLING_UNIT),
                  text="感谢您的建议。经研究，办理情况答复如下。", form=form)
        rate_due = self.flow.due_for(Step.RATE, _at(ts))
        if plan.rating is not None:
            window = (rate_due.date() - _day_of(ts)).days
            day = _day_of(ts) + dt.timedelta(days=self.rng.randint(min(1, window), max(0, min(25, window - 1))))
            self._push(self._any_time(day, ts), "rate", sid)
        else:
            plan.rate_due = int(rate_due.timestamp())
        if not (plan.rating is Rating.DISSATISFIED and plan.reopen and plan.round == 1):
            self._after_final_reply(ts, plan)

    def _rate(self, ts: int, sid: str) -> None:
        plan = self._plans[sid]
        if plan.state is not State.REPLIED or plan.rating is None:
            return
        self._act(plan, "rate", plan.proposer, rating=plan.rating)
        if plan.rating is Rating.DISSATISFIED and plan.reopen and plan.round == 1:
            self._push(self._office_after(ts, self.rng.randint(1, 3)), "reopen", sid)

    def _reopen(self, ts: int, sid: str) -> None:
        plan = self._plans[sid]
        if plan.state is not State.RATED:
            return
        self._act(plan, "reopen", self._clerk(), reason="建议人对答复不满意，交承办单位重新办理")
        plan.round = 2
        plan.reopen = False
        plan.outcome = self._outcome()
        plan.quality = self._quality(plan.outcome)
        plan.rating = self.rng.choice((Rating.SATISFIED, Rating.BASICALLY_SATISFIED, Rating.DISSATISFIED, None))
        self._schedule_handling(ts, plan)

    # --- reporting upward and the summary phase --------------------------------------------
    def _after_final_reply(self, ts: int, plan: _Plan) -> None:
        """Once a suggestion is answered for good: maybe reported upward at once, maybe evaluated later."""
        rng, cfg = self.rng, self.config
        adopted = plan.outcome in (Outcome.ADOPTED, Outcome.PARTIALLY_ADOPTED)
        if adopted and plan.quality >= 0.75 and rng.random() < cfg.reported_during_implementation:
            when = self._office_after(ts, rng.randint(1, 10))
            self._push(when, "report_excerpt", plan.sid)
            if rng.random() < 0.2:
                self._push(self._office_after(when, rng.randint(1, 5)), "forward", plan.sid)
        days = [d for d in self._eval_days if d > _day_of(ts)]
        if days and rng.random() < (cfg.evaluated_adopted if adopted else cfg.evaluated_declined):
            q = plan.quality
            plan.scores = (self._score(q, 0), self._score(q, 0.5), self._score(q if adopted else q * 0.5, 1))
            self._push(self._office_on(rng.choice(days)), "evaluate", plan.sid)

    def _score(self, quality: float, spread: float) -> int:
        return max(0, min(10, round(10 * quality + self.rng.gauss(0, 1 + spread))))

    def _report_excerpt(self, ts: int, sid: str) -> None:
        plan = self._plans[sid]
        if ReportForm.EXCERPT in plan.reports or not self.campaign.is_open("report_upward", _at(ts)):
            return
        plan.reports.append(ReportForm.EXCERPT)
        self._call("report_upward", sid, self._clerk(), form=ReportForm.EXCERPT, note="高质量建议，摘报党委、政府")

    def _forward(self, ts: int, sid: str) -> None:
        plan = self._plans[sid]
        if plan.forwarded or not self.campaign.is_open("forward_to_city", _at(ts)):
            return
        plan.forwarded = True
        self._call("forward_to_city", sid, self._clerk(), note="优质建议，呈送市信访办")

    def _evaluate(self, ts: int, sid: str) -> None:
        plan = self._plans[sid]
        assert plan.scores is not None
        quality, value, effect = plan.scores
        plan.evaluated = True
        self._call("evaluate", sid, self.rng.choice(self._evaluators), quality=quality, value=value, effect=effect,
                   evaluator="评审组")

    def _select(self, ts: int, _: str) -> None:
        """After the evaluations: rewards, 原件 and typical cases go to the best-scored adopted suggestions."""
        cfg, rng = self.config, self.rng
        adopted = self._best_first([p for p in self._plans.values() if p.evaluated
                                    and p.outcome in (Outcome.ADOPTED, Outcome.PARTIALLY_ADOPTED)])
        if not adopted:
            return

        def top(share: float) -> list[_Plan]:
            return adopted[: math.ceil(share * len(adopted))]

        def later(action: str, plan: _Plan) -> None:
            self._push(self._office_on(rng.choice(self._select_days), ts), action, plan.sid)

        nominees = top(cfg.rewards)
        first_rank: dict[int, int] = {}  # equal scores share the better tier
        for i, plan in enumerate(nominees):
            plan.tier = _tier(first_rank.setdefault(plan.total, i), len(nominees))
            later("nominate", plan)
            later("forward", plan)
        for plan in top(cfg.originals):
            later("report_original", plan)
        best_by_area: dict[str, _Plan] = {}
        for plan in adopted:
            best_by_area.setdefault(plan.area, plan)
        for plan in best_by_area.values():
            later("report_analysis", plan)
        for plan in top(cfg.typical_cases):
            later("typical", plan)
        by_effect = sorted(adopted, key=lambda p: (-(p.scores or (0, 0, 0))[2], -p.total, p.sid))
        for plan in by_effect[: math.ceil(cfg.adoption_records * len(adopted))]:
            later("record_adoption", plan)

    @staticmethod
    def _best_first(plans: list[_Plan]) -> list[_Plan]:
        """Evaluated suggestions by their total score, best first (ties by id)."""
        return sorted(plans, key=lambda p: (-p.total, p.sid))

    def _nominate(self, ts: int, sid: str) -> None:
        plan = self._plans[sid]
        assert plan.tier is not None
        self._call("nominate_reward", sid, self.rng.choice(self._evaluators), tier=plan.tier)

    def _report_original(self, ts: int, sid: str) -> None:
        self._plans[sid].reports.append(ReportForm.ORIGINAL)
        self._call("report_upward", sid, self._clerk(), form=ReportForm.ORIGINAL, note="评比得分居前，原件报送")

    def _report_analysis(self, ts: int, sid: str) -> None:
        self._plans[sid].reports.append(ReportForm.ANALYSIS)
        area = self.campaign.area(self._plans[sid].area).name
        self._call("report_upward", sid, self._clerk(), form=ReportForm.ANALYSIS, note=f"{area}方面建议分析报告")

    def _typical(self, ts: int, sid: str) -> None:
        self._call("mark_typical", sid, self._clerk(), note="评比得分居前，作为典型案例宣传推介")

    def _record_adoption(self, ts: int, sid: str) -> None:
        plan = self._plans[sid]
        form: AdoptionForm = _ADOPTIONS.pick(self.rng)
        area = self.campaign.area(plan.area).name
        self._call("record_adoption", sid, self._actor(plan.lead, Role.HANDLING_UNIT),
                   adopted_into=f"{_ADOPTION_ZH[form]}：关于{area}的工作措施", form=form)


def _tier(rank: int, of: int) -> RewardTier:
    """Reward tier by rank among the nominees (best first): one 特等 among ten or more, then by share."""
    if rank == 0 and of >= 10:
        return RewardTier.SPECIAL
    share = rank / of
    if share < 0.15:
        return RewardTier.FIRST
    if share < 0.4:
        return RewardTier.SECOND
    if share < 0.7:
        return RewardTier.THIRD
    return RewardTier.ENCOURAGEMENT


def _describe(identity: object) -> str:
    if not isinstance(identity, dict):
        return repr(identity)
    return (f"campaign {identity.get('campaign')}, seed {identity.get('seed')}, "
            f"{identity.get('suggestions')} suggestions, config {identity.get('config')}, "
            f"{identity.get('simulator')}")
