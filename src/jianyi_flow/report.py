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
  ``events`` and covered by ``history_digest``.
* **On time** — three steps are judged: register-and-route (``register``: ended by
  ``transfer`` or ``not_accept``; started again by ``return_transfer``), research-and-decide
  (``research``: ended by ``decide``; started again by ``reopen``) and reply (``reply``: ended
  by ``reply``).  A step is *on time* when the event that completes it happened at or before
  the ``due_at`` in force just before that event, i.e. the due time set when the step began
  as moved by any ``extend`` in between.  A step still open whose due time is before ``now``
  is *late* already.  A step ended by something else (``withdraw``, ``return_transfer``) is
  late if that happened after its due time and is not judged otherwise.  Open steps not yet
  due are *pending* and not judged.  The rate is on-time / judged.  The proposer's rating
  window is not a unit's deadline and is not judged.
* **Per unit** — research and reply steps are charged to the lead unit in force when the
  step ended (or at ``now`` for an open one); register-and-route is the collection
  office's work and appears only per step.
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
address hidden, confidential names masked), with the proposer's own details also scrubbed
from the suggestion's text (:func:`jianyi_flow.service.permissions.scrub`) — unless ``unmasked=True``
is asked for by an actor of the collection office (区征集办), the only role that may see them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import functools
import gc
import hashlib
import heapq
import itertools
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import attrs

from .domain.calendar import BusinessCalendar, default_calendar
from .domain.campaign import Campaign
from .domain.clock import SHANGHAI, local_date, require_aware
from .domain.deadlines import Step
from .domain.model import (
    Actor,
    Channel,
    Event,
    Outcome,
    Proposer,
    Rating,
    ReportForm,
    RewardTier,
    Role,
    State,
    Suggestion,
    apply_event,
    decode_datetime,
    decode_proposer,
)
from .errors import CalendarNotCovered, NotFound, PermissionDenied, ValidationError
from .quota import quota_report
from .service.flow import OPEN_STATES
from .service.permissions import scrub
from .storage.base import Store, iter_events

__all__ = [
    "AWARD_ON_TIME_MIN",
    "HIGHLIGHTS_PER_AREA",
    "JUDGED_STEPS",
    "AreaHighlights",
    "AreaRow",
    "AwardCandidate",
    "CampaignReport",
    "CountRow",
    "EvaluationSummary",
    "ExcerptItem",
    "Extensions",
    "OverdueItem",
    "PhaseRow",
    "ProposerView",
    "QuotaItem",
    "Satisfaction",
    "StepTiming",
    "SuggestionBrief",
    "SummaryPhase",
    "UnitTiming",
    "WeekRow",
    "build_report",
    "history_digest",
]

AWARD_ON_TIME_MIN = 0.9
"""The on-time rate a unit needs to be an organisation award candidate."""

HIGHLIGHTS_PER_AREA = 3
"""How many adopted suggestions per area the analysis report highlights."""

JUDGED_STEPS: tuple[str, ...] = (Step.REGISTER.value, Step.RESEARCH.value, Step.REPLY.value)
"""The steps whose timeliness is judged, in handling order."""

_COMPLETES: Mapping[str, frozenset[str]] = {
    Step.REGISTER.value: frozenset({"transfer", "not_accept"}),
    Step.RESEARCH.value: frozenset({"decide"}),
    Step.REPLY.value: frozenset({"reply"}),
}
"""Which event kinds complete each judged step (any other step change interrupts it)."""

_UNIT_STEPS = frozenset({Step.RESEARCH.value, Step.REPLY.value})
_OPEN = frozenset(s.value for s in OPEN_STATES)
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
    due_at: dt.datetime
    lead_unit: str | None
    lead_unit_name: str | None
    working_days_overdue: int | None
    """Working days after the due day up to and including ``now``'s day (campaign calendar);
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
class Extensions:
    """Deadline extensions (延期) granted."""

    count: int
    by_step: Mapping[str, int]
    by_unit: tuple[CountRow, ...]
    """Research and reply extensions, charged to the lead unit of the time."""


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
    """What the summary phase (总结运用阶段) produced."""

    upward_reports: Mapping[str, int]
    """Suggestions reported upward, by form (原件/摘报/分析报告)."""
    forwarded_to_city: int
    evaluations: EvaluationSummary
    reward_candidates: tuple[SuggestionBrief, ...]
    """Ranked by tier, then evaluation total, then id."""
    reward_tiers: Mapping[str, int]
    adoptions: tuple[SuggestionBrief, ...]
    """Suggestions turned into a measure or document (吸纳转化运用), by id."""
    typical_cases: tuple[SuggestionBrief, ...]
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
class CampaignReport:
    """The whole report.  Plain data: render it with :func:`jianyi_flow.render.render`."""

    campaign: str
    theme: str
    generated_at: dt.datetime
    masked: bool
    viewer: str | None
    """The actor who asked for an unmasked report (audit trail); ``None`` when masked."""
    suggestions: int
    events: int
    history_digest: str
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
    on_time_rate: float | None
    on_time_by_step: tuple[StepTiming, ...]
    on_time_by_unit: tuple[UnitTiming, ...]
    overdue: tuple[OverdueItem, ...]
    quota: tuple[QuotaItem, ...]
    satisfaction: Satisfaction
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


class _Scan:
    """Accumulates the report over one pass of the event log, one suggestion at a time.

    Each suggestion's events are folded into ``fields`` (the encoded values its events set,
    i.e. its current row in JSON form) while step endings are judged on the way; when the
    next suggestion begins, :meth:`finish` adds the finished one to the totals and keeps the
    few suggestions the lists need.  Nothing is kept per suggestion otherwise, so memory is
    bounded by the totals and the digest rows.
    """

    def __init__(self, campaign: Campaign, now: dt.datetime, calendar: BusinessCalendar) -> None:
        self.campaign = campaign
        self.now = now
        self.calendar = calendar
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
        self.step_on_time: Counter[str] = Counter()
        self.step_late: Counter[str] = Counter()
        self.step_open_overdue: Counter[str] = Counter()
        self.step_pending: Counter[str] = Counter()
        self.unit_on_time: Counter[str] = Counter()
        self.unit_late: Counter[str] = Counter()
        self.extensions_by_step: Counter[str] = Counter()
        self.extensions_by_unit: Counter[str] = Counter()
        self.reopens = 0
        self.ratings: Counter[str] = Counter()
        self.upward: Counter[str] = Counter()
        self.forwarded = 0
        self.evaluations = 0
        self.score_sums = [0, 0, 0]
        self.adopted_by_recommender: Counter[str] = Counter()
        self.recommended: Counter[tuple[str, dt.date]] = Counter()
        self.quota_sample: dict[tuple[str, dt.date], Event] = {}
        self.overdue: list[tuple[Mapping[str, Any], str, Event]] = []
        self.rewards: list[tuple[Mapping[str, Any], str, Event]] = []
        self.adoptions: list[tuple[Mapping[str, Any], str, Event]] = []
        self.typical: list[tuple[Mapping[str, Any], str, Event]] = []
        self.selected: list[tuple[Mapping[str, Any], str, Event]] = []
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
        rows = self.digest_rows
        judge = self.judge
        current: str | None = None
        include = False
        first: Event | None = None
        fields: dict[str, Any] = {}
        state = ""
        for e in events:
            sid = e.suggestion_id
            if sid != current:
                if include and first is not None:
                    self.finish(fields, state, first)
                current = sid
                first = e
                include = e.changes.get("campaign") == code and e.at <= now
                fields = {}
            if not include or e.at > now:
                continue
            rows.append((sid, e.version, e.hash))
            changes = e.changes
            kind = e.kind
            if "due_step" in changes:
                ending: str | None = fields.get("due_step")
                if ending is not None and ending in _COMPLETES:
                    judge(ending, fields, e)
            elif kind == "extend":
                step = fields.get("due_step")
                if step is not None:
                    self.extensions_by_step[step] += 1
                    lead = fields.get("lead_unit")
                    if step in _UNIT_STEPS and lead:
                        self.extensions_by_unit[lead] += 1
            if kind == "reopen":
                self.reopens += 1
            fields.update(changes)
            state = e.to_state  # a StrEnum: equal to, and hashed as, its value
        if include and first is not None:
            self.finish(fields, state, first)

    def judge(self, step: str, fields: Mapping[str, Any], e: Event) -> None:
        """Judge ``step`` ending at event ``e`` against the due time in force before it."""
        due_text = fields.get("due_at")
        if due_text is None:
            return
        in_time = e.at <= self.due(due_text)
        if e.kind not in _COMPLETES[step]:
            if in_time:
                return  # interrupted before its due time: nothing to judge
            on_time = False
        else:
            on_time = in_time
        self.count_step(step, fields.get("lead_unit"), on_time)

    def count_step(self, step: str, lead: str | None, on_time: bool) -> None:
        (self.step_on_time if on_time else self.step_late)[step] += 1
        if step in _UNIT_STEPS and lead:
            (self.unit_on_time if on_time else self.unit_late)[lead] += 1

    def finish(self, fields: Mapping[str, Any], state: str, first: Event) -> None:
        """Add one finished suggestion (its folded ``fields`` and final ``state``) to the totals."""
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
        adopted = outcome in (Outcome.ADOPTED.value, Outcome.PARTIALLY_ADOPTED.value)
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

        due_step: str | None = fields.get("due_step")
        due_text = fields.get("due_at")
        if state in _OPEN and due_step is not None and due_step in _COMPLETES and due_text is not None:
            if self.due(due_text) < self.now:
                self.count_step(due_step, lead, False)
                self.step_open_overdue[due_step] += 1
                self.overdue.append((fields, state, first))
            else:
                self.step_pending[due_step] += 1

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
        kept = (fields, state, first)
        tier = fields.get("reward_tier")
        if tier:
            self.rewards.append(kept)
        if fields.get("adopted_into"):
            self.adoptions.append(kept)
        if fields.get("typical_case"):
            self.typical.append(kept)
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
            entry = (score, self._heap_seq, fields, state, first)
            if len(heap) < HIGHLIGHTS_PER_AREA:
                heapq.heappush(heap, entry)
            elif heap[0][0] < score:
                heapq.heapreplace(heap, entry)


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


class _Builder:
    """Turns a finished :class:`_Scan` into the report's rows, masking as asked."""

    def __init__(self, campaign: Campaign, scan: _Scan, masked: bool) -> None:
        self.campaign = campaign
        self.scan = scan
        self.masked = masked

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
            title=self.scrub(fields.get("title") or "", fields),
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
            reward_tier=fields.get("reward_tier"),
            evaluation_total=None if not evaluation else
            evaluation["quality"] + evaluation["value"] + evaluation["effect"],
            typical_case=bool(fields.get("typical_case")),
            upward_reports=tuple(fields.get("upward_reports") or ()),
            forwarded_to_city=bool(fields.get("forwarded_to_city_at")),
            received_at=first.at.astimezone(SHANGHAI),
        )

    def scrub(self, text: str, fields: Mapping[str, Any]) -> str:
        """Free text without the proposer's own details, when masking (:func:`jianyi_flow.service.permissions.scrub`).

        Proposers do write their phone number (or, confidential or not, their name) into the
        problem description; a masked report that hid the proposer but kept the text would
        hide nothing.  The rule is the one every masked view of a suggestion uses.
        """
        if not self.masked or not text or not fields.get("proposer"):
            return text
        return scrub(text, decode_proposer(fields["proposer"]))

    def scrub_opt(self, text: str | None, fields: Mapping[str, Any]) -> str | None:
        return None if text is None else self.scrub(text, fields)

    def proposer(self, fields: Mapping[str, Any]) -> ProposerView:
        p: Proposer = decode_proposer(fields["proposer"])
        shown = p.masked() if self.masked else p
        return ProposerView(
            name=shown.name, kind=shown.kind.value, phone=shown.phone, address=shown.address,
            confidential=p.confidential,
        )

    def excerpt(self, fields: Mapping[str, Any], state: str, first: Event) -> ExcerptItem:
        return ExcerptItem(
            brief=self.brief(fields, state, first),
            subject=self.scrub(fields.get("subject") or "", fields),
            problem=self.scrub(fields.get("problem") or "", fields),
            measures=self.scrub(fields.get("measures") or "", fields),
            reply=self.scrub_opt(fields.get("reply"), fields),
            proposer=self.proposer(fields),
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
                       _rate(s.step_on_time[step], s.step_on_time[step] + s.step_late[step]))
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

    def overdue_rows(self, now: dt.datetime, calendar: BusinessCalendar) -> tuple[OverdueItem, ...]:
        today = local_date(now)
        rows = []
        for fields, state, first in self.scan.overdue:
            due = self.scan.due(fields["due_at"])
            try:
                days: int | None = calendar.working_days_between(local_date(due), today)
            except CalendarNotCovered:
                days = None
            lead = fields.get("lead_unit")
            rows.append(OverdueItem(
                id=first.suggestion_id,
                registration_number=fields.get("registration_number"),
                title=self.scrub(fields.get("title") or "", fields),
                state=state,
                due_step=fields["due_step"],
                due_at=due,
                lead_unit=lead,
                lead_unit_name=self.unit_name(lead),
                working_days_overdue=days,
            ))
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

    def summary_phase(self) -> SummaryPhase:
        s = self.scan

        def mean(total: int) -> float | None:
            return total / s.evaluations if s.evaluations else None

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
            adoptions=tuple(sorted((self.brief(*k) for k in s.adoptions), key=lambda b: b.id)),
            typical_cases=tuple(sorted((self.brief(*k) for k in s.typical), key=lambda b: b.id)),
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
    page: int = 10_000,
) -> CampaignReport:
    """The report of ``campaign`` from its events in ``store``, as the campaign stood at ``now``.

    ``now`` (aware) is the moment reported on: events after it are left out (so a report
    "as of" a past day can be rebuilt from a later store), and it decides which open steps
    are overdue and which are pending.  ``calendar`` counts working
    days overdue (the campaign calendar, :func:`~jianyi_flow.domain.calendar.default_calendar`, by
    default).  ``page`` is passed to :func:`~jianyi_flow.storage.base.iter_events`: stores with a bulk
    ``export_events`` (MemoryStore, SqlStore) read a page of suggestions at a time; a store
    without one is read one history per suggestion.

    ``unmasked=True`` shows proposers' names, phones and addresses in the excerpt items; it
    needs an ``actor`` of role :attr:`~jianyi_flow.domain.model.Role.COLLECTION_OFFICE`, else
    :class:`~jianyi_flow.errors.PermissionDenied` is raised before anything is read.
    """
    now = require_aware(now, "now")
    if unmasked and (actor is None or actor.role is not Role.COLLECTION_OFFICE):
        raise PermissionDenied(
            str(actor) if actor is not None else "anonymous", "build_report(unmasked=True)",
            "only the collection office (区征集办) may see proposers' personal data",
        )
    if not isinstance(page, int) or isinstance(page, bool) or page < 1:
        raise ValidationError("page", "must be a whole number, at least 1")
    scan = _Scan(campaign, now, calendar or default_calendar())
    with _gc_paused():
        scan.run(_events(store, page))
    b = _Builder(campaign, scan, masked=not unmasked)
    on_time = sum(scan.step_on_time.values())
    judged = on_time + sum(scan.step_late.values())
    timing = b.unit_rows()
    quota = b.quota_rows()
    adopted = scan.by_outcome[Outcome.ADOPTED.value] + scan.by_outcome[Outcome.PARTIALLY_ADOPTED.value]
    decided = adopted + scan.by_outcome[Outcome.DECLINED.value]
    return CampaignReport(
        campaign=campaign.code,
        theme=campaign.theme,
        generated_at=now,
        masked=not unmasked,
        viewer=None if not unmasked or actor is None else str(actor),
        suggestions=scan.suggestions,
        events=len(scan.digest_rows),
        history_digest=history_digest(scan.digest_rows),
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
        on_time_rate=_rate(on_time, judged),
        on_time_by_step=b.step_rows(),
        on_time_by_unit=timing,
        overdue=b.overdue_rows(now, scan.calendar),
        quota=quota,
        satisfaction=b.satisfaction(),
        extensions=Extensions(
            count=sum(scan.extensions_by_step.values()),
            by_step={step.value: scan.extensions_by_step[step.value] for step in Step},
            by_unit=b.count_rows(scan.extensions_by_unit, campaign.unit_codes, campaign.unit, ""),
        ),
        reopens=scan.reopens,
        summary_phase=b.summary_phase(),
        highlights=b.highlights(),
        organisation_award=b.award(quota, timing),
    )


def _events(store: Store, page: int) -> Iterator[Event]:
    return iter_events(store, None, page)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while the log is read.

    The scan allocates a tuple per event and creates no reference cycles, but the
    allocations trigger full collections, each of which walks every object in the process
    — with a MemoryStore of 800,000 events that is seconds per report spent finding no
    garbage.  Reference counting still frees everything; the collector resumes afterwards
    (it is process-wide, so other threads go without it for the few seconds of the scan).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
