"""The campaign report (活动统计报告): everything the office tells leadership, as plain data.

:func:`build_report` reads a store's event log once (:func:`~jianyi_flow.storage.base.iter_events`)
and returns a :class:`CampaignReport` — frozen attrs classes whose :meth:`~CampaignReport.to_dict`
is JSON-ready.  The renderers in :mod:`jianyi_flow.render` turn it into text, Markdown, HTML,
CSV, XLSX and JSON, and into the summary-phase documents (摘报, 分析报告).

Why the events and not the current rows: timeliness is a property of the *history*.  A
suggestion's row only knows the deadline in force now; whether the research step finished
before the deadline that was in force *then* (possibly moved by an extension) is only in the
events.  Reading the log once gives both the history and the final state (the fields the
events set, folded in order), so no second pass over the rows is needed.

Definitions (docs/reports.md says the same for readers of the report):

* **Scope** — suggestions whose ``receive`` event files them under ``campaign.code``, as they
  stood at ``now``: their events up to ``now``, and only those, are folded, counted in
  ``events`` and covered by ``history_digest``.  Built for one workflow or deadline-policy
  version (``workflow_version=``, ``policy_version=``), only the suggestions whose current
  version it is are in scope.
* **On time** — four steps are judged: register-and-route (``register``: begun by ``receive``
  and by ``accept_objection``; ended by ``transfer`` or ``not_accept``), the office's decision
  on a misroute objection (``objection``: begun by ``object_transfer``; ended by
  ``accept_objection`` or ``reject_objection``), research-and-decide (``research``: begun by
  ``transfer``, ``reject_objection`` and ``reopen``; ended by ``decide``) and reply
  (``reply``: begun by ``decide``; ended by ``reply``).  A step is *on time* when the event
  that completes it happened at or before the ``due_at`` in force just before that event:
  the due time set when the step began, as moved by any approved extension or re-timing in
  between.  A step still open whose due time is before ``now`` is *late* already.  A step
  ended by something else (``withdraw``; ``object_transfer`` ending a research step) is late
  if that happened after its due time and is not judged otherwise.  Open steps not yet due
  are *pending* and not judged.  The rate is on-time / judged.  The proposer's rating window
  is not a unit's deadline and is not judged.
* **Provisional (暂定)** — a deadline whose event marked it ``due_provisional`` (counted over
  calendar days of a year whose official schedule was not published) is provisional until a
  ``retime`` event re-counts it; every overdue and due-soon row says so, the step table counts
  them, and ``provisional_note`` says why in one line (asking the report's calendar whether
  those years are still unpublished).
* **Older stores** — ``return_transfer`` (a misrouted transfer sent back by the unit alone)
  counts as an objection the office accepted, and ``extend`` (the office moving a deadline
  itself) as an extension requested and approved; ``legacy_events`` counts them.  Events
  written before versions were recorded count under :data:`UNVERSIONED`.
* **Per unit** — research and reply steps are charged to the lead unit in force when the
  step ended (or at ``now`` for an open one); register-and-route and objection decisions are
  the collection office's work and appear only per step.
* **Adoption rate** — (adopted + partially adopted) / decided, by each suggestion's current
  outcome (a reopened suggestion counts by its new decision once made).
* **Satisfaction rate** — (satisfied + basically satisfied) / rated, by each suggestion's
  current rating; ``unrated`` counts suggestions whose rating window closed without one.
* **Organisation award (组织奖) candidates** — units that met their recommendation quota,
  have an on-time rate of at least :data:`AWARD_ON_TIME_MIN` as lead unit (units with no
  judged step pass this test: nothing of theirs was late) and recommended at least one
  suggestion that was adopted or partially adopted; ranked by that adopted count, then by
  recommendations, then by unit code.

Personal data: the report carries proposer details only for the suggestions selected for the
excerpt report, and then only as :meth:`~jianyi_flow.domain.model.Proposer.masked` (phone masked,
address hidden, confidential names masked).  Every free text it carries (titles, the three
parts, replies, adopted parts, adoption records) goes through
:func:`jianyi_flow.service.visibility.scrub`: the proposer's own details are scrubbed and any
ID-card, bank-card, phone number or e-mail address written in it is masked
(:func:`jianyi_flow.domain.masking.mask_personal_data`) — unless ``unmasked=True`` is asked for
by an actor of the collection office (区征集办), the only role that may see them.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import hashlib
import heapq
import itertools
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import attrs

from .domain import validation as v
from .domain.calendar import BusinessCalendar, default_calendar
from .domain.campaign import Campaign
from .domain.clock import SHANGHAI, local_date, require_aware
from .domain.codec import apply_event, decode_datetime, decode_proposer
from .domain.model import (
    Actor,
    AdoptionForm,
    Channel,
    Event,
    Outcome,
    Proposer,
    Rating,
    ReplyForm,
    ReportForm,
    ResearchMethod,
    RewardTier,
    Role,
    State,
    Step,
    Suggestion,
)
from .domain.workflow import OPEN_STATES
from .errors import CalendarNotCovered, NotFound, PermissionDenied, ValidationError
from .quota import quota_report
from .service.visibility import scrub
from .storage.base import PersonalDataVault, Store, iter_events

__all__ = [
    "AWARD_ON_TIME_MIN",
    "DUE_SOON",
    "HIGHLIGHTS_PER_AREA",
    "JUDGED_STEPS",
    "LEGACY_KINDS",
    "OBJECTION",
    "UNRECORDED",
    "UNVERSIONED",
    "AreaHighlights",
    "AreaRow",
    "AwardCandidate",
    "CampaignReport",
    "CountRow",
    "DaysRow",
    "DueSoonItem",
    "EvaluationSummary",
    "ExcerptItem",
    "ExtensionUnitRow",
    "Extensions",
    "ObjectionUnitRow",
    "Objections",
    "OverdueItem",
    "PhaseRow",
    "ProposerView",
    "QuotaItem",
    "Satisfaction",
    "StepTiming",
    "SuggestionBrief",
    "SummaryPhase",
    "UnitTiming",
    "VersionRow",
    "Versions",
    "WeekRow",
    "build_report",
    "history_digest",
    "provisional_note",
]

AWARD_ON_TIME_MIN = 0.9
"""The on-time rate a unit needs to be an organisation award candidate."""

HIGHLIGHTS_PER_AREA = 3
"""How many adopted suggestions per area the analysis report highlights."""

OBJECTION = "objection"
"""The judged step of the office's decision on a misroute objection (异议核实).

Not a :class:`~jianyi_flow.domain.model.Step`: while a suggestion is ``objected`` its deadline
is the office's routing period (``due_step`` ``register``, 信访工作条例 Art. 22); the report
tells this step apart by the state."""

JUDGED_STEPS: tuple[str, ...] = (Step.REGISTER.value, OBJECTION, Step.RESEARCH.value, Step.REPLY.value)
"""The steps whose timeliness is judged, in handling order."""

UNVERSIONED = "unversioned"
"""The version under which events written before versions were recorded are counted."""

UNRECORDED = "unrecorded"
"""The research method, reply form or adoption form of a record made before they were asked for."""

LEGACY_KINDS: tuple[str, ...] = ("return_transfer", "extend")
"""Event kinds of earlier versions that a store may still hold (see the module docstring)."""

DUE_SOON = dt.timedelta(days=7)
"""How far ahead of ``now`` the due-soon list looks by default."""

_COMPLETES: Mapping[str, frozenset[str]] = {
    Step.REGISTER.value: frozenset({"transfer", "not_accept"}),
    OBJECTION: frozenset({"accept_objection", "reject_objection"}),
    Step.RESEARCH.value: frozenset({"decide"}),
    Step.REPLY.value: frozenset({"reply"}),
}
"""Which event kinds complete each judged step (any other step change interrupts it)."""

_KEEPS_STEP = frozenset({"retime", "approve_extension", "extend", "flag_overdue"})
"""Kinds that move or mark the current deadline without ending its step."""

_UNIT_STEPS = frozenset({Step.RESEARCH.value, Step.REPLY.value})
_OPEN = frozenset(s.value for s in OPEN_STATES)
_ADOPTED = frozenset({Outcome.ADOPTED.value, Outcome.PARTIALLY_ADOPTED.value})
_TIER_RANK: Mapping[str, int] = {t.value: len(RewardTier) - i for i, t in enumerate(RewardTier)}
"""special → 5 … encouragement → 1: a higher rank is a better tier."""

BEFORE = "before"
AFTER = "after"
"""Pseudo-phases for arrivals outside every campaign phase (entered without the phase guard)."""


# --- the report's rows -------------------------------------------------------------------------


@attrs.frozen
class CountRow:
    """A count under a code (area, topic, unit...); ``code`` is ``None`` for "none given"."""

    code: str | None
    name: str
    count: int


@attrs.frozen
class PhaseRow:
    """Arrivals (received suggestions) in one campaign phase, or before/after all of them."""

    code: str
    name: str
    start: dt.date | None
    end: dt.date | None
    count: int


@attrs.frozen
class WeekRow:
    """Arrivals in the week (Monday–Sunday, Asia/Shanghai) starting ``week_start``."""

    week_start: dt.date
    count: int


@attrs.frozen
class AreaRow:
    """One area: how many suggestions, and their current outcomes."""

    code: str
    name: str
    suggestions: int
    adopted: int
    partially_adopted: int
    declined: int
    undecided: int
    adoption_rate: float | None


@attrs.frozen
class StepTiming:
    """Timeliness of one step over the campaign (see the module docstring for the definition)."""

    step: str
    judged: int
    on_time: int
    late: int
    open_overdue: int
    """Of ``late``: steps still open at ``now`` whose due time has passed."""
    pending: int
    """Open steps not yet due at ``now`` (not judged)."""
    rate: float | None
    provisional_judged: int
    """Of ``judged``: steps judged against a due time that was provisional (暂定) then."""
    provisional_pending: int
    """Of ``pending``: steps whose due time is provisional."""


@attrs.frozen
class UnitTiming:
    """Timeliness of a lead unit's research and reply steps."""

    unit: str
    name: str
    judged: int
    on_time: int
    late: int
    rate: float | None


@attrs.frozen
class OverdueItem:
    """An open suggestion whose current step is past its due time at ``now``."""

    id: str
    registration_number: str | None
    title: str
    state: str
    due_step: str
    """The judged step: ``register``, ``objection``, ``research`` or ``reply``."""
    due_at: dt.datetime
    provisional: bool
    """The due time was counted over provisional calendar days (暂定) and may still move."""
    lead_unit: str | None
    lead_unit_name: str | None
    working_days_overdue: int | None
    """Working days after the due day up to and including ``now``'s day (campaign calendar);
    ``None`` when the calendar does not cover the years involved."""


@attrs.frozen
class DueSoonItem:
    """An open suggestion whose current step is not overdue but due by ``due_soon_until``."""

    id: str
    registration_number: str | None
    title: str
    state: str
    due_step: str
    due_at: dt.datetime
    provisional: bool
    """The due time was counted over provisional calendar days (暂定) and may still move."""
    lead_unit: str | None
    lead_unit_name: str | None
    working_days_left: int | None
    """Working days after ``now``'s day up to and including the due day (campaign calendar);
    ``None`` when the calendar does not cover the years involved."""


@attrs.frozen
class QuotaItem:
    """One unit's recommendation quota line (from :func:`jianyi_flow.quota.quota_report`)."""

    unit: str
    name: str
    kind: str
    recommended: int
    required: int
    met: bool
    shortfall: int


@attrs.frozen
class Satisfaction:
    """Proposers' ratings by each suggestion's current rating."""

    satisfied: int
    basically_satisfied: int
    dissatisfied: int
    rated: int
    unrated: int
    """Rating window closed without a rating (state ``unrated``)."""
    awaiting: int
    """Replied, rating window still open."""
    rate: float | None


@attrs.frozen
class DaysRow:
    """How many approved extensions were for ``days`` calendar days."""

    days: int
    count: int


@attrs.frozen
class ExtensionUnitRow:
    """One lead unit's extensions of its research and reply deadlines."""

    unit: str
    name: str
    requested: int
    approved: int
    rejected: int
    days: int
    """Calendar days granted in total."""


@attrs.frozen
class Extensions:
    """Deadline extensions (延期): asked for by the lead unit, approved or refused.

    ``requested``, ``approved`` and ``rejected`` count events; ``pending`` counts open
    suggestions with a request still waiting for a decision at ``now``.
    """

    requested: int
    approved: int
    rejected: int
    pending: int
    days: int
    """Calendar days granted by the approved extensions, in total."""
    by_days: tuple[DaysRow, ...]
    """Approved extensions by their length, shortest first."""
    by_step: Mapping[str, int]
    """Approved extensions by the step whose deadline they moved."""
    by_unit: tuple[ExtensionUnitRow, ...]
    """Research and reply extensions, charged to the lead unit of the time."""


@attrs.frozen
class ObjectionUnitRow:
    """One unit's misroute objections (提出异议) and how the office decided them."""

    unit: str
    name: str
    objected: int
    accepted: int
    rejected: int


@attrs.frozen
class Objections:
    """Misroute objections (信访工作条例 Art. 23 ¶3): a unit objects, the office agrees or refuses.

    ``objected``, ``accepted`` and ``rejected`` count events; ``pending`` counts suggestions
    in state ``objected`` at ``now``.  Their timeliness is the ``objection`` step.
    """

    objected: int
    accepted: int
    rejected: int
    pending: int
    by_unit: tuple[ObjectionUnitRow, ...]


@attrs.frozen
class EvaluationSummary:
    """Summary-phase evaluations (质量、价值、效果, each 0–10): how many and their means."""

    count: int
    mean_quality: float | None
    mean_value: float | None
    mean_effect: float | None
    mean_total: float | None


@attrs.frozen
class SuggestionBrief:
    """A suggestion as the report lists it: what it is and what became of it, no personal data."""

    id: str
    registration_number: str | None
    title: str
    area: str
    area_name: str
    topic: str | None
    recommending_unit: str | None
    recommending_unit_name: str | None
    lead_unit: str | None
    lead_unit_name: str | None
    state: str
    outcome: str | None
    adopted_part: str | None
    adopted_into: str | None
    adoption_form: str | None
    """What kind of measure it became (吸纳转化形式), when recorded."""
    reward_tier: str | None
    evaluation_total: int | None
    typical_case: bool
    upward_reports: tuple[str, ...]
    forwarded_to_city: bool
    received_at: dt.datetime


@attrs.frozen
class ProposerView:
    """The proposer as the report shows them: masked unless the report was built unmasked."""

    name: str
    kind: str
    phone: str | None
    address: str | None
    confidential: bool


@attrs.frozen
class ExcerptItem:
    """A suggestion selected for the excerpt report (摘报): its brief, its three parts, its proposer."""

    brief: SuggestionBrief
    subject: str
    problem: str
    measures: str
    reply: str | None
    proposer: ProposerView


@attrs.frozen
class AreaHighlights:
    """The best adopted suggestions of one area, for the analysis report."""

    area: str
    name: str
    items: tuple[SuggestionBrief, ...]


@attrs.frozen
class SummaryPhase:
    """What reporting upward and the summary phase (总结运用阶段) produced."""

    upward_reports: Mapping[str, int]
    """Suggestions reported upward, by form (原件/摘报/分析报告)."""
    forwarded_to_city: int
    evaluations: EvaluationSummary
    reward_candidates: tuple[SuggestionBrief, ...]
    """Ranked by tier, then evaluation total, then id."""
    reward_tiers: Mapping[str, int]
    originals: tuple[SuggestionBrief, ...]
    """Suggestions reported upward as originals (原件), by id."""
    adoptions: tuple[SuggestionBrief, ...]
    """Suggestions turned into a measure or document (吸纳转化运用), by id."""
    typical_cases: tuple[SuggestionBrief, ...]
    not_adopted: Mapping[str, int]
    """Of ``reward_candidates``, ``originals`` and ``typical_cases``: how many were not adopted
    or partially adopted (possible only in stores written before the rules required it)."""
    selected: tuple[ExcerptItem, ...]
    """Reported upward as excerpt, or reward candidates: the excerpt report's content."""


@attrs.frozen
class AwardCandidate:
    """A unit proposed for the organisation award (组织奖); see :data:`AWARD_ON_TIME_MIN`."""

    rank: int
    unit: str
    name: str
    recommended: int
    required: int
    adopted: int
    on_time_rate: float | None
    judged: int


@attrs.frozen
class VersionRow:
    """One workflow or deadline-policy version: suggestions now under it, events written under it."""

    version: str
    suggestions: int
    """Suggestions whose current version it is (their latest event's workflow; the policy their
    current deadline was set under)."""
    events: int
    """Events written under it (every event records the workflow and the deadline policy of the flow
    that wrote it; events written before policies had versions count under :data:`UNVERSIONED`
    when they set a deadline)."""
    first_event_at: dt.datetime | None
    """The earliest of those events."""


@attrs.frozen
class Versions:
    """The workflow and deadline-policy versions in the report, in the order they first appear."""

    workflow: tuple[VersionRow, ...]
    policy: tuple[VersionRow, ...]

    @property
    def split(self) -> bool:
        """More than one version of either: the renderers then show the split."""
        return len(self.workflow) > 1 or len(self.policy) > 1


@attrs.frozen
class CampaignReport:
    """The whole report.  Plain data: render it with :func:`jianyi_flow.render.render`."""

    campaign: str
    theme: str
    generated_at: dt.datetime
    masked: bool
    viewer: str | None
    """The actor who asked for an unmasked report (audit trail); ``None`` when masked."""
    calendar_mode: str
    """``provisional`` or ``strict``: the mode of the calendar the report was built with."""
    provisional_deadlines: int
    """Open deadlines (every step with a due time, the rating window too) counted over provisional days (暂定)."""
    provisional_years: tuple[int, ...]
    """The years of those deadlines' due days."""
    provisional_note: str | None
    """One line saying why those deadlines are provisional (``None`` when none is): the years
    whose schedule is not published yet, or published but not yet re-timed."""
    workflow_version: str | None
    """The workflow version the report was built for (``None``: every version)."""
    policy_version: str | None
    """The deadline-policy version the report was built for (``None``: every version)."""
    versions: Versions
    suggestions: int
    events: int
    history_digest: str
    legacy_events: Mapping[str, int]
    """Events of kinds earlier versions wrote (:data:`LEGACY_KINDS`), counted as described above."""
    by_state: Mapping[str, int]
    by_phase: tuple[PhaseRow, ...]
    arrivals_by_week: tuple[WeekRow, ...]
    by_area: tuple[AreaRow, ...]
    by_topic: tuple[CountRow, ...]
    by_channel: Mapping[str, int]
    by_recommending_unit: tuple[CountRow, ...]
    by_lead_unit: tuple[CountRow, ...]
    by_outcome: Mapping[str, int]
    decided: int
    adoption_rate: float | None
    by_research_method: Mapping[str, int]
    """Researched suggestions by how (调研论证方式); :data:`UNRECORDED` for older records."""
    by_reply_form: Mapping[str, int]
    """Replied suggestions by the form of the reply (答复方式); :data:`UNRECORDED` for older records."""
    by_adoption_form: Mapping[str, int]
    """Suggestions turned into a measure, by its kind (吸纳转化形式); :data:`UNRECORDED` when not said."""
    on_time_rate: float | None
    on_time_by_step: tuple[StepTiming, ...]
    on_time_by_unit: tuple[UnitTiming, ...]
    overdue: tuple[OverdueItem, ...]
    due_soon_until: dt.datetime
    due_soon: tuple[DueSoonItem, ...]
    quota: tuple[QuotaItem, ...]
    satisfaction: Satisfaction
    objections: Objections
    extensions: Extensions
    reopens: int
    summary_phase: SummaryPhase
    highlights: tuple[AreaHighlights, ...]
    organisation_award: tuple[AwardCandidate, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data: dates and times as ISO text, mappings as objects, rows as lists of objects."""
        out = _jsonable(self)
        assert isinstance(out, dict)
        return out


def _jsonable(value: object) -> Any:
    cls = type(value)
    if attrs.has(cls):
        return {f.name: _jsonable(getattr(value, f.name)) for f in attrs.fields(cls)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return value


def provisional_note(unpublished: Iterable[int], published: Iterable[int] = ()) -> str:
    """The one line a report shows when some of its deadlines are provisional (暂定).

    ``unpublished``: years whose State Council schedule the report's calendar does not have
    yet; ``published``: years it has, whose deadlines were not re-counted yet (``retime``).
    """
    def named(years: Iterable[int]) -> str:
        return "、".join(f"{y}年" for y in sorted(set(years)))

    parts = []
    if named(unpublished):
        parts.append(f"国务院办公厅{named(unpublished)}部分节假日安排尚未发布，期限按《全国年节及纪念日放假办法》"
                     "推算（未计调休），正式安排发布后重新计算")
    if named(published):
        parts.append(f"{named(published)}的正式安排已载入日历，这些期限尚待按正式安排重新计算")
    if not parts:
        parts.append("期限按《全国年节及纪念日放假办法》推算，正式安排发布后重新计算")
    return "标“暂定”的期限：" + "；".join(parts) + "。"


def _published(calendar: BusinessCalendar, year: int) -> bool:
    """Whether ``calendar`` answers ``year`` from an official schedule (a strict calendar without it: no)."""
    try:
        return not calendar.is_provisional(dt.date(year, 1, 1))
    except CalendarNotCovered:
        return False


# --- the digest ------------------------------------------------------------------------------


def history_digest(rows: Iterable[tuple[str, int, str]]) -> str:
    """SHA-256 (hex) of ``f"{suggestion_id}:{version}:{hash}\\n"`` over ``rows`` sorted by id then version.

    Sorting here, not trusting the store's order, makes the digest equal on every store: a
    database may order ids by a collation that differs from Python's code-point order.
    """
    h = hashlib.sha256()
    batch: list[str] = []
    for sid, version, event_hash in sorted(rows):
        batch.append(f"{sid}:{version}:{event_hash}\n")
        if len(batch) >= 4096:
            h.update("".join(batch).encode("utf-8"))
            batch.clear()
    h.update("".join(batch).encode("utf-8"))
    return h.hexdigest()


# --- the one pass ------------------------------------------------------------------------------


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@functools.total_ordering
class _Desc:
    """Reverses string order inside a heap key, so ties keep the smallest id."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __lt__(self, other: object) -> bool:
        assert isinstance(other, _Desc)
        return other.value < self.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and other.value == self.value

    def __hash__(self) -> int:
        return hash(self.value)


def _run_of(runs: list[list[Any]], version: str, at: dt.datetime) -> None:
    """Count one event under ``version`` in ``runs`` (consecutive events mostly share one)."""
    if runs and runs[-1][0] == version:
        runs[-1][1] += 1
    else:
        runs.append([version, 1, at])


_REGISTER = Step.REGISTER.value
_OBJECTED = State.OBJECTED

Kept = tuple[Mapping[str, Any], str, Event]
"""A suggestion the lists need: its folded fields, its state and its first event."""


class _One:
    """One suggestion while its events are folded: its fields, and what it adds to the totals.

    What a suggestion adds is collected here and added to the totals only when its last
    event is folded (:meth:`_Scan.finish`), because whether it is in the report at all may
    depend on its final version.
    """

    __slots__ = ("digest", "extensions", "fields", "first", "judged", "legacy", "objections", "policies", "reopens",
                 "state", "step", "workflow", "workflows")

    def __init__(self, first: Event) -> None:
        self.first = first
        self.fields: dict[str, Any] = {}
        self.state = ""
        self.step: str | None = None
        """The judged step the current deadline belongs to (``objection`` while objected)."""
        self.workflow: str | None = None
        self.digest: list[tuple[str, int, str]] = []
        self.workflows: list[list[Any]] = []
        """Runs of events under one version: ``[version, events, first event's time]``."""
        self.policies: list[list[Any]] = []
        self.judged: list[tuple[str, str | None, bool, bool]] = []
        self.extensions: list[tuple[str, str | None, str | None, int]] = []
        self.objections: list[tuple[str, str | None]] = []
        self.legacy: list[str] = []
        self.reopens = 0


class _Scan:
    """Accumulates the report over one pass of the event log, one suggestion at a time.

    Each suggestion's events are folded into ``fields`` (the encoded values its events set,
    i.e. its current row in JSON form) while step endings are judged on the way; when the
    next suggestion begins, :meth:`finish` adds the finished one to the totals and keeps the
    few suggestions the lists need.  Nothing is kept per suggestion otherwise, so memory is
    bounded by the totals and the digest rows.
    """

    def __init__(self, campaign: Campaign, now: dt.datetime, calendar: BusinessCalendar, due_soon_until: dt.datetime,
                 workflow_version: str | None, policy_version: str | None) -> None:
        self.campaign = campaign
        self.now = now
        self.calendar = calendar
        self.due_soon_until = due_soon_until
        self.workflow_version = workflow_version
        self.policy_version = policy_version
        self.digest_rows: list[tuple[str, int, str]] = []
        self.suggestions = 0
        self.by_state: Counter[str] = Counter()
        self.by_day: Counter[dt.date] = Counter()
        self.by_area: dict[str, Counter[str]] = defaultdict(Counter)
        self.by_topic: Counter[str | None] = Counter()
        self.by_channel: Counter[str] = Counter()
        self.by_recommending: Counter[str | None] = Counter()
        self.by_lead: Counter[str] = Counter()
        self.by_outcome: Counter[str] = Counter()
        self.by_method: Counter[str] = Counter()
        self.by_reply_form: Counter[str] = Counter()
        self.by_adoption_form: Counter[str] = Counter()
        self.step_on_time: Counter[str] = Counter()
        self.step_late: Counter[str] = Counter()
        self.step_open_overdue: Counter[str] = Counter()
        self.step_pending: Counter[str] = Counter()
        self.step_provisional_judged: Counter[str] = Counter()
        self.step_provisional_pending: Counter[str] = Counter()
        self.provisional_years: set[int] = set()
        self.provisional_deadlines = 0
        self.unit_on_time: Counter[str] = Counter()
        self.unit_late: Counter[str] = Counter()
        self.extension_counts: Counter[str] = Counter()
        self.extension_days: Counter[int] = Counter()
        self.extensions_by_step: Counter[str] = Counter()
        self.extensions_by_unit: dict[str, Counter[str]] = defaultdict(Counter)
        self.extensions_pending = 0
        self.objection_counts: Counter[str] = Counter()
        self.objections_by_unit: dict[str, Counter[str]] = defaultdict(Counter)
        self.legacy: Counter[str] = Counter()
        self.workflow_suggestions: Counter[str] = Counter()
        self.workflow_events: Counter[str] = Counter()
        self.workflow_first: dict[str, dt.datetime] = {}
        self.policy_suggestions: Counter[str] = Counter()
        self.policy_events: Counter[str] = Counter()
        self.policy_first: dict[str, dt.datetime] = {}
        self.reopens = 0
        self.ratings: Counter[str] = Counter()
        self.upward: Counter[str] = Counter()
        self.forwarded = 0
        self.evaluations = 0
        self.score_sums = [0, 0, 0]
        self.adopted_by_recommender: Counter[str] = Counter()
        self.recommended: Counter[tuple[str, dt.date]] = Counter()
        self.quota_sample: dict[tuple[str, dt.date], Event] = {}
        self.overdue: list[tuple[Kept, str, bool]] = []
        self.due_soon: list[tuple[Kept, str, bool]] = []
        self.rewards: list[Kept] = []
        self.originals: list[Kept] = []
        self.adoptions: list[Kept] = []
        self.typical: list[Kept] = []
        self.selected: list[Kept] = []
        self.not_adopted: Counter[str] = Counter()
        self.highlights: dict[str, list[tuple[tuple[Any, ...], int, Mapping[str, Any], str, Event]]] = (
            defaultdict(list)
        )
        self._heap_seq = 0
        self._due_cache: dict[str, dt.datetime] = {}

    def due(self, text: str) -> dt.datetime:
        """Decode an encoded due time; many suggestions share a due day, so cache it."""
        found = self._due_cache.get(text)
        if found is None:
            found = self._due_cache[text] = decode_datetime(text)
        return found

    def run(self, events: Iterable[Event]) -> None:
        """Fold ``events``, which come grouped by suggestion in version order (``iter_events``'s contract).

        Events after ``now`` are left out, so the report is the campaign as it stood at ``now``;
        a suggestion received after ``now`` is not in it at all.
        """
        code = self.campaign.code
        now = self.now
        fold = self.fold
        current: str | None = None
        include = False
        one: _One | None = None
        for e in events:
            sid = e.suggestion_id
            if sid != current:
                if include and one is not None:
                    self.finish(one)
                current = sid
                one = _One(e)
                include = e.changes.get("campaign") == code and e.at <= now
            if not include or e.at > now:
                continue
            assert one is not None
            fold(one, e)
        if include and one is not None:
            self.finish(one)

    def fold(self, one: _One, e: Event) -> None:
        """Fold one event into ``one``, judging the step it ends and noting what else it counts for."""
        fields = one.fields
        changes = e.changes
        kind = e.kind
        one.digest.append((e.suggestion_id, e.version, e.hash))
        workflow = e.workflow
        if workflow is not None:
            one.workflow = workflow
        _run_of(one.workflows, workflow or UNVERSIONED, e.at)
        if e.policy is not None:
            _run_of(one.policies, e.policy, e.at)
        elif changes.get("due_step") is not None:
            _run_of(one.policies, UNVERSIONED, e.at)  # a deadline set before policies had versions
        step = one.step
        if step is not None and "due_step" in changes and kind not in _KEEPS_STEP and step in _COMPLETES:
            self.judge(one, step, e)
        if kind in _EXTENSION_KINDS or kind in _OBJECTION_KINDS:
            self.note(one, step, e)
        elif kind == "reopen":
            one.reopens += 1
        fields.update(changes)
        one.state = e.to_state  # a StrEnum: equal to, and hashed as, its value
        due_step = fields.get("due_step")
        one.step = OBJECTION if due_step == _REGISTER and e.to_state is _OBJECTED else due_step

    def judge(self, one: _One, step: str, e: Event) -> None:
        """Judge ``step`` ending at event ``e`` against the due time in force before it."""
        fields = one.fields
        due_text = fields.get("due_at")
        if due_text is None:
            return
        due = self.due(due_text)
        in_time = e.at <= due
        if e.kind not in _COMPLETES[step]:
            if in_time:
                return  # interrupted before its due time: nothing to judge
            on_time = False
        else:
            on_time = in_time
        one.judged.append((step, fields.get("lead_unit"), on_time, bool(fields.get("due_provisional"))))

    @staticmethod
    def note(one: _One, step: str | None, e: Event) -> None:
        """Record an extension or objection event (of this version or an earlier one)."""
        kind = e.kind
        lead: str | None = one.fields.get("lead_unit")
        if kind in LEGACY_KINDS:
            one.legacy.append(kind)
        if kind in _OBJECTION_KINDS:
            for what in _OBJECTION_KINDS[kind]:
                one.objections.append((what, lead))
            return
        days = e.changes.get("extension_days") or e.payload.get("days") or 0
        days = days if isinstance(days, int) and not isinstance(days, bool) else 0
        for what in _EXTENSION_KINDS[kind]:
            one.extensions.append((what, step, lead, days if what == "approved" else 0))

    def finish(self, one: _One) -> None:
        """Add one finished suggestion (its folded fields and final state) to the totals, if in scope."""
        fields = one.fields
        workflow = one.workflow or UNVERSIONED
        policy = fields.get("policy") or UNVERSIONED
        if self.workflow_version is not None and workflow != self.workflow_version:
            return
        if self.policy_version is not None and policy != self.policy_version:
            return
        self.digest_rows.extend(one.digest)
        self.count_versions(one, workflow, policy)
        self.count_history(one)
        self.count_current(one)

    def count_versions(self, one: _One, workflow: str, policy: str) -> None:
        self.workflow_suggestions[workflow] += 1
        self.policy_suggestions[policy] += 1
        for events, first, seen in ((self.workflow_events, self.workflow_first, one.workflows),
                                    (self.policy_events, self.policy_first, one.policies)):
            for version, n, at in seen:
                events[version] += n
                if version not in first or at < first[version]:
                    first[version] = at

    def count_history(self, one: _One) -> None:
        """What the suggestion's history adds: judged steps, extensions, objections, reopens."""
        for step, lead, on_time, provisional in one.judged:
            self.count_step(step, lead, on_time)
            if provisional:
                self.step_provisional_judged[step] += 1
        for what, extended, lead, days in one.extensions:
            self.extension_counts[what] += 1
            unit = self.extensions_by_unit[lead] if lead and extended in _UNIT_STEPS else None
            if unit is not None:
                unit[what] += 1
            if what == "approved":
                self.extension_days[days] += 1
                if extended is not None:
                    self.extensions_by_step[extended] += 1
                if unit is not None:
                    unit["days"] += days
        for what, lead in one.objections:
            self.objection_counts[what] += 1
            if lead:
                self.objections_by_unit[lead][what] += 1
        self.legacy.update(one.legacy)
        self.reopens += one.reopens

    def count_step(self, step: str, lead: str | None, on_time: bool) -> None:
        (self.step_on_time if on_time else self.step_late)[step] += 1
        if step in _UNIT_STEPS and lead:
            (self.unit_on_time if on_time else self.unit_late)[lead] += 1

    def count_provisional(self, due: dt.datetime) -> None:
        """An open deadline counted over provisional days: the header's count and years."""
        self.provisional_deadlines += 1
        self.provisional_years.add(local_date(due).year)

    def count_current(self, one: _One) -> None:
        """What the suggestion as it stands at ``now`` adds to the totals and the lists."""
        fields, state, first = one.fields, one.state, one.first
        self.suggestions += 1
        self.by_state[state] += 1
        area = fields.get("area") or ""
        outcome: str | None = fields.get("outcome")
        area_counts = self.by_area[area]
        area_counts["suggestions"] += 1
        area_counts[outcome or "undecided"] += 1
        self.by_topic[fields.get("topic")] += 1
        self.by_channel[fields.get("channel") or ""] += 1
        recommender: str | None = fields.get("recommending_unit")
        self.by_recommending[recommender] += 1
        lead: str | None = fields.get("lead_unit")
        if lead:
            self.by_lead[lead] += 1
        adopted = outcome in _ADOPTED
        if outcome:
            self.by_outcome[outcome] += 1
            if adopted and recommender:
                self.adopted_by_recommender[recommender] += 1
        day = first.at.astimezone(SHANGHAI).date()
        self.by_day[day] += 1
        if recommender:
            self.recommended[(recommender, day)] += 1
            if (recommender, day) not in self.quota_sample:
                self.quota_sample[(recommender, day)] = first
        rating = fields.get("rating")
        if rating:
            self.ratings[rating] += 1
        if fields.get("research_notes") is not None or fields.get("research_method") is not None:
            self.by_method[fields.get("research_method") or UNRECORDED] += 1
        if fields.get("reply") is not None:
            self.by_reply_form[fields.get("reply_form") or UNRECORDED] += 1
        if fields.get("adopted_into"):
            self.by_adoption_form[fields.get("adoption_form") or UNRECORDED] += 1
        if state == State.OBJECTED.value:
            self.objection_counts["pending"] += 1
        kept: Kept = (fields, state, first)
        self.count_open_step(one, kept)
        self.count_summary(kept, adopted, area, outcome)

    def count_open_step(self, one: _One, kept: Kept) -> None:
        fields, state = one.fields, one.state
        if state not in _OPEN:
            return
        if fields.get("extension_request"):
            self.extensions_pending += 1
        step = one.step
        due_text = fields.get("due_at")
        if due_text is None:
            return
        due = self.due(due_text)
        provisional = bool(fields.get("due_provisional"))
        if provisional:  # every open deadline, the proposer's rating window too (as Flow.calendar_health counts)
            self.count_provisional(due)
        if step is None or step not in _COMPLETES:
            return
        if due < self.now:
            self.count_step(step, fields.get("lead_unit"), False)
            self.step_open_overdue[step] += 1
            if provisional:
                self.step_provisional_judged[step] += 1
            self.overdue.append((kept, step, provisional))
            return
        self.step_pending[step] += 1
        if provisional:
            self.step_provisional_pending[step] += 1
        if due <= self.due_soon_until:
            self.due_soon.append((kept, step, provisional))

    def count_summary(self, kept: Kept, adopted: bool, area: str, outcome: str | None) -> None:
        fields, _, first = kept
        forms = fields.get("upward_reports") or ()
        for form in forms:
            self.upward[form] += 1
        if fields.get("forwarded_to_city_at"):
            self.forwarded += 1
        evaluation = fields.get("evaluation")
        if evaluation:
            self.evaluations += 1
            self.score_sums[0] += evaluation["quality"]
            self.score_sums[1] += evaluation["value"]
            self.score_sums[2] += evaluation["effect"]
        tier = fields.get("reward_tier")
        for listed, name, holds in ((self.rewards, "reward_candidates", bool(tier)),
                                    (self.originals, "originals", ReportForm.ORIGINAL.value in forms),
                                    (self.typical, "typical_cases", bool(fields.get("typical_case")))):
            if holds:
                listed.append(kept)
                if not adopted:
                    self.not_adopted[name] += 1
        if fields.get("adopted_into"):
            self.adoptions.append(kept)
        if tier or ReportForm.EXCERPT.value in forms:
            self.selected.append(kept)
        if adopted:
            score = (
                bool(fields.get("typical_case")),
                _TIER_RANK.get(tier or "", 0),
                -1 if not evaluation else evaluation["quality"] + evaluation["value"] + evaluation["effect"],
                bool(fields.get("adopted_into")),
                outcome == Outcome.ADOPTED.value,
                _Desc(first.suggestion_id),
            )
            heap = self.highlights[area]
            self._heap_seq += 1
            entry = (score, self._heap_seq, fields, kept[1], first)
            if len(heap) < HIGHLIGHTS_PER_AREA:
                heapq.heappush(heap, entry)
            elif heap[0][0] < score:
                heapq.heapreplace(heap, entry)


_EXTENSION_KINDS: Mapping[str, tuple[str, ...]] = {
    "request_extension": ("requested",),
    "approve_extension": ("approved",),
    "reject_extension": ("rejected",),
    "extend": ("requested", "approved"),  # an earlier version: the office extended in one step
}
_OBJECTION_KINDS: Mapping[str, tuple[str, ...]] = {
    "object_transfer": ("objected",),
    "accept_objection": ("accepted",),
    "reject_objection": ("rejected",),
    "return_transfer": ("objected", "accepted"),  # an earlier version: the unit sent it back alone
}


# --- turning the scan into the report ----------------------------------------------------------


def _name(lookup: Callable[[str], Any], code: str | None, none: str) -> str:
    """The display name of ``code`` (a topic's title, else ``.name``); the code itself if unknown."""
    if code is None:
        return none
    try:
        found = lookup(code)
    except NotFound:
        return code
    return str(getattr(found, "title", None) or found.name)


def _ordered(counts: Mapping[Any, int], known: Iterable[str]) -> list[str | None]:
    """Known codes in the campaign's order, then unknown codes sorted, then ``None``."""
    known_list = [c for c in known if counts.get(c)]
    seen = set(known_list)
    rest = sorted(c for c in counts if c is not None and c not in seen and counts[c])
    tail: list[str | None] = [None] if counts.get(None) else []
    return [*known_list, *rest, *tail]


def _every(kind: type[enum.Enum], counts: Mapping[str, int]) -> dict[str, int]:
    """Every member's value with its count, then :data:`UNRECORDED`, then any value this version does not know."""
    out = {m.value: counts.get(m.value, 0) for m in kind}
    out[UNRECORDED] = counts.get(UNRECORDED, 0)
    out.update({k: n for k, n in sorted(counts.items()) if k not in out})
    return out


class _Builder:
    """Turns a finished :class:`_Scan` into the report's rows, masking as asked."""

    def __init__(self, campaign: Campaign, scan: _Scan, masked: bool, store: Store | None = None) -> None:
        self.campaign = campaign
        self.scan = scan
        self.masked = masked
        self.vault = store if isinstance(store, PersonalDataVault) else None

    def recorded_proposer(self, fields: Mapping[str, Any], sid: str) -> Proposer | None:
        """The proposer as recorded, with the data the vault holds filled in (已删除/已脱敏 once erased)."""
        recorded = fields.get("proposer")
        if not recorded:
            return None
        p = decode_proposer(recorded)
        if p.vaulted and not p.erased and self.vault is not None:
            record = self.vault.personal_data(sid)
            if record is not None:
                p = record.resolve(p)
        return p

    def area_name(self, code: str) -> str:
        return _name(self.campaign.area, code, "")

    def unit_name(self, code: str | None) -> str | None:
        return None if code is None else _name(self.campaign.unit, code, "")

    def brief(self, fields: Mapping[str, Any], state: str, first: Event) -> SuggestionBrief:
        evaluation = fields.get("evaluation")
        lead = fields.get("lead_unit")
        return SuggestionBrief(
            id=first.suggestion_id,
            registration_number=fields.get("registration_number"),
            title=self.scrub(fields.get("title") or "", fields, self.scrub_proposer(fields, first.suggestion_id)),
            area=fields.get("area") or "",
            area_name=self.area_name(fields.get("area") or ""),
            topic=fields.get("topic"),
            recommending_unit=fields.get("recommending_unit"),
            recommending_unit_name=self.unit_name(fields.get("recommending_unit")),
            lead_unit=lead,
            lead_unit_name=self.unit_name(lead),
            state=state,
            outcome=fields.get("outcome"),
            adopted_part=self.scrub_opt(fields.get("adopted_part"), fields),
            adopted_into=self.scrub_opt(fields.get("adopted_into"), fields),
            adoption_form=fields.get("adoption_form"),
            reward_tier=fields.get("reward_tier"),
            evaluation_total=None if not evaluation else
            evaluation["quality"] + evaluation["value"] + evaluation["effect"],
            typical_case=bool(fields.get("typical_case")),
            upward_reports=tuple(fields.get("upward_reports") or ()),
            forwarded_to_city=bool(fields.get("forwarded_to_city_at")),
            received_at=first.at.astimezone(SHANGHAI),
        )

    def scrub_proposer(self, fields: Mapping[str, Any], sid: str) -> Proposer | None:
        """The proposer whose own details a masked title is scrubbed of, read from the vault only for a
        confidential proposer (their name; phone numbers are masked by their shape anyway)."""
        recorded = fields.get("proposer")
        if not self.masked or not isinstance(recorded, Mapping) or not recorded.get("vaulted") \
                or not recorded.get("confidential"):
            return None
        return self.recorded_proposer(fields, sid)

    def scrub(self, text: str, fields: Mapping[str, Any], proposer: Proposer | None = None) -> str:
        """Free text as the report shows it: when masking, through :func:`jianyi_flow.service.visibility.scrub`.

        Proposers do write their phone number (or, confidential or not, their name) into the
        problem description, and other people's numbers, ID numbers and e-mail addresses; a
        masked report that hid the proposer but kept the text would hide nothing.  The rule
        is the one every masked view of a suggestion uses.
        """
        if not self.masked or not text:
            return text
        if proposer is None:
            recorded = fields.get("proposer")
            proposer = decode_proposer(recorded) if recorded else None
        return scrub(text, proposer)

    def scrub_opt(self, text: str | None, fields: Mapping[str, Any], proposer: Proposer | None = None) -> str | None:
        return None if text is None else self.scrub(text, fields, proposer)

    def proposer(self, fields: Mapping[str, Any], resolved: Proposer | None = None) -> ProposerView:
        p: Proposer = resolved if resolved is not None else decode_proposer(fields["proposer"])
        shown = p.masked() if self.masked else p
        return ProposerView(
            name=scrub(shown.name, None) if self.masked else shown.name,
            kind=shown.kind.value, phone=shown.phone, address=shown.address,
            confidential=p.confidential,
        )

    def excerpt(self, fields: Mapping[str, Any], state: str, first: Event) -> ExcerptItem:
        p = self.recorded_proposer(fields, first.suggestion_id)
        return ExcerptItem(
            brief=self.brief(fields, state, first),
            subject=self.scrub(fields.get("subject") or "", fields, p),
            problem=self.scrub(fields.get("problem") or "", fields, p),
            measures=self.scrub(fields.get("measures") or "", fields, p),
            reply=self.scrub_opt(fields.get("reply"), fields, p),
            proposer=self.proposer(fields, p),
        )

    def by_phase(self) -> tuple[PhaseRow, ...]:
        phases = self.campaign.phases
        counts: Counter[str] = Counter()
        for day, n in self.scan.by_day.items():
            phase = self.campaign.phase_on(day)
            if phase is not None:
                counts[phase.code] += n
            elif phases and day < phases[0].start:
                counts[BEFORE] += n
            else:
                counts[AFTER] += n
        rows = [PhaseRow(BEFORE, "活动开始前", None, phases[0].start - dt.timedelta(days=1) if phases else None,
                         counts[BEFORE])]
        rows += [PhaseRow(p.code, p.name_zh, p.start, p.end, counts[p.code]) for p in phases]
        rows.append(PhaseRow(AFTER, "活动结束后", phases[-1].end + dt.timedelta(days=1) if phases else None, None,
                             counts[AFTER]))
        return tuple(rows)

    def weeks(self) -> tuple[WeekRow, ...]:
        """Every week from the first phase (or arrival) to the last, zeros included, for the chart."""
        days = list(self.scan.by_day)
        for p in self.campaign.phases:
            days += [p.start, p.end]
        if not days:
            return ()
        counts: Counter[dt.date] = Counter()
        for day, n in self.scan.by_day.items():
            counts[day - dt.timedelta(days=day.weekday())] += n
        week = min(days)
        week -= dt.timedelta(days=week.weekday())
        last = max(days)
        rows = []
        while week <= last:
            rows.append(WeekRow(week, counts[week]))
            week += dt.timedelta(days=7)
        return tuple(rows)

    def by_area(self) -> tuple[AreaRow, ...]:
        counts = self.scan.by_area
        codes = [*self.campaign.area_codes, *sorted(c for c in counts if c not in self.campaign.area_codes)]
        rows = []
        for code in codes:
            c = counts.get(code, Counter())
            adopted = c[Outcome.ADOPTED.value]
            partial = c[Outcome.PARTIALLY_ADOPTED.value]
            declined = c[Outcome.DECLINED.value]
            rows.append(AreaRow(code, self.area_name(code), c["suggestions"], adopted, partial, declined,
                                c["undecided"], _rate(adopted + partial, adopted + partial + declined)))
        return tuple(rows)

    def count_rows(self, counts: Mapping[Any, int], known: Iterable[str], lookup: Callable[[str], Any],
                   none: str) -> tuple[CountRow, ...]:
        return tuple(CountRow(c, _name(lookup, c, none), counts[c]) for c in _ordered(counts, known))

    def topic_rows(self) -> tuple[CountRow, ...]:
        counts = self.scan.by_topic
        return tuple(
            CountRow(c, _name(self.campaign.topic, c, "（未选议题）").rstrip("。"), counts[c])
            for c in _ordered(counts, self.campaign.topic_codes)
        )

    def step_rows(self) -> tuple[StepTiming, ...]:
        s = self.scan
        return tuple(
            StepTiming(step, s.step_on_time[step] + s.step_late[step], s.step_on_time[step], s.step_late[step],
                       s.step_open_overdue[step], s.step_pending[step],
                       _rate(s.step_on_time[step], s.step_on_time[step] + s.step_late[step]),
                       s.step_provisional_judged[step], s.step_provisional_pending[step])
            for step in JUDGED_STEPS
        )

    def unit_rows(self) -> tuple[UnitTiming, ...]:
        s = self.scan
        judged: Counter[str | None] = Counter()
        for unit in (*s.unit_on_time, *s.unit_late):
            judged[unit] = s.unit_on_time[unit] + s.unit_late[unit]
        return tuple(
            UnitTiming(u, _name(self.campaign.unit, u, ""), judged[u], s.unit_on_time[u], s.unit_late[u],
                       _rate(s.unit_on_time[u], judged[u]))
            for u in _ordered(judged, self.campaign.unit_codes) if u is not None
        )

    def _working_days(self, calendar: BusinessCalendar, start: dt.date, end: dt.date) -> int | None:
        try:
            return calendar.working_days_between(start, end)
        except CalendarNotCovered:
            return None

    def _deadline_fields(self, entry: Any, step: Any, provisional: bool) -> dict[str, Any]:
        """The fields an overdue row and a due-soon row share."""
        fields, state, first = entry
        lead = fields.get("lead_unit")
        return {"id": first.suggestion_id, "registration_number": fields.get("registration_number"),
                "title": self.scrub(fields.get("title") or "", fields,
                                    self.scrub_proposer(fields, first.suggestion_id)),
                "state": state, "due_step": step,
                "due_at": self.scan.due(fields["due_at"]), "provisional": provisional, "lead_unit": lead,
                "lead_unit_name": self.unit_name(lead)}

    def overdue_rows(self, now: dt.datetime, calendar: BusinessCalendar) -> tuple[OverdueItem, ...]:
        today = local_date(now)
        rows = []
        for entry, step, provisional in self.scan.overdue:
            shared = self._deadline_fields(entry, step, provisional)
            rows.append(OverdueItem(**shared, working_days_overdue=self._working_days(
                calendar, local_date(shared["due_at"]), today)))
        rows.sort(key=lambda r: (r.due_at, r.id))
        return tuple(rows)

    def due_soon_rows(self, now: dt.datetime, calendar: BusinessCalendar) -> tuple[DueSoonItem, ...]:
        today = local_date(now)
        rows = []
        for entry, step, provisional in self.scan.due_soon:
            shared = self._deadline_fields(entry, step, provisional)
            rows.append(DueSoonItem(**shared, working_days_left=self._working_days(
                calendar, today, local_date(shared["due_at"]))))
        rows.sort(key=lambda r: (r.due_at, r.id))
        return tuple(rows)

    def as_received(self) -> Iterator[Suggestion]:
        """The recommended suggestions as :func:`~jianyi_flow.quota.quota_report` sees them.

        quota.py counts a suggestion by its campaign, recommending unit and the Asia/Shanghai
        day it was received — fields fixed at receipt.  Rebuilding every suggestion from its
        ``receive`` event would cost more than the rest of the report, so one as-received
        suggestion per (unit, day) is rebuilt and given as many times as that pair occurs:
        quota_report sees the same count it would from every suggestion.
        """
        for key, count in self.scan.recommended.items():
            yield from itertools.repeat(apply_event(None, self.scan.quota_sample[key]), count)

    def quota_rows(self) -> tuple[QuotaItem, ...]:
        return tuple(
            QuotaItem(r.unit, r.name, r.kind.value, r.recommended, r.required, r.met, r.shortfall)
            for r in quota_report(self.campaign, self.as_received())
        )

    def satisfaction(self) -> Satisfaction:
        s = self.scan
        good = s.ratings[Rating.SATISFIED.value] + s.ratings[Rating.BASICALLY_SATISFIED.value]
        rated = good + s.ratings[Rating.DISSATISFIED.value]
        return Satisfaction(
            satisfied=s.ratings[Rating.SATISFIED.value],
            basically_satisfied=s.ratings[Rating.BASICALLY_SATISFIED.value],
            dissatisfied=s.ratings[Rating.DISSATISFIED.value],
            rated=rated,
            unrated=s.by_state[State.UNRATED.value],
            awaiting=s.by_state[State.REPLIED.value],
            rate=_rate(good, rated),
        )

    def objections(self) -> Objections:
        s = self.scan
        units = s.objections_by_unit
        return Objections(
            objected=s.objection_counts["objected"],
            accepted=s.objection_counts["accepted"],
            rejected=s.objection_counts["rejected"],
            pending=s.objection_counts["pending"],
            by_unit=tuple(
                ObjectionUnitRow(u, _name(self.campaign.unit, u, ""), units[u]["objected"], units[u]["accepted"],
                                 units[u]["rejected"])
                for u in _ordered({k: 1 for k in units}, self.campaign.unit_codes) if u is not None
            ),
        )

    def extensions(self) -> Extensions:
        s = self.scan
        units = s.extensions_by_unit
        return Extensions(
            requested=s.extension_counts["requested"],
            approved=s.extension_counts["approved"],
            rejected=s.extension_counts["rejected"],
            pending=s.extensions_pending,
            days=sum(days * n for days, n in s.extension_days.items()),
            by_days=tuple(DaysRow(days, n) for days, n in sorted(s.extension_days.items())),
            by_step={step: s.extensions_by_step[step] for step in JUDGED_STEPS if step != OBJECTION},
            by_unit=tuple(
                ExtensionUnitRow(u, _name(self.campaign.unit, u, ""), units[u]["requested"], units[u]["approved"],
                                 units[u]["rejected"], units[u]["days"])
                for u in _ordered({k: 1 for k in units}, self.campaign.unit_codes) if u is not None
            ),
        )

    def versions(self) -> Versions:
        s = self.scan

        def rows(suggestions: Counter[str], events: Counter[str], first: Mapping[str, dt.datetime]
                 ) -> tuple[VersionRow, ...]:
            names = set(suggestions) | set(events)
            ordered = sorted(names, key=lambda n: (n == UNVERSIONED, first.get(n) is None, first.get(n) or s.now, n))
            return tuple(VersionRow(n, suggestions[n], events[n],
                                    None if n not in first else first[n].astimezone(SHANGHAI)) for n in ordered)

        return Versions(rows(s.workflow_suggestions, s.workflow_events, s.workflow_first),
                        rows(s.policy_suggestions, s.policy_events, s.policy_first))

    def summary_phase(self) -> SummaryPhase:
        s = self.scan

        def mean(total: int) -> float | None:
            return total / s.evaluations if s.evaluations else None

        def by_id(kept: list[Kept]) -> tuple[SuggestionBrief, ...]:
            return tuple(sorted((self.brief(*k) for k in kept), key=lambda b: b.id))

        rewards = sorted((self.brief(*k) for k in s.rewards),
                         key=lambda b: (-_TIER_RANK.get(b.reward_tier or "", 0), -(b.evaluation_total or 0), b.id))
        tiers = Counter(b.reward_tier for b in rewards)
        selected = sorted((self.excerpt(*k) for k in s.selected),
                          key=lambda x: (-_TIER_RANK.get(x.brief.reward_tier or "", 0), x.brief.id))
        return SummaryPhase(
            upward_reports={f.value: s.upward[f.value] for f in ReportForm},
            forwarded_to_city=s.forwarded,
            evaluations=EvaluationSummary(
                count=s.evaluations,
                mean_quality=mean(s.score_sums[0]),
                mean_value=mean(s.score_sums[1]),
                mean_effect=mean(s.score_sums[2]),
                mean_total=mean(sum(s.score_sums)),
            ),
            reward_candidates=tuple(rewards),
            reward_tiers={t.value: tiers[t.value] for t in RewardTier},
            originals=by_id(s.originals),
            adoptions=by_id(s.adoptions),
            typical_cases=by_id(s.typical),
            not_adopted={k: s.not_adopted[k] for k in ("reward_candidates", "originals", "typical_cases")},
            selected=tuple(selected),
        )

    def highlights(self) -> tuple[AreaHighlights, ...]:
        out = []
        for row in self.by_area():
            heap = self.scan.highlights.get(row.code, [])
            best = sorted(heap, key=lambda entry: entry[0], reverse=True)
            if best:
                out.append(AreaHighlights(row.code, row.name,
                                          tuple(self.brief(f, st, fe) for _, _, f, st, fe in best)))
        return tuple(out)

    def award(self, quota: tuple[QuotaItem, ...], timing: tuple[UnitTiming, ...]) -> tuple[AwardCandidate, ...]:
        by_unit = {t.unit: t for t in timing}
        found = []
        for q in quota:
            t = by_unit.get(q.unit)
            rate = None if t is None else t.rate
            adopted = self.scan.adopted_by_recommender[q.unit]
            if q.met and adopted >= 1 and (rate is None or rate >= AWARD_ON_TIME_MIN):
                found.append((q, adopted, rate, 0 if t is None else t.judged))
        found.sort(key=lambda x: (-x[1], -x[0].recommended, x[0].unit))
        return tuple(
            AwardCandidate(i, q.unit, q.name, q.recommended, q.required, adopted, rate, judged)
            for i, (q, adopted, rate, judged) in enumerate(found, start=1)
        )


def build_report(
    campaign: Campaign,
    store: Store,
    now: dt.datetime,
    *,
    unmasked: bool = False,
    actor: Actor | None = None,
    calendar: BusinessCalendar | None = None,
    due_within: dt.timedelta = DUE_SOON,
    workflow_version: str | None = None,
    policy_version: str | None = None,
    page: int = 10_000,
) -> CampaignReport:
    """The report of ``campaign`` from its events in ``store``, as the campaign stood at ``now``.

    ``now`` (aware) is the moment reported on: events after it are left out (so a report
    "as of" a past day can be rebuilt from a later store), and it decides which open steps
    are overdue, which are pending and which are due soon (by ``now + due_within``).
    ``calendar`` counts working days overdue and left (the campaign calendar,
    :func:`~jianyi_flow.domain.calendar.default_calendar`, by default); its mode (provisional or
    strict) is stated in the report's header, and it says whether the years of provisional
    deadlines are still unpublished or published but not yet re-timed.  ``page`` is passed
    to :func:`~jianyi_flow.storage.base.iter_events`: stores with a bulk ``export_events``
    (MemoryStore, SqlStore) read a page of suggestions at a time; a store without one is read
    one history per suggestion.

    ``workflow_version`` / ``policy_version`` build the report for the suggestions whose
    current workflow / deadline-policy version it is (:data:`UNVERSIONED` for suggestions
    written before versions were recorded); ``None`` (the default) reports every version.

    ``unmasked=True`` shows proposers' names, phones and addresses in the excerpt items; it
    needs an ``actor`` of role :attr:`~jianyi_flow.domain.model.Role.COLLECTION_OFFICE`, else
    :class:`~jianyi_flow.errors.PermissionDenied` is raised before anything is read.
    """
    now = require_aware(now, "now")
    if unmasked and (actor is None or actor.role is not Role.COLLECTION_OFFICE):
        raise PermissionDenied(
            str(actor) if actor is not None else "anonymous", "build_report(unmasked=True)",
            "only the collection office (区征集办) may see proposers' personal data",
            reason_zh="只有区征集办可以查看建议人的个人信息",
        )
    v.whole_number("page", page, low=1)
    calendar = calendar or default_calendar()
    if not isinstance(due_within, dt.timedelta) or due_within < dt.timedelta(0):
        raise ValidationError("due_within", "must be a timedelta, not negative")
    if workflow_version is not None:
        workflow_version = v.required_text("workflow_version", workflow_version, max_len=200)
    if policy_version is not None:
        policy_version = v.required_text("policy_version", policy_version, max_len=200)
    scan = _Scan(campaign, now, calendar, now + due_within, workflow_version, policy_version)
    scan.run(iter_events(store, None, page))
    b = _Builder(campaign, scan, masked=not unmasked, store=store)
    on_time = sum(scan.step_on_time.values())
    judged = on_time + sum(scan.step_late.values())
    timing = b.unit_rows()
    quota = b.quota_rows()
    adopted = scan.by_outcome[Outcome.ADOPTED.value] + scan.by_outcome[Outcome.PARTIALLY_ADOPTED.value]
    decided = adopted + scan.by_outcome[Outcome.DECLINED.value]
    years = tuple(sorted(scan.provisional_years))
    published = [y for y in years if _published(calendar, y)]
    return CampaignReport(
        campaign=campaign.code,
        theme=campaign.theme,
        generated_at=now,
        masked=not unmasked,
        viewer=None if not unmasked or actor is None else str(actor),
        calendar_mode=calendar.mode.value,
        provisional_deadlines=scan.provisional_deadlines,
        provisional_years=years,
        provisional_note=None if not years else provisional_note(
            [y for y in years if y not in published], published),
        workflow_version=workflow_version,
        policy_version=policy_version,
        versions=b.versions(),
        suggestions=scan.suggestions,
        events=len(scan.digest_rows),
        history_digest=history_digest(scan.digest_rows),
        legacy_events={kind: scan.legacy[kind] for kind in LEGACY_KINDS},
        by_state={s.value: scan.by_state[s.value] for s in State},
        by_phase=b.by_phase(),
        arrivals_by_week=b.weeks(),
        by_area=b.by_area(),
        by_topic=b.topic_rows(),
        by_channel={c.value: scan.by_channel[c.value] for c in Channel},
        by_recommending_unit=b.count_rows(scan.by_recommending, campaign.unit_codes, campaign.unit,
                                          "（群众直接提出）"),
        by_lead_unit=b.count_rows(scan.by_lead, campaign.unit_codes, campaign.unit, ""),
        by_outcome={o.value: scan.by_outcome[o.value] for o in Outcome},
        decided=decided,
        adoption_rate=_rate(adopted, decided),
        by_research_method=_every(ResearchMethod, scan.by_method),
        by_reply_form=_every(ReplyForm, scan.by_reply_form),
        by_adoption_form=_every(AdoptionForm, scan.by_adoption_form),
        on_time_rate=_rate(on_time, judged),
        on_time_by_step=b.step_rows(),
        on_time_by_unit=timing,
        overdue=b.overdue_rows(now, scan.calendar),
        due_soon_until=now + due_within,
        due_soon=b.due_soon_rows(now, scan.calendar),
        quota=quota,
        satisfaction=b.satisfaction(),
        objections=b.objections(),
        extensions=b.extensions(),
        reopens=scan.reopens,
        summary_phase=b.summary_phase(),
        highlights=b.highlights(),
        organisation_award=b.award(quota, timing),
    )
