"""A campaign (专题征集活动): its areas, reference topics, phases, units and rules.

A district notice defines a campaign once: what it is about (areas and reference topics),
when each part of the work happens (phases), who takes part (towns, streets and
departments) and what each of them owes (the recommendation quota).  :class:`Campaign`
holds exactly that, immutable and checked for consistency when it is built, so a typo in
a preset fails at load time instead of as a wrong deadline or a lost suggestion.

Two things connect a campaign to the engine:

* :func:`~jianyi_flow.service.campaign_flow.make_flow` gives :class:`~jianyi_flow.Flow` the
  campaign code, the known codes it validates inputs against, and a phase guard.
* :class:`~jianyi_flow.service.campaign_flow.PhaseGuard` refuses a command outside the
  phases its :class:`PhaseRule` allows,
  judged on the Asia/Shanghai day of the injected clock.  Commands the table does not
  name, and the handling commands it lists as always open, are never refused: a
  suggestion received during the campaign is handled to the end even after it closes.

Dates are inclusive Asia/Shanghai calendar days, as the notice writes them
("2024年8月1日-2024年8月20日" includes both days).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any, TypeVar

import attrs

from ..errors import NotFound, PhaseClosed, PhaseWindow, ValidationError
from . import validation as v
from .clock import local_date
from .deadlines import DEFAULT_POLICY, CalendarDays, DeadlinePolicy, Step, StepRule, WorkingDays

__all__ = [
    "DEFAULT_OFFICE_HOURS",
    "HANDLING_COMMANDS",
    "SUMMARY_COMMANDS",
    "Area",
    "Campaign",
    "Contact",
    "Notice",
    "Phase",
    "PhaseRule",
    "RecommendationRule",
    "Topic",
    "Unit",
    "UnitKind",
]

T = TypeVar("T")

HANDLING_COMMANDS: tuple[str, ...] = (
    "register",
    "transfer",
    "research",
    "decide",
    "reply",
    "rate",
    "object_transfer",
    "accept_objection",
    "reject_objection",
    "withdraw",
    "reopen",
    "request_extension",
    "approve_extension",
    "reject_extension",
    "not_accept",
    "close_unrated",
    "flag_overdue",
    "retime",
)
"""Commands that handle a suggestion already received.  A phase never closes them: the
notice asks units to research, decide and reply to every suggestion (四（二）3), and that
duty does not end with the campaign."""

SUMMARY_COMMANDS: tuple[str, ...] = (
    "report_upward",
    "forward_to_city",
    "evaluate",
    "nominate_reward",
    "record_adoption",
    "mark_typical",
)
"""Summary-phase (总结运用阶段, notice 四（三）) commands: report to the Party committee and
government, forward to the city, evaluate, nominate for reward, record adoption, mark
typical cases.  Flow gains them later; the phase table already restricts them."""

_NAME_MAX = 100
_TITLE_MAX = 300
_SOURCE_MAX = 500


class UnitKind(enum.StrEnum):
    """What a participating unit is.  Streets and towns are the district's 镇街."""

    STREET = "street"  # 街道
    TOWN = "town"  # 镇
    DEPARTMENT = "department"  # 区级部门


@attrs.frozen
class Area:
    """One of the campaign's areas (方面), e.g. ``A1`` 产业发展.  Every suggestion names one."""

    code: str
    name: str


@attrs.frozen
class Topic:
    """A reference topic (参考议题) under an area, numbered as in the notice's attachment."""

    code: str
    area: str
    """The code of the :class:`Area` the topic is listed under."""
    number: int
    title: str


@attrs.frozen
class Phase:
    """A phase (阶段) of the campaign: an inclusive window of Asia/Shanghai days."""

    code: str
    name_zh: str
    start: dt.date
    end: dt.date
    source: str = ""
    """Where the notice sets this window (section and paragraph)."""

    def contains(self, day: dt.date) -> bool:
        """Whether ``day`` (an Asia/Shanghai calendar day) falls in the window, ends included."""
        return self.start <= _plain_date("day", day) <= self.end

    @property
    def window(self) -> str:
        """``launch 启动阶段 2024-08-01..2024-08-20``: how errors and docs name the window."""
        return f"{self.code} {self.name_zh} {self.start.isoformat()}..{self.end.isoformat()}"


def _to_kind(field: str, value: object) -> UnitKind:
    if not isinstance(value, str) or value not in {k.value for k in UnitKind}:
        allowed = [k.value for k in UnitKind]
        raise ValidationError(field, f"must be one of {allowed}, not {value!r}", code="not_one_of",
                              details={"allowed": allowed})
    return UnitKind(value)


def _unit_kind(value: UnitKind | str) -> UnitKind:
    return _to_kind("units.kind", value)


@attrs.frozen
class Unit:
    """A participating unit: a street, a town or a district department.

    ``editable`` marks rows that are illustrative configuration rather than fact: the
    notice addresses "区级各相关部门" without listing them, so a deployment replaces those
    rows with its own list (``attrs.evolve(campaign, units=...)`` re-checks the campaign).
    ``organiser`` marks the units that run the campaign and receive suggestions rather
    than recommend them (区委社会工作部, 区信访办); they owe no quota.
    """

    code: str
    name: str
    kind: UnitKind = attrs.field(converter=_unit_kind)
    source: str
    editable: bool = False
    organiser: bool = False


def _freeze_mapping(value: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(value))


def _freeze_kinds(value: Iterable[UnitKind | str]) -> frozenset[UnitKind]:
    return frozenset(_to_kind("recommendation.kinds", k) for k in value)


@attrs.frozen
class RecommendationRule:
    """What each unit must recommend (推荐上报) during the campaign.

    The notice (四（二）2) says 镇街、部门上报均应不少于2篇: every town, street and
    department recommends at least ``minimum`` suggestions, counted up to the last day of
    ``deadline_phase`` (collection ends with the implementation phase).  Organiser units
    are exempt: they receive what the others send.  ``recommended_via`` says which unit
    recommends on behalf of a kind of institution that is not itself a participating
    unit: 学校 through the education commission, 医院 through the health commission.
    """

    minimum: int = 2
    kinds: frozenset[UnitKind] = attrs.field(default=frozenset(UnitKind), converter=_freeze_kinds)
    recommended_via: Mapping[str, str] = attrs.field(factory=dict, converter=_freeze_mapping, hash=False)
    """Institution kind (``"school"``, ``"hospital"``) → code of the unit that recommends for it."""
    deadline_phase: str = "implementation"
    source: str = ""

    def applies_to(self, unit: Unit) -> bool:
        """Whether ``unit`` owes recommendations: a street, town or department, not an organiser."""
        return unit.kind in self.kinds and not unit.organiser

    def required_for(self, unit: Unit) -> int:
        """How many suggestions ``unit`` must recommend (0 when the rule does not apply)."""
        return self.minimum if self.applies_to(unit) else 0


@attrs.frozen
class PhaseRule:
    """Which phases a command is open in.

    ``phases`` lists phase codes; ``None`` means the command is never closed by phase
    (the handling commands).  A command with no rule at all is also unrestricted, so new
    commands stay usable until someone decides they belong to a phase.
    """

    command: str
    phases: tuple[str, ...] | None
    source: str = ""

    @property
    def restricted(self) -> bool:
        return self.phases is not None


@attrs.frozen
class Contact:
    """The notice's contact line (联系人/联系电话/电子邮箱)."""

    name: str
    phone: str
    email: str


def _notes(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@attrs.frozen
class Notice:
    """Where the campaign comes from: the notice's title, issuers and date."""

    title: str
    issuers: tuple[str, ...] = attrs.field(converter=_notes)
    issued_on: dt.date
    contact: Contact | None = None
    published: str | None = None
    """The notice's publication mark, e.g. 此件公开发布."""


def _areas(value: Iterable[Area]) -> tuple[Area, ...]:
    return tuple(value)


def _topics(value: Iterable[Topic]) -> tuple[Topic, ...]:
    return tuple(value)


def _phases(value: Iterable[Phase]) -> tuple[Phase, ...]:
    return tuple(value)


def _units(value: Iterable[Unit]) -> tuple[Unit, ...]:
    return tuple(value)


def _rules(value: Iterable[PhaseRule]) -> tuple[PhaseRule, ...]:
    return tuple(value)


DEFAULT_OFFICE_HOURS: tuple[tuple[dt.time, dt.time], ...] = (
    (dt.time(9, 0), dt.time(12, 0)),
    (dt.time(14, 0), dt.time(17, 30)),
)
"""Office hours when a campaign file names none: 09:00–12:00 and 14:00–17:30 (a common
schedule of district offices; configuration, not a rule of the notice)."""


def _office_hours_tuple(value: Iterable[Iterable[dt.time]]) -> tuple[tuple[dt.time, dt.time], ...]:
    return tuple((start, end) for start, end in value)


def _freeze_routing(value: Mapping[str, Iterable[str]]) -> Mapping[str, tuple[str, ...]]:
    return MappingProxyType({area: tuple(units) for area, units in value.items()})


@attrs.frozen
class Campaign:
    """A whole campaign, checked for consistency when built.

    Construction raises :class:`~jianyi_flow.errors.ValidationError` naming the field when
    codes repeat or are not codes Flow would accept, a topic names an unknown area, phases
    are out of order or overlap, or a rule names an unknown phase or unit.  Sequences keep
    their given order (the notice's order), which reports and docs follow.
    """

    code: str
    theme: str
    areas: tuple[Area, ...] = attrs.field(converter=_areas)
    topics: tuple[Topic, ...] = attrs.field(converter=_topics)
    phases: tuple[Phase, ...] = attrs.field(converter=_phases)
    units: tuple[Unit, ...] = attrs.field(converter=_units)
    recommendation: RecommendationRule = attrs.field(factory=RecommendationRule)
    phase_rules: tuple[PhaseRule, ...] = attrs.field(factory=tuple, converter=_rules)
    notice: Notice | None = None
    notes: tuple[str, ...] = attrs.field(factory=tuple, converter=_notes)
    """Remarks on the source, e.g. where the notice contradicts itself and what was chosen."""
    office_unit: str | None = None
    """The unit that runs the collection office (区征集办); the office's staff act for it."""
    office_hours: tuple[tuple[dt.time, dt.time], ...] = attrs.field(
        default=DEFAULT_OFFICE_HOURS, converter=_office_hours_tuple
    )
    """The office's working hours on a working day, Asia/Shanghai local times (start, end)."""
    routing: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict, converter=_freeze_routing, hash=False)
    """Area code → the units that usually handle its suggestions (where the office transfers them)."""
    deadlines: DeadlinePolicy | None = None
    """The campaign's deadline policy (per-step periods with their sources); ``None``: the default."""

    _area_index: Mapping[str, Area] = attrs.field(init=False, repr=False, eq=False, hash=False)
    _topic_index: Mapping[str, Topic] = attrs.field(init=False, repr=False, eq=False, hash=False)
    _phase_index: Mapping[str, Phase] = attrs.field(init=False, repr=False, eq=False, hash=False)
    _unit_index: Mapping[str, Unit] = attrs.field(init=False, repr=False, eq=False, hash=False)
    _rule_index: Mapping[str, PhaseRule] = attrs.field(init=False, repr=False, eq=False, hash=False)
    _topics_by_area: Mapping[str, tuple[Topic, ...]] = attrs.field(init=False, repr=False, eq=False, hash=False)
    _windows_by_command: Mapping[str, tuple[tuple[dt.date, dt.date], ...]] = attrs.field(
        init=False, repr=False, eq=False, hash=False
    )
    """The (first day, last day) of each phase a restricted command may run in (is_open runs per command)."""

    @_area_index.default
    def _index_areas(self) -> Mapping[str, Area]:
        return _keyed(self.areas, lambda a: a.code)

    @_topic_index.default
    def _index_topics(self) -> Mapping[str, Topic]:
        return _keyed(self.topics, lambda t: t.code)

    @_phase_index.default
    def _index_phases(self) -> Mapping[str, Phase]:
        return _keyed(self.phases, lambda p: p.code)

    @_unit_index.default
    def _index_units(self) -> Mapping[str, Unit]:
        return _keyed(self.units, lambda u: u.code)

    @_rule_index.default
    def _index_rules(self) -> Mapping[str, PhaseRule]:
        return _keyed(self.phase_rules, lambda r: r.command)

    @_topics_by_area.default
    def _index_topics_by_area(self) -> Mapping[str, tuple[Topic, ...]]:
        return MappingProxyType({code: tuple(t for t in self.topics if t.area == code) for code in self._area_index})

    @_windows_by_command.default
    def _index_windows(self) -> Mapping[str, tuple[tuple[dt.date, dt.date], ...]]:
        windows: dict[str, tuple[tuple[dt.date, dt.date], ...]] = {}
        for command, r in self._rule_index.items():
            if r.phases is not None:
                found = [self._phase_index[c] for c in r.phases if isinstance(c, str) and c in self._phase_index]
                windows[command] = tuple((p.start, p.end) for p in found)
        return MappingProxyType(windows)

    def __attrs_post_init__(self) -> None:
        v.code("code", self.code)
        v.required_text("theme", self.theme, max_len=_TITLE_MAX)
        areas = _index("areas", self.areas, lambda a: a.code)
        if not areas:
            raise ValidationError("areas", "a campaign needs at least one area", code="required")
        for a in self.areas:
            v.required_text(f"areas[{a.code}].name", a.name, max_len=_NAME_MAX)
        _index("topics", self.topics, lambda t: t.code)
        numbers: set[int] = set()
        for t in self.topics:
            if t.area not in areas:
                raise ValidationError(f"topics[{t.code}].area", f"unknown area {t.area!r}", code="unknown_code",
                                      details={"value": t.area})
            if not isinstance(t.number, int) or isinstance(t.number, bool) or t.number < 1 or t.number in numbers:
                if t.number in numbers:
                    rule_code = "duplicate"
                elif isinstance(t.number, int) and not isinstance(t.number, bool):
                    rule_code = "too_small"
                else:
                    rule_code = "not_an_integer"
                raise ValidationError(f"topics[{t.code}].number", "must be a unique whole number, at least 1",
                                      code=rule_code, details={"value": str(t.number), "min": 1})
            numbers.add(t.number)
            v.required_text(f"topics[{t.code}].title", t.title, max_len=_TITLE_MAX)
        phases = _index("phases", self.phases, lambda p: p.code)
        previous: Phase | None = None
        for p in self.phases:
            v.required_text(f"phases[{p.code}].name_zh", p.name_zh, max_len=_NAME_MAX)
            _plain_date(f"phases[{p.code}].start", p.start)
            _plain_date(f"phases[{p.code}].end", p.end)
            if p.end < p.start:
                raise ValidationError(f"phases[{p.code}]", f"ends ({p.end}) before it starts ({p.start})",
                                      code="out_of_order", details={"start": p.start, "end": p.end})
            if previous is not None and p.start <= previous.end:
                raise ValidationError(
                    "phases",
                    f"must be in date order without overlap: {p.window} starts on or before {previous.window} ends",
                    code="out_of_order", details={"phase": p.code, "start": p.start, "previous": previous.code,
                                                  "previous_end": previous.end},
                )
            previous = p
        units = _index("units", self.units, lambda u: u.code)
        for u in self.units:
            v.required_text(f"units[{u.code}].name", u.name, max_len=_NAME_MAX)
            v.text(f"units[{u.code}].source", u.source, max_len=_SOURCE_MAX, required=False)
        rule = self.recommendation
        v.whole_number("recommendation.minimum", rule.minimum, low=0)
        if rule.deadline_phase not in phases:
            raise ValidationError("recommendation.deadline_phase", f"unknown phase {rule.deadline_phase!r}",
                                  code="unknown_code", details={"value": rule.deadline_phase})
        for institution, unit in rule.recommended_via.items():
            if unit not in units:
                raise ValidationError(f"recommendation.recommended_via[{institution}]", f"unknown unit {unit!r}",
                                      code="unknown_code", details={"value": unit})
        rules: dict[str, PhaseRule] = {}
        for r in self.phase_rules:
            v.required_text("phase_rules.command", r.command, max_len=_NAME_MAX)
            if r.command in rules:
                raise ValidationError("phase_rules", f"command {r.command!r} has more than one rule",
                                      code="duplicate", details={"value": r.command})
            if r.phases is not None:
                if not r.phases:
                    raise ValidationError(
                        f"phase_rules[{r.command}].phases", "must name at least one phase, or be None (always open)",
                        code="required",
                    )
                for code in r.phases:
                    if not isinstance(code, str) or code not in phases:
                        raise ValidationError(f"phase_rules[{r.command}].phases", f"unknown phase {code!r}",
                                              code="unknown_code", details={"value": code})
            rules[r.command] = r
        _check_settings(self, areas, units)

    # --- lookups ---------------------------------------------------------------------------
    def area(self, code: str) -> Area:
        """The area with that code; :class:`~jianyi_flow.errors.NotFound` if none."""
        return _lookup("area", self._area_index, code)

    def topic(self, code: str) -> Topic:
        return _lookup("topic", self._topic_index, code)

    def unit(self, code: str) -> Unit:
        return _lookup("unit", self._unit_index, code)

    def phase(self, code: str) -> Phase:
        return _lookup("phase", self._phase_index, code)

    def topics_of(self, area: str) -> tuple[Topic, ...]:
        """The topics listed under ``area``, in the notice's order."""
        return _lookup("area", self._topics_by_area, area)

    @property
    def area_codes(self) -> tuple[str, ...]:
        return tuple(self._area_index)

    @property
    def topic_codes(self) -> tuple[str, ...]:
        return tuple(self._topic_index)

    @property
    def unit_codes(self) -> tuple[str, ...]:
        return tuple(self._unit_index)

    @property
    def phase_codes(self) -> tuple[str, ...]:
        return tuple(self._phase_index)

    @property
    def organisers(self) -> tuple[Unit, ...]:
        return tuple(u for u in self.units if u.organiser)

    # --- time ------------------------------------------------------------------------------
    def phase_on(self, day: dt.date) -> Phase | None:
        """The phase that ``day`` (an Asia/Shanghai day) falls in, or ``None`` outside every phase."""
        _plain_date("day", day)
        for p in self.phases:
            if p.contains(day):
                return p
        return None

    def phase_at(self, when: dt.datetime) -> Phase | None:
        """The phase at the instant ``when`` (aware), judged on its Asia/Shanghai day.

        2024-07-31T16:30Z is 2024-08-01 00:30 in Shanghai: already the launch phase.
        """
        return self.phase_on(local_date(when))

    def phase_rule(self, command: str) -> PhaseRule | None:
        """The rule for ``command``, or ``None`` if the table does not name it (unrestricted)."""
        return self._rule_index.get(command)

    def is_open(self, command: str, when: dt.datetime) -> bool:
        """Whether a phase rule lets ``command`` run at ``when`` (see ``PhaseGuard``)."""
        day = local_date(when)  # also refuses a naive datetime, restricted command or not
        windows = self._windows_by_command.get(command)
        if windows is None:
            return True
        for start, end in windows:
            if start <= day <= end:
                return True
        return False

    def windows(self, command: str) -> str:
        """The windows ``command`` is open in, as PhaseClosed reports them ("always" if unrestricted)."""
        rule = self.phase_rule(command)
        if rule is None or rule.phases is None:
            return "always"
        return ", ".join(self.phase(code).window for code in rule.phases)

    def phase_windows(self, command: str) -> tuple[PhaseWindow, ...]:
        """The phases ``command`` is open in, as structured data (empty if unrestricted)."""
        rule = self.phase_rule(command)
        if rule is None or rule.phases is None:
            return ()
        return tuple(PhaseWindow(p.code, p.name_zh, p.start, p.end) for p in map(self.phase, rule.phases))

    def phase_closed(self, command: str, when: dt.datetime) -> PhaseClosed:
        """The :class:`~jianyi_flow.errors.PhaseClosed` for ``command`` refused at ``when``.

        It carries the day (Asia/Shanghai), the windows as text and as :class:`PhaseWindow`
        records; :class:`~jianyi_flow.service.campaign_flow.PhaseGuard` raises it.
        """
        return PhaseClosed(command, local_date(when), self.windows(command), phases=self.phase_windows(command))

    # --- loading ---------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Campaign:
        """Build a campaign from JSON-ready data (the preset format; see docs/campaign.md).

        Unknown keys are refused, so a misspelt key in an edited configuration is an error
        rather than a silently ignored setting.
        """
        d = _Reader("campaign", data)
        d.only(
            "code", "theme", "notice", "notes", "areas", "topics", "phases", "units", "recommendation", "phase_rules",
            "office_unit", "office_hours", "routing", "deadlines",
        )
        return cls(
            code=d.text("code"),
            theme=d.text("theme"),
            areas=[_area(r) for r in d.records("areas")],
            topics=[_topic(r) for r in d.records("topics")],
            phases=[_phase(r) for r in d.records("phases")],
            units=[_unit(r) for r in d.records("units")],
            recommendation=_recommendation(d.record("recommendation")),
            phase_rules=[_phase_rule(r) for r in d.records("phase_rules", required=False)],
            notice=_notice(d.record("notice")) if "notice" in data else None,
            notes=d.texts("notes", required=False),
            office_unit=d.opt_text("office_unit"),
            office_hours=_read_office_hours(d) if "office_hours" in data else DEFAULT_OFFICE_HOURS,
            routing=_read_routing(d),
            deadlines=_read_deadlines(d) if "deadlines" in data else None,
        )


# --- helpers -----------------------------------------------------------------------------


def _plain_date(field: str, value: object) -> dt.date:
    # datetime is a date subclass; accepting one would compare an instant with a calendar day.
    if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
        raise ValidationError(field, "must be a date (an Asia/Shanghai calendar day), not a datetime",
                              code="not_a_date")
    return value


def _keyed(items: Iterable[T], key: Callable[[T], object]) -> Mapping[str, T]:
    """``items`` by ``key``, for the lookups of a :class:`Campaign` (built before its checks run).

    Items whose key is not text are left out, and so are unknown phases in a rule's
    windows: the checks in ``__attrs_post_init__`` then refuse the campaign, naming the field.
    """
    found: dict[str, T] = {}
    for item in items:
        code = key(item)
        if isinstance(code, str):
            found[code] = item
    return MappingProxyType(found)


def _index(field: str, items: Iterable[T], key: Callable[[T], str]) -> dict[str, T]:
    found: dict[str, T] = {}
    for item in items:
        code = key(item)
        v.code(f"{field}.code", code)
        if code in found:
            raise ValidationError(field, f"code {code!r} is used more than once", code="duplicate",
                                  details={"value": code})
        found[code] = item
    return found


def _lookup(what: str, index: Mapping[str, T], code: str) -> T:
    try:
        return index[code]
    except KeyError:
        raise NotFound(what, code) from None


class _Reader:
    """Reads one JSON object, naming the path of anything missing or mistyped."""

    def __init__(self, path: str, data: object) -> None:
        if not isinstance(data, Mapping):
            raise ValidationError(path, "must be an object", code="wrong_type")
        self.path = path
        self.data: Mapping[str, Any] = data

    def only(self, *keys: str) -> None:
        unknown = sorted(set(self.data) - set(keys))
        if unknown:
            raise ValidationError(self.path, f"unknown keys {unknown}; expected some of {sorted(keys)}",
                                  code="unknown_key", details={"keys": unknown, "allowed": sorted(keys)})

    def get(self, key: str, required: bool = True) -> Any:
        if key not in self.data:
            if required:
                raise ValidationError(f"{self.path}.{key}", "is required", code="required")
            return None
        return self.data[key]

    def text(self, key: str, required: bool = True) -> str:
        value = self.get(key, required)
        if value is None and not required:
            return ""
        if not isinstance(value, str):
            raise ValidationError(f"{self.path}.{key}", "must be text", code="not_text")
        return value

    def opt_text(self, key: str) -> str | None:
        value = self.get(key, required=False)
        if value is not None and not isinstance(value, str):
            raise ValidationError(f"{self.path}.{key}", "must be text", code="not_text")
        return value

    def integer(self, key: str) -> int:
        value = self.get(key)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValidationError(f"{self.path}.{key}", "must be a whole number", code="not_an_integer")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.get(key, required=False)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise ValidationError(f"{self.path}.{key}", "must be true or false", code="not_a_bool")
        return value

    def day(self, key: str) -> dt.date:
        text = self.text(key)
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            raise ValidationError(f"{self.path}.{key}", "must be an ISO date like 2024-08-01",
                                  code="not_a_date") from None

    def texts(self, key: str, required: bool = True) -> tuple[str, ...]:
        value = self.get(key, required)
        if value is None and not required:
            return ()
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            raise ValidationError(f"{self.path}.{key}", "must be a list of texts", code="wrong_type")
        return tuple(value)

    def record(self, key: str) -> _Reader:
        return _Reader(f"{self.path}.{key}", self.get(key))

    def records(self, key: str, required: bool = True) -> list[_Reader]:
        value = self.get(key, required)
        if value is None and not required:
            return []
        if not isinstance(value, list):
            raise ValidationError(f"{self.path}.{key}", "must be a list", code="wrong_type")
        return [_Reader(f"{self.path}.{key}[{i}]", item) for i, item in enumerate(value)]


def _area(r: _Reader) -> Area:
    r.only("code", "name")
    return Area(code=r.text("code"), name=r.text("name"))


def _topic(r: _Reader) -> Topic:
    r.only("code", "area", "number", "title")
    return Topic(code=r.text("code"), area=r.text("area"), number=r.integer("number"), title=r.text("title"))


def _phase(r: _Reader) -> Phase:
    r.only("code", "name_zh", "start", "end", "source")
    return Phase(
        code=r.text("code"),
        name_zh=r.text("name_zh"),
        start=r.day("start"),
        end=r.day("end"),
        source=r.text("source", required=False),
    )


def _unit(r: _Reader) -> Unit:
    r.only("code", "name", "kind", "source", "editable", "organiser")
    return Unit(
        code=r.text("code"),
        name=r.text("name"),
        kind=_to_kind(f"{r.path}.kind", r.text("kind")),
        source=r.text("source", required=False),
        editable=r.flag("editable", False),
        organiser=r.flag("organiser", False),
    )


def _recommendation(r: _Reader) -> RecommendationRule:
    r.only("minimum", "kinds", "recommended_via", "deadline_phase", "source")
    unit_kinds = frozenset(_to_kind(f"{r.path}.kinds", k) for k in r.texts("kinds"))
    via = r.get("recommended_via", required=False) or {}
    if not isinstance(via, Mapping) or not all(isinstance(k, str) and isinstance(x, str) for k, x in via.items()):
        raise ValidationError(f"{r.path}.recommended_via", "must map institution kinds to unit codes",
                              code="wrong_type")
    return RecommendationRule(
        minimum=r.integer("minimum"),
        kinds=unit_kinds,
        recommended_via=via,
        deadline_phase=r.text("deadline_phase"),
        source=r.text("source", required=False),
    )


def _phase_rule(r: _Reader) -> PhaseRule:
    r.only("command", "phases", "source")
    phases = None if r.get("phases") is None else r.texts("phases")
    return PhaseRule(command=r.text("command"), phases=phases, source=r.text("source", required=False))


def _notice(r: _Reader) -> Notice:
    r.only("title", "issuers", "issued_on", "contact", "published")
    contact = None
    if r.get("contact", required=False) is not None:
        c = r.record("contact")
        c.only("name", "phone", "email")
        contact = Contact(name=c.text("name"), phone=c.text("phone"), email=c.text("email"))
    return Notice(
        title=r.text("title"),
        issuers=r.texts("issuers"),
        issued_on=r.day("issued_on"),
        contact=contact,
        published=r.opt_text("published"),
    )


# --- the office, its hours, routing and deadlines --------------------------------------------


def _check_settings(c: Campaign, areas: Mapping[str, Area], units: Mapping[str, Unit]) -> None:
    """Checks of the fields a campaign file adds for running the campaign (office, hours, routing, deadlines)."""
    if c.office_unit is not None and c.office_unit not in units:
        raise ValidationError("office_unit", f"unknown unit {c.office_unit!r}", code="unknown_code",
                              details={"value": c.office_unit})
    previous_end: dt.time | None = None
    if not c.office_hours:
        raise ValidationError("office_hours", "name at least one period, e.g. 09:00-12:00", code="required")
    for start, end in c.office_hours:
        if not all(isinstance(t, dt.time) and t.tzinfo is None for t in (start, end)):
            raise ValidationError("office_hours", "periods are (start, end) local times without a zone",
                                  code="wrong_type")
        if not start < end or (previous_end is not None and start < previous_end):
            raise ValidationError("office_hours", "periods must be in order, each ending after it starts, "
                                                  "without overlap", code="out_of_order",
                                  details={"start": start, "end": end})
        previous_end = end
    for area, handlers in c.routing.items():
        if area not in areas:
            raise ValidationError(f"routing[{area}]", f"unknown area {area!r}", code="unknown_code",
                                  details={"value": area})
        unknown = [u for u in handlers if u not in units]
        if unknown:
            raise ValidationError(f"routing[{area}]", f"must list known units (unknown: {unknown})",
                                  code="unknown_code", details={"value": unknown[0]})
        if not handlers:
            raise ValidationError(f"routing[{area}]", "must list known units, at least one", code="required")
        if len(set(handlers)) != len(handlers):
            twice = next(u for u in handlers if handlers.count(u) > 1)
            raise ValidationError(f"routing[{area}]", f"must list known units once each ({twice!r} twice)",
                                  code="duplicate", details={"value": twice})
    if c.deadlines is not None and not isinstance(c.deadlines, DeadlinePolicy):
        raise ValidationError("deadlines", "must be a DeadlinePolicy", code="wrong_type")


def _clock_time(field: str, value: object) -> dt.time:
    try:
        if isinstance(value, str):
            return dt.time.fromisoformat(value)
    except ValueError:
        pass
    raise ValidationError(field, f"must be a local time like 09:00, not {value!r}", code="wrong_type",
                          details={"value": str(value)})


def _read_office_hours(d: _Reader) -> tuple[tuple[dt.time, dt.time], ...]:
    periods = d.get("office_hours")
    path = f"{d.path}.office_hours"
    if not isinstance(periods, list) or not all(isinstance(p, list) and len(p) == 2 for p in periods):
        raise ValidationError(path, 'must be a list of ["HH:MM", "HH:MM"] periods', code="wrong_type")
    return tuple((_clock_time(path, start), _clock_time(path, end)) for start, end in periods)


def _read_routing(d: _Reader) -> dict[str, tuple[str, ...]]:
    routing = d.get("routing", required=False) or {}
    if not isinstance(routing, Mapping) or not all(
        isinstance(area, str) and isinstance(units, list) and all(isinstance(u, str) for u in units)
        for area, units in routing.items()
    ):
        raise ValidationError(f"{d.path}.routing", "must map area codes to lists of unit codes", code="wrong_type")
    return {area: tuple(units) for area, units in routing.items()}


def _read_deadlines(d: _Reader) -> DeadlinePolicy:
    """Per-step periods: ``{"step", "calendar_days" | "working_days", "source"}``; unnamed steps keep the default."""
    policy = DEFAULT_POLICY
    named: set[str] = set()
    steps = [s.value for s in Step]
    for r in d.records("deadlines"):
        r.only("step", "calendar_days", "working_days", "source")
        step = r.text("step")
        if step not in steps:
            raise ValidationError(f"{r.path}.step", f"must be one of {steps}", code="unknown_code",
                                  details={"value": step, "allowed": steps})
        if step in named:
            raise ValidationError(f"{r.path}.step", f"names {step!r} again: each step once", code="duplicate",
                                  details={"value": step})
        named.add(step)
        kinds = [k for k in ("calendar_days", "working_days") if k in r.data]
        if len(kinds) != 1:
            raise ValidationError(r.path, "give exactly one of calendar_days and working_days", code="wrong_type")
        n = r.integer(kinds[0])
        duration = CalendarDays(n) if kinds[0] == "calendar_days" else WorkingDays(n)
        rule = StepRule(Step(step), duration, r.text("source"))
        policy = policy.with_step(rule.step, rule.duration, rule.source)
    return policy
