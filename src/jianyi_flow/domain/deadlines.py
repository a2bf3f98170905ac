"""Statutory deadlines: how long each step of handling a suggestion may take.

Two kinds of duration exist and are never interchangeable:

* :class:`CalendarDays` — counted as the Civil Code (民法典) counts periods: the start
  day is not counted (Art. 201), and if the last day is a statutory holiday or rest day
  the period ends on the day after that holiday ends (Art. 203), i.e. on the next
  working day of the business calendar.
* :class:`WorkingDays` — the ``n``-th working day after the start day (工作日), where
  working days include the weekend days declared working days by the State Council's
  调休 arrangement.

Days are Asia/Shanghai days, and a deadline is the *end* of its last day (Art. 203:
期间的最后一日的截止时间为二十四时), returned as an aware datetime.

A deadline counted over a provisional day of the calendar (a year without an official
holiday schedule, see :mod:`jianyi_flow.domain.calendar`) is itself provisional: the
``*_detail`` functions return a :class:`Due` that says so, where :func:`due`,
:meth:`DeadlinePolicy.due_for` and :func:`extend` return the bare instant.

The default periods per step are in :data:`DEFAULT_POLICY`; docs/calendar.md explains
where each comes from and which ones are our choice by analogy.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta

import attrs

from ..errors import ValidationError
from .calendar import BusinessCalendar
from .clock import end_of_local_day, local_date, require_aware
from .model import Step

__all__ = [
    "DEFAULT_POLICY",
    "MAX_EXTENSION",
    "CalendarDays",
    "DeadlinePolicy",
    "Due",
    "Duration",
    "Step",
    "StepRule",
    "WorkingDays",
    "due",
    "due_detail",
    "extend",
    "extend_detail",
]


def _check_days(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError("duration", f"{type(instance).__name__} needs an integer >= 0, got {value!r}")


@attrs.frozen
class CalendarDays:
    """``n`` calendar days (日), counted per 民法典 Art. 201-203; see :func:`due`."""

    n: int = attrs.field(validator=_check_days)

    def __str__(self) -> str:
        return f"{self.n} calendar day{'s' if self.n != 1 else ''}"

    @property
    def zh(self) -> str:
        """The duration as the regulations write it, e.g. ``15日``."""
        return f"{self.n}日"


@attrs.frozen
class WorkingDays:
    """``n`` working days (工作日) per the business calendar; see :func:`due`."""

    n: int = attrs.field(validator=_check_days)

    def __str__(self) -> str:
        return f"{self.n} working day{'s' if self.n != 1 else ''}"

    @property
    def zh(self) -> str:
        """The duration as the regulations write it, e.g. ``5个工作日``."""
        return f"{self.n}个工作日"


Duration = CalendarDays | WorkingDays
"""A period of either kind.  There is deliberately no conversion between the two."""


def _deadline_day(start_day: date, duration: Duration, calendar: BusinessCalendar) -> date:
    if isinstance(duration, CalendarDays):
        # Art. 201: the start day is not counted, so day n is start + n.  Art. 203: a last day
        # that is a holiday or rest day moves to the day after the holiday ends, which is the
        # next working day (with 调休 that may be a Saturday declared a working day).
        return calendar.next_working_day(start_day + timedelta(days=duration.n))
    if isinstance(duration, WorkingDays):
        return calendar.add_working_days(start_day, duration.n)
    raise ValidationError("duration", f"must be CalendarDays or WorkingDays, got {duration!r}")


def due(start: datetime, duration: Duration, calendar: BusinessCalendar) -> datetime:
    """The deadline of a period of ``duration`` starting at the aware instant ``start``.

    ``start`` is converted to its Asia/Shanghai day first (an event at 2024-09-30T17:00Z
    happened on 1 October).  The result is the last microsecond of the deadline day in
    Asia/Shanghai.  ``CalendarDays(0)`` and ``WorkingDays(0)`` mean "by the end of the start
    day, or of the next working day if the start day is not one".

    Raises :class:`ValidationError` for a naive ``start`` or a duration of another type, and
    :class:`~jianyi_flow.errors.CalendarNotCovered` when the period touches a year the
    calendar has no schedule for.
    """
    start_day = local_date(require_aware(start, "start"))
    return end_of_local_day(_deadline_day(start_day, duration, calendar))


def _check_due_at(instance: object, attribute: attrs.Attribute[datetime], value: datetime) -> None:
    require_aware(value, "at")


def _check_flag(instance: object, attribute: attrs.Attribute[bool], value: bool) -> None:
    if not isinstance(value, bool):
        raise ValidationError("provisional", f"must be True or False, got {value!r}")


@attrs.frozen
class Due:
    """A deadline and whether it rests on provisional days.

    ``provisional`` is true when any day from the start day to the deadline day (both
    included) is provisional in the calendar it was counted on: the official schedule, once
    loaded, may move it.  Compare ``at`` with other instants; reports mark a provisional
    deadline (暂定, :data:`~jianyi_flow.domain.calendar.PROVISIONAL_LABEL_ZH`).
    """

    at: datetime = attrs.field(validator=_check_due_at)
    provisional: bool = attrs.field(default=False, validator=_check_flag)


def due_detail(start: datetime, duration: Duration, calendar: BusinessCalendar) -> Due:
    """:func:`due` and whether the deadline is provisional (see :class:`Due`).

    ``due_detail(start, d, cal).at == due(start, d, cal)`` always.  The check costs one more
    calendar question (:meth:`~jianyi_flow.domain.calendar.BusinessCalendar.provisional_between`).
    """
    start_day = local_date(require_aware(start, "start"))
    deadline_day = _deadline_day(start_day, duration, calendar)
    return Due(end_of_local_day(deadline_day), calendar.provisional_between(start_day, deadline_day))


@attrs.frozen
class StepRule:
    """One row of a policy: how long ``step`` may take and where that number comes from."""

    step: Step
    duration: Duration
    source: str

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.step, Step):
            raise ValidationError("step", f"must be a Step, got {self.step!r}")
        if not isinstance(self.duration, CalendarDays | WorkingDays):
            raise ValidationError("duration", f"must be CalendarDays or WorkingDays, got {self.duration!r}")
        if not isinstance(self.source, str) or not self.source.strip():
            raise ValidationError("source", "must say where the period comes from")


def _rules_in_step_order(rules: Iterable[StepRule]) -> tuple[StepRule, ...]:
    by_step: dict[Step, StepRule] = {}
    for rule in rules:
        if not isinstance(rule, StepRule):
            raise ValidationError("rules", f"must be StepRule values, got {rule!r}")
        if rule.step in by_step:
            raise ValidationError("rules", f"step {rule.step.value!r} is given twice")
        by_step[rule.step] = rule
    missing = [step.value for step in Step if step not in by_step]
    if missing:
        raise ValidationError("rules", f"every step needs a period; missing: {', '.join(missing)}")
    return tuple(by_step[step] for step in Step)


@attrs.frozen
class DeadlinePolicy:
    """How long each :class:`Step` may take.  Immutable: :meth:`with_step` returns a new policy.

    Every step always has a rule, so :meth:`due_for` cannot fail for want of one; the rules
    are kept in :class:`Step` order so :meth:`describe` prints a stable table.
    """

    rules: tuple[StepRule, ...] = attrs.field(converter=_rules_in_step_order)

    def rule(self, step: Step) -> StepRule:
        """The rule for ``step``."""
        for rule in self.rules:
            if rule.step == step:
                return rule
        raise ValidationError("step", f"unknown step {step!r}")

    def duration(self, step: Step) -> Duration:
        """How long ``step`` may take."""
        return self.rule(step).duration

    def due_for(self, step: Step, start: datetime, calendar: BusinessCalendar) -> datetime:
        """The deadline of ``step`` when it starts at ``start`` (see :func:`due`)."""
        return due(start, self.duration(step), calendar)

    def due_detail(self, step: Step, start: datetime, calendar: BusinessCalendar) -> Due:
        """The deadline of ``step`` when it starts at ``start``, marked provisional or not
        (see :func:`due_detail`)."""
        return due_detail(start, self.duration(step), calendar)

    def with_step(self, step: Step, duration: Duration, source: str | None = None) -> DeadlinePolicy:
        """A copy of this policy in which ``step`` takes ``duration``.

        ``source`` should say who decided it (a local rule, a campaign notice); without one the
        row is marked as an operator override so reports never present it as statutory.
        """
        try:
            step = Step(step)
        except ValueError:
            raise ValidationError("step", f"unknown step {step!r}") from None
        new = StepRule(step, duration, source if source is not None else "operator override")
        return DeadlinePolicy(tuple(new if rule.step == step else rule for rule in self.rules))

    def describe(self) -> list[tuple[Step, Duration, str]]:
        """Rows ``(step, duration, source)`` in step order, for documentation and reports."""
        return [(rule.step, rule.duration, rule.source) for rule in self.rules]

    def as_mapping(self) -> Mapping[Step, Duration]:
        """``{step: duration}``, e.g. to store alongside a campaign."""
        return {rule.step: rule.duration for rule in self.rules}

    @property
    def version(self) -> str:
        """``deadlines@<digest>``: a digest of every step's period (not of the sources' wording).

        Every event records the version of the policy of the flow that wrote it, and a
        suggestion the version its current deadline was set under (docs/versions.md).
        """
        rows = [[rule.step.value, type(rule.duration).__name__, rule.duration.n] for rule in self.rules]
        digest = hashlib.sha256(json.dumps(rows, separators=(",", ":")).encode("ascii")).hexdigest()
        return f"deadlines@{digest[:12]}"


DEFAULT_POLICY = DeadlinePolicy(
    (
        StepRule(
            Step.REGISTER,
            CalendarDays(15),
            "信访工作条例 (2022) Art. 22 para. 1: petition departments register and, within 15 days, "
            "route the matter (在15日内分别按照下列方式处理); Art. 23 para. 2 likewise gives other "
            "units 15 days to notify the proposer in writing",
        ),
        StepRule(
            Step.OBJECT_TRANSFER,
            WorkingDays(5),
            "信访工作条例 (2022) Art. 23 para. 3: a unit that receives a transferred matter outside its "
            "remit objects within 5 working days of receipt (自收到之日起5个工作日内提出异议)",
        ),
        StepRule(
            Step.RESEARCH,
            CalendarDays(60),
            "our choice by analogy: 信访工作条例 (2022) Art. 29 asks units to study a suggestion "
            "(认真研究论证) and adopt or partly adopt it if sound, but sets no period; its chapter 4 gives "
            "60 days from acceptance to conclude a 信访事项 (60日内办结; article number not verified here, "
            "see docs/calendar.md)",
        ),
        StepRule(
            Step.REPLY,
            CalendarDays(15),
            "our choice by analogy: 信访工作条例 (2022) Art. 29 asks for a reply (予以回复) but sets no "
            "period; Art. 23 gives 15 days for written notice to the proposer",
        ),
        StepRule(
            Step.RATE,
            CalendarDays(30),
            "our choice by analogy: 信访工作条例 (2022) gives a proposer 30 days from receipt of the "
            "written reply to request review (30日内请求复查; article number not verified here, see "
            "docs/calendar.md)",
        ),
    )
)
"""The default periods.  Only REGISTER and OBJECT_TRANSFER are set by the regulations for
these steps; the others are our choices by analogy, marked as such in their ``source``."""


MAX_EXTENSION = CalendarDays(30)
"""The longest extension of a handling period: 延长期限不得超过30日, the sentence that follows
the 60-day rule in 信访工作条例 (2022) chapter 4.  Granting it only once, with a reason, is
the workflow engine's job."""


def _extended_day(old_day: date, duration: Duration, calendar: BusinessCalendar) -> date:
    if isinstance(duration, CalendarDays):
        if duration.n > MAX_EXTENSION.n:
            raise ValidationError("extension", f"{duration} exceeds the maximum of {MAX_EXTENSION}")
        return _deadline_day(old_day, duration, calendar)
    if isinstance(duration, WorkingDays):
        new_day = _deadline_day(old_day, duration, calendar)
        limit = _deadline_day(old_day, MAX_EXTENSION, calendar)
        if new_day > limit:
            raise ValidationError(
                "extension",
                f"{duration} from {old_day.isoformat()} ends {new_day.isoformat()}, after the "
                f"{MAX_EXTENSION} limit ({limit.isoformat()})",
            )
        return new_day
    raise ValidationError("extension", f"must be CalendarDays or WorkingDays, got {duration!r}")


def extend(due: datetime, duration: Duration, calendar: BusinessCalendar) -> datetime:
    """The deadline ``due`` extended by ``duration``, counted from the old deadline's day.

    The extension may not reach past what :data:`MAX_EXTENSION` (30 calendar days) would
    give: ``CalendarDays(n)`` needs ``n <= 30``; ``WorkingDays(n)`` is allowed when its end is
    no later than the 30-calendar-day end (both rolled forward per Art. 203).  Anything
    longer raises :class:`ValidationError` with field ``extension``.
    """
    require_aware(due, "due")
    return end_of_local_day(_extended_day(local_date(due), duration, calendar))


def extend_detail(due: Due | datetime, duration: Duration, calendar: BusinessCalendar) -> Due:
    """:func:`extend`, and whether the extended deadline is provisional.

    It is provisional when any day from the old deadline's day to the new deadline's day (both
    included) is provisional, or when ``due`` is a :class:`Due` that was provisional already
    (the new deadline is counted from it).  A bare ``datetime`` is taken as a confirmed old
    deadline.
    """
    old = due if isinstance(due, Due) else Due(require_aware(due, "due"))
    old_day = local_date(old.at)
    new_day = _extended_day(old_day, duration, calendar)
    return Due(end_of_local_day(new_day), old.provisional or calendar.provisional_between(old_day, new_day))
