"""The business calendar: which days are working days in mainland China.

Statutory deadlines (see :mod:`jianyi_flow.domain.deadlines`) are counted in working days or
roll forward over rest days, so the engine must know the State Council's holiday
schedule, including the 调休 arrangement: weekend days declared working days
(调休上班) in exchange for a longer holiday block.  That schedule is published once a
year (each November for the next year) and cannot be computed, so:

* :class:`ChinaCalendar` takes it from the PyPI package ``chinese-calendar`` (import name
  ``chinese_calendar``; 1.11.0 covers 2004-2026) and precomputes, per covered stretch of years, a
  sorted array of working-day ordinal numbers.  Counting working days is then a binary
  search (O(log n)) instead of a day-by-day walk through the package.
* A year the package does not cover raises :class:`~jianyi_flow.errors.CalendarNotCovered`.
  The calendar never guesses (e.g. "Monday to Friday") for a year whose notice it does
  not know: a wrong deadline is worse than a loud error.  This also holds when an
  addition starting in a covered year runs past the last covered day.
* :class:`CalendarOverrides` lets operators add a year (from the State Council notice,
  as soon as it is published) or amend single days before the package is updated.

Calendar questions are about Asia/Shanghai days.  The methods take :class:`datetime.date`
values; to ask about an instant use the ``*_at`` helpers, which convert an aware
datetime to Asia/Shanghai *first*: 2024-09-30T17:00Z is 1 October in Shanghai, a
holiday, although it is still 30 September in UTC.
"""

from __future__ import annotations

import enum
import functools
import json
import tomllib
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Protocol, runtime_checkable

import attrs
import chinese_calendar  # type: ignore[import-untyped]

from ..errors import CalendarNotCovered, ValidationError
from .clock import local_date, require_aware

__all__ = [
    "HOLIDAY_NAMES_ZH",
    "PACKAGE_SOURCE",
    "BusinessCalendar",
    "CalendarOverrides",
    "ChinaCalendar",
    "DayInfo",
    "DayKind",
    "OverrideDay",
    "day_info_at",
    "default_calendar",
    "holiday_label_zh",
    "is_working_day_at",
    "next_working_day_at",
]

PACKAGE_SOURCE = f"chinese_calendar {chinese_calendar.__version__}"
"""The ``source`` recorded on days whose status comes from the ``chinese_calendar`` package."""

HOLIDAY_NAMES_ZH: Mapping[str, str] = MappingProxyType(
    {
        "New Year's Day": "元旦",
        "Spring Festival": "春节",
        "Tomb-sweeping Day": "清明节",
        "Labour Day": "劳动节",
        "Dragon Boat Festival": "端午节",
        "Mid-autumn Festival": "中秋节",
        "National Day": "国庆节",
        "Anti-Fascist 70th Day": "中国人民抗日战争暨世界反法西斯战争胜利70周年纪念日",
    }
)
"""English holiday names (as ``chinese_calendar`` spells them) → the Chinese names the
State Council notices use.  Reports shown to proposers use the Chinese label."""

# Chinese spellings accepted in override files, mapped back to the canonical English name,
# so that a 2027 file written in Chinese ("春节") and the package's data ("Spring Festival")
# describe the same festival.  The short forms are the ones chinese_calendar itself uses.
_NAMES_EN: Mapping[str, str] = MappingProxyType(
    {zh: en for en, zh in HOLIDAY_NAMES_ZH.items()}
    | {
        "清明": "Tomb-sweeping Day",
        "端午": "Dragon Boat Festival",
        "中秋": "Mid-autumn Festival",
        "国庆": "National Day",
    }
)


def holiday_label_zh(name: str) -> str:
    """The Chinese label of a holiday name; a name we have no label for is returned as is."""
    return HOLIDAY_NAMES_ZH.get(name, name)


def _canonical_name(name: str) -> str:
    return _NAMES_EN.get(name, name)


class DayKind(enum.Enum):
    """What kind of day a date is.  Two kinds are working days, two are rest days."""

    WORKING_DAY = "working_day"
    """An ordinary Monday-Friday working day."""
    WEEKEND = "weekend"
    """An ordinary Saturday or Sunday off."""
    HOLIDAY = "holiday"
    """A day off in a statutory holiday block (法定节假日 or a 调休 rest day inside the block)."""
    SWAPPED_WORKING_DAY = "swapped_working_day"
    """A Saturday or Sunday declared a working day in exchange for a holiday (调休上班)."""

    @property
    def is_working_day(self) -> bool:
        return self in (DayKind.WORKING_DAY, DayKind.SWAPPED_WORKING_DAY)


@attrs.frozen
class DayInfo:
    """Everything the calendar knows about one Asia/Shanghai day.

    ``holiday`` is the English holiday name (``chinese_calendar``'s spelling, e.g.
    ``"Spring Festival"``) for a ``HOLIDAY`` and for a ``SWAPPED_WORKING_DAY`` (the holiday
    it is swapped for); ``holiday_zh`` is its Chinese label.  ``source`` says where a
    non-ordinary status comes from (the package, or an override's notice) so an audit
    can trace any deadline back to a published schedule.
    """

    date: date
    kind: DayKind
    holiday: str | None = None
    source: str | None = None

    @property
    def is_working_day(self) -> bool:
        return self.kind.is_working_day

    @property
    def holiday_zh(self) -> str | None:
        return None if self.holiday is None else holiday_label_zh(self.holiday)


@runtime_checkable
class BusinessCalendar(Protocol):
    """The questions the engine asks about days.  Every method raises
    :class:`~jianyi_flow.errors.CalendarNotCovered` rather than guess about a year it has
    no schedule for, and :class:`~jianyi_flow.errors.ValidationError` for a ``datetime``
    passed where a ``date`` is expected (use the ``*_at`` helpers for instants)."""

    @property
    def covered_years(self) -> tuple[int, ...]:
        """The years whose holiday schedule is known, ascending (not necessarily contiguous)."""
        ...

    def is_working_day(self, day: date) -> bool:
        """Whether ``day`` is a working day (an ordinary weekday or a 调休 working weekend day)."""
        ...

    def day_info(self, day: date) -> DayInfo:
        """The kind of ``day``, and the holiday it belongs to if any."""
        ...

    def add_working_days(self, day: date, n: int) -> date:
        """The ``n``-th working day *after* ``day`` (``day`` itself is never counted).

        ``n`` must be >= 0.  ``n == 0`` returns ``day`` if it is a working day, else the next
        working day (the same as :meth:`next_working_day`).
        """
        ...

    def working_days_between(self, start: date, end: date) -> int:
        """The number of working days in the half-open interval ``(start, end]``.

        Matches :meth:`add_working_days`: ``working_days_between(d, add_working_days(d, n)) == n``
        for ``n >= 1``.  If ``end < start`` the result is the negated count for ``(end, start]``
        (so it is antisymmetric, and "working days overdue" comes out negative); it never raises
        for that order.
        """
        ...

    def next_working_day(self, day: date) -> date:
        """``day`` itself if it is a working day, else the first working day after it."""
        ...


@attrs.frozen
class OverrideDay:
    """One amended day: the holiday's name and the notice that declared it."""

    name: str
    source: str

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValidationError("name", "must be a non-empty string")
        if not isinstance(self.source, str) or not self.source.strip():
            raise ValidationError(
                "source", "must be a non-empty string (e.g. the State Council notice title)"
            )


def _freeze_days(value: Mapping[date, OverrideDay]) -> Mapping[date, OverrideDay]:
    return MappingProxyType(dict(value))


def _freeze_years(value: Iterable[int]) -> frozenset[int]:
    return frozenset(value)


def _check_days(field: str, days: Mapping[date, OverrideDay]) -> None:
    for day, entry in days.items():
        if isinstance(day, datetime) or not isinstance(day, date):
            raise ValidationError(field, f"keys must be dates, got {day!r}")
        if not isinstance(entry, OverrideDay):
            raise ValidationError(f"{field}.{day.isoformat()}", "must be an OverrideDay")


_FILE_FIELDS = frozenset({"source", "covered_years", "holidays", "working_days"})


@attrs.frozen
class CalendarOverrides:
    """Days and years an operator adds on top of ``chinese_calendar``.

    * ``holidays``: extra days off (date → holiday name).  Wins over the package.
    * ``working_days``: extra working days (date → name of the holiday they are swapped
      for).  Wins over the package; on a weekday it cancels a day off.
    * ``covered_years``: years the overrides describe *completely*.  A year becomes
      covered only by being declared here; amending a few days of an otherwise unknown
      year does not make the calendar guess the rest (the calendar rejects such days).

    Every day carries the ``source`` that declared it, normally the State Council notice
    title.  Build one in code with :meth:`from_notice`, or load a JSON or TOML file with
    :meth:`from_file`.  The file format (TOML shown; JSON has the same keys)::

        # The top-level source is the default for every entry that names none.
        source = "国务院办公厅关于2027年部分节假日安排的通知"
        covered_years = [2027]

        [holidays]            # date = name, or date = {name = ..., source = ...}
        "2027-01-01" = "元旦"
        "2027-02-08" = "Spring Festival"

        [working_days]        # the weekend days worked in exchange (调休上班)
        "2027-02-20" = "春节"

    (Dates above illustrate the format; they are not the real 2027 schedule.)  Names may be
    the English names ``chinese_calendar`` uses or their Chinese labels (元旦, 春节, 清明节,
    劳动节, 端午节, 中秋节, 国庆节); both are stored in the English spelling.
    """

    holidays: Mapping[date, OverrideDay] = attrs.field(factory=dict, converter=_freeze_days)
    working_days: Mapping[date, OverrideDay] = attrs.field(factory=dict, converter=_freeze_days)
    covered_years: frozenset[int] = attrs.field(factory=frozenset, converter=_freeze_years)

    def __attrs_post_init__(self) -> None:
        _check_days("holidays", self.holidays)
        _check_days("working_days", self.working_days)
        for year in self.covered_years:
            if isinstance(year, bool) or not isinstance(year, int) or not 1 <= year <= 9998:
                raise ValidationError("covered_years", f"must be years between 1 and 9998, got {year!r}")
        both = sorted(set(self.holidays) & set(self.working_days))
        if both:
            raise ValidationError("working_days", f"{both[0].isoformat()} is also listed as a holiday")

    @classmethod
    def from_notice(
        cls,
        source: str,
        *,
        holidays: Mapping[date, str] | None = None,
        working_days: Mapping[date, str] | None = None,
        covered_years: Iterable[int] = (),
    ) -> CalendarOverrides:
        """Overrides whose days all come from one notice (the usual case: one per year)."""
        return cls(
            holidays={d: OverrideDay(_canonical_name(n), source) for d, n in (holidays or {}).items()},
            working_days={
                d: OverrideDay(_canonical_name(n), source) for d, n in (working_days or {}).items()
            },
            covered_years=frozenset(covered_years),
        )

    @classmethod
    def from_mapping(cls, data: Mapping[str, object]) -> CalendarOverrides:
        """Parse the structure of an override file (already decoded from JSON or TOML).

        Raises :class:`ValidationError` naming the offending field, e.g. ``holidays.2027-13-01``.
        """
        if not isinstance(data, Mapping):
            raise ValidationError("overrides", "must be a table/object at the top level")
        unknown = sorted(str(k) for k in data if k not in _FILE_FIELDS)
        if unknown:
            raise ValidationError(unknown[0], f"unknown field (allowed: {', '.join(sorted(_FILE_FIELDS))})")
        default_source = data.get("source")
        if default_source is not None and (not isinstance(default_source, str) or not default_source.strip()):
            raise ValidationError("source", "must be a non-empty string")
        years = data.get("covered_years", [])
        if not isinstance(years, list) or any(isinstance(y, bool) or not isinstance(y, int) for y in years):
            raise ValidationError("covered_years", "must be a list of integer years")
        return cls(
            holidays=_parse_days("holidays", data.get("holidays", {}), default_source),
            working_days=_parse_days("working_days", data.get("working_days", {}), default_source),
            covered_years=frozenset(years),
        )

    @classmethod
    def from_file(cls, path: str | Path) -> CalendarOverrides:
        """Load overrides from a ``.json`` or ``.toml`` file (format: see the class docstring).

        Any problem — unreadable file, bad syntax, a bad date or name — raises
        :class:`ValidationError`; nothing else escapes.
        """
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in (".json", ".toml"):
            raise ValidationError("path", f"{path.name}: must end in .json or .toml")
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ValidationError("path", f"cannot read {path}: {exc.strerror or exc}") from exc
        try:
            data: object = json.loads(raw) if suffix == ".json" else tomllib.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError and TOMLDecodeError are ValueErrors
            raise ValidationError("file", f"{path.name} is not valid {suffix[1:].upper()}: {exc}") from exc
        if not isinstance(data, Mapping):
            raise ValidationError("overrides", "must be a table/object at the top level")
        return cls.from_mapping(data)

    def merged(self, other: CalendarOverrides) -> CalendarOverrides:
        """Both sets of overrides together (e.g. one file per year).  A date defined differently
        in the two raises :class:`ValidationError` instead of one silently winning."""
        for field in ("holidays", "working_days"):
            mine: Mapping[date, OverrideDay] = getattr(self, field)
            theirs: Mapping[date, OverrideDay] = getattr(other, field)
            for day in sorted(set(mine) & set(theirs)):
                if mine[day] != theirs[day]:
                    raise ValidationError(
                        f"{field}.{day.isoformat()}", "defined differently in the two overrides"
                    )
        return CalendarOverrides(
            holidays={**self.holidays, **other.holidays},
            working_days={**self.working_days, **other.working_days},
            covered_years=self.covered_years | other.covered_years,
        )


def _parse_days(field: str, raw: object, default_source: object) -> dict[date, OverrideDay]:
    if not isinstance(raw, Mapping):
        raise ValidationError(field, "must be a table/object mapping ISO dates to names")
    days: dict[date, OverrideDay] = {}
    for key, value in raw.items():
        where = f"{field}.{key}"
        try:
            day = date.fromisoformat(key) if isinstance(key, str) and len(key) == 10 else None
        except ValueError:
            day = None
        if day is None:
            raise ValidationError(where, "key must be an ISO date YYYY-MM-DD")
        name: object
        source: object
        if isinstance(value, str):
            name, source = value, default_source
        elif isinstance(value, Mapping):
            extra = sorted(str(k) for k in value if k not in ("name", "source"))
            if extra:
                raise ValidationError(f"{where}.{extra[0]}", "unknown field (allowed: name, source)")
            name, source = value.get("name"), value.get("source", default_source)
        else:
            raise ValidationError(where, "must be a name or a {name, source} table")
        if not isinstance(name, str) or not name.strip():
            raise ValidationError(f"{where}.name", "must be a non-empty string")
        if not isinstance(source, str) or not source.strip():
            raise ValidationError(f"{where}.source", "missing: give a top-level source or one per entry")
        days[day] = OverrideDay(_canonical_name(name.strip()), source.strip())
    return days


@attrs.frozen
class _Segment:
    """A maximal run of consecutive covered years and its working days, ascending."""

    first_year: int
    last_year: int
    working: tuple[int, ...]  # proleptic Gregorian ordinals, sorted


def _runs(years: Iterable[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for year in sorted(set(years)):
        if runs and runs[-1][1] == year - 1:
            runs[-1] = (runs[-1][0], year)
        else:
            runs.append((year, year))
    return runs


def _describe_years(years: Iterable[int]) -> str:
    parts = [f"{a}" if a == b else f"{a}-{b}" for a, b in _runs(years)]
    return ", ".join(parts) if parts else "none"


def _require_date(day: date, field: str = "day") -> int:
    # datetime is a subclass of date: accepting one would silently use its own (maybe UTC) date.
    if isinstance(day, datetime) or not isinstance(day, date):
        raise ValidationError(
            field, "must be a date; for an instant use the *_at helpers, which convert to Asia/Shanghai first"
        )
    return day.toordinal()


def _require_count(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValidationError("n", f"must be an integer >= 0, got {n!r}")
    return n


class ChinaCalendar:
    """The mainland China business calendar, from ``chinese_calendar`` plus optional overrides.

    Construction precomputes everything (a few milliseconds for 23 years); afterwards every
    question is a dict lookup or a binary search, and instances are immutable and safe to
    share between threads.
    """

    def __init__(self, overrides: CalendarOverrides | None = None) -> None:
        overrides = overrides if overrides is not None else CalendarOverrides()
        package_holidays: Mapping[date, str] = chinese_calendar.holidays
        package_workdays: Mapping[date, str] = chinese_calendar.workdays
        package_years = range(min(package_holidays).year, max(package_holidays).year + 1)
        covered = frozenset(package_years) | overrides.covered_years
        for field, days in (("holidays", overrides.holidays), ("working_days", overrides.working_days)):
            for day in days:
                if day.year not in covered:
                    raise ValidationError(
                        f"{field}.{day.isoformat()}",
                        f"{day.year} is neither covered by {PACKAGE_SOURCE} nor declared in covered_years",
                    )

        # ordinal -> (kind, holiday name, source); ordinary weekdays and weekends are not stored.
        special: dict[int, tuple[DayKind, str | None, str]] = {}
        for day, name in package_holidays.items():
            special[day.toordinal()] = (DayKind.HOLIDAY, name, PACKAGE_SOURCE)
        for day, name in package_workdays.items():
            special[day.toordinal()] = (_working_kind(day), name, PACKAGE_SOURCE)
        for day, entry in overrides.holidays.items():
            special[day.toordinal()] = (DayKind.HOLIDAY, entry.name, entry.source)
        for day, entry in overrides.working_days.items():
            kind = _working_kind(day)
            # A weekday working day only cancels a day off; it is not "swapped" for a holiday.
            swapped_for = entry.name if kind is DayKind.SWAPPED_WORKING_DAY else None
            special[day.toordinal()] = (kind, swapped_for, entry.source)

        self._covered = covered
        self._covered_years = tuple(sorted(covered))
        self._covered_text = _describe_years(covered)
        self._special = special
        self._segments: dict[int, _Segment] = {}
        for first, last in _runs(covered):
            working = tuple(
                o
                for o in range(date(first, 1, 1).toordinal(), date(last, 12, 31).toordinal() + 1)
                if self._kind_of(o).is_working_day
            )
            segment = _Segment(first, last, working)
            for year in range(first, last + 1):
                self._segments[year] = segment

    def __repr__(self) -> str:
        return f"ChinaCalendar(covered_years={self._covered_text})"

    @property
    def covered_years(self) -> tuple[int, ...]:
        return self._covered_years

    def _kind_of(self, ordinal: int) -> DayKind:
        entry = self._special.get(ordinal)
        if entry is not None:
            return entry[0]
        # date.fromordinal(1) is a Monday, so (ordinal - 1) % 7 is the ISO weekday - 1.
        return DayKind.WEEKEND if (ordinal - 1) % 7 >= 5 else DayKind.WORKING_DAY

    def _segment(self, year: int) -> _Segment:
        segment = self._segments.get(year)
        if segment is None:
            raise CalendarNotCovered(year, self._covered_text)
        return segment

    def _past_end(self, segment: _Segment) -> CalendarNotCovered:
        return CalendarNotCovered(segment.last_year + 1, self._covered_text)

    def is_working_day(self, day: date) -> bool:
        ordinal = _require_date(day)
        self._segment(day.year)
        return self._kind_of(ordinal).is_working_day

    def day_info(self, day: date) -> DayInfo:
        ordinal = _require_date(day)
        self._segment(day.year)
        entry = self._special.get(ordinal)
        if entry is None:
            return DayInfo(day, self._kind_of(ordinal))
        kind, name, source = entry
        return DayInfo(day, kind, name, source)

    def add_working_days(self, day: date, n: int) -> date:
        ordinal = _require_date(day)
        _require_count(n)
        segment = self._segment(day.year)
        working = segment.working
        # bisect_right finds the first working day strictly after `day`: that one is the 1st.
        index = bisect_left(working, ordinal) if n == 0 else bisect_right(working, ordinal) + n - 1
        if index >= len(working):
            raise self._past_end(segment)
        return date.fromordinal(working[index])

    def next_working_day(self, day: date) -> date:
        return self.add_working_days(day, 0)

    def working_days_between(self, start: date, end: date) -> int:
        start_ordinal = _require_date(start, "start")
        end_ordinal = _require_date(end, "end")
        segment = self._segment(start.year)
        if self._segment(end.year) is not segment:
            # The two days lie in different covered stretches: an unknown year lies between.
            gap = (segment.last_year + 1) if end > start else (self._segment(end.year).last_year + 1)
            raise CalendarNotCovered(gap, self._covered_text)
        working = segment.working
        return bisect_right(working, end_ordinal) - bisect_right(working, start_ordinal)


def _working_kind(day: date) -> DayKind:
    return DayKind.SWAPPED_WORKING_DAY if day.weekday() >= 5 else DayKind.WORKING_DAY


@functools.cache
def default_calendar() -> ChinaCalendar:
    """The shared calendar built from ``chinese_calendar`` alone (built once, then cached).

    Use ``ChinaCalendar(overrides)`` for a calendar with operator overrides.
    """
    return ChinaCalendar()


def _local_day(when: datetime) -> date:
    return local_date(require_aware(when, "when"))


def is_working_day_at(calendar: BusinessCalendar, when: datetime) -> bool:
    """Whether the Asia/Shanghai day of the aware instant ``when`` is a working day.

    A naive datetime raises :class:`ValidationError` (field ``when``): it names no instant.
    """
    return calendar.is_working_day(_local_day(when))


def day_info_at(calendar: BusinessCalendar, when: datetime) -> DayInfo:
    """The :class:`DayInfo` of the Asia/Shanghai day of the aware instant ``when``."""
    return calendar.day_info(_local_day(when))


def next_working_day_at(calendar: BusinessCalendar, when: datetime) -> date:
    """The Asia/Shanghai day of ``when`` if it is a working day, else the next working day."""
    return calendar.next_working_day(_local_day(when))
