"""The business calendar: which days are working days in mainland China.

Statutory deadlines (see :mod:`jianyi_flow.domain.deadlines`) are counted in working days or
roll forward over rest days, so the engine must know the State Council's holiday
schedule, including the 调休 arrangement: weekend days declared working days
(调休上班) in exchange for a longer holiday block.  That schedule is published once a
year (each autumn for the next year) and cannot be computed, so:

* :class:`ChinaCalendar` takes the *official* schedule from the PyPI package
  ``chinese-calendar`` (import name ``chinese_calendar``; 1.11.0 covers 2004-2026) and from
  :class:`CalendarOverrides` (a State Council notice typed into a file, for a year the
  package does not cover yet, or an amendment).  A newer package release that covers a year
  is used automatically.
* For a year with no official schedule the calendar's :class:`CalendarMode` decides.  In
  ``PROVISIONAL`` mode (the default, and :func:`default_calendar`) the year is derived from
  the 全国年节及纪念日放假办法 (see :mod:`jianyi_flow.domain.holidays`): its statutory
  holidays, weekends as rest days, no 调休.  Every day of such a year says
  ``provisional=True``, so that a deadline computed over it can say so too
  (:func:`~jianyi_flow.domain.deadlines.due_detail`).  In ``STRICT`` mode (for audits,
  :func:`strict_calendar`) such a year raises :class:`~jianyi_flow.errors.CalendarNotCovered`,
  also when an addition starting in a covered year runs past the last covered day.
  Years before 2025 (governed by earlier versions of the 办法) and after
  :data:`~jianyi_flow.domain.holidays.PROVISIONAL_LAST_YEAR` are never derived.
* Per stretch of consecutive years it can answer, the calendar keeps a sorted array of
  working-day ordinal numbers, so counting working days is a binary search (O(log n))
  instead of a day-by-day walk.  Official years are built when the calendar is built;
  provisional years are built the first time a question reaches them.

Calendar questions are about Asia/Shanghai days.  The methods take :class:`datetime.date`
values; to ask about an instant use the ``*_at`` helpers, which convert an aware
datetime to Asia/Shanghai *first*: 2024-09-30T17:00Z is 1 October in Shanghai, a
holiday, although it is still 30 September in UTC.
"""

from __future__ import annotations

import enum
import functools
import json
import threading
import tomllib
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Protocol, runtime_checkable

import attrs
import chinese_calendar  # type: ignore[import-untyped]

from ..errors import CalendarNotCovered, ValidationError
from .clock import local_date, require_aware
from .holidays import PROVISIONAL_FIRST_YEAR, PROVISIONAL_LAST_YEAR, PROVISIONAL_SOURCE, provisional_holidays

__all__ = [
    "DEFAULT_LOOKAHEAD_DAYS",
    "HOLIDAY_NAMES_ZH",
    "PACKAGE_SOURCE",
    "PROVISIONAL_LABEL_ZH",
    "PROVISIONAL_SOURCE",
    "BusinessCalendar",
    "CalendarHealth",
    "CalendarMode",
    "CalendarOverrides",
    "ChinaCalendar",
    "DayInfo",
    "DayKind",
    "HealthStatus",
    "OverrideDay",
    "calendar_health",
    "day_info_at",
    "default_calendar",
    "holiday_label_zh",
    "is_working_day_at",
    "next_working_day_at",
    "strict_calendar",
]

PACKAGE_SOURCE = f"chinese_calendar {chinese_calendar.__version__}"
"""The ``source`` recorded on days whose status comes from the ``chinese_calendar`` package."""

PROVISIONAL_LABEL_ZH = "暂定"
"""How reports mark a provisional day or deadline in Chinese."""

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


class CalendarMode(enum.Enum):
    """What a :class:`ChinaCalendar` does with a year that has no official schedule."""

    PROVISIONAL = "provisional"
    """Derive the year from the 全国年节及纪念日放假办法 and mark every day of it provisional."""
    STRICT = "strict"
    """Refuse: raise :class:`~jianyi_flow.errors.CalendarNotCovered` (for audits)."""


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

    ``provisional`` is true for every day of a year answered from the 办法 because no
    official schedule is loaded for it, ordinary weekdays included: until the notice is
    published, none of that year's days is confirmed.  Their ``source`` is
    :data:`PROVISIONAL_SOURCE`.
    """

    date: date
    kind: DayKind
    holiday: str | None = None
    source: str | None = None
    provisional: bool = False

    @property
    def is_working_day(self) -> bool:
        return self.kind.is_working_day

    @property
    def holiday_zh(self) -> str | None:
        return None if self.holiday is None else holiday_label_zh(self.holiday)


@runtime_checkable
class BusinessCalendar(Protocol):
    """The questions the engine asks about days.  Every method raises
    :class:`~jianyi_flow.errors.CalendarNotCovered` for a year it can answer neither officially
    nor (in provisional mode) provisionally, and :class:`~jianyi_flow.errors.ValidationError`
    for a ``datetime`` passed where a ``date`` is expected (use the ``*_at`` helpers for
    instants)."""

    @property
    def mode(self) -> CalendarMode:
        """Whether years without an official schedule are derived or refused."""
        ...

    @property
    def covered_years(self) -> tuple[int, ...]:
        """The years whose official holiday schedule is known, ascending (not necessarily contiguous)."""
        ...

    @property
    def official_until(self) -> date | None:
        """The last day of the last year with an official schedule (``None`` if there is none).

        Years before it can still be provisional when the covered years have a gap.
        """
        ...

    def is_provisional(self, day: date) -> bool:
        """Whether ``day`` is answered provisionally (its year has no official schedule)."""
        ...

    def provisional_between(self, start: date, end: date) -> bool:
        """Whether any day from ``start`` to ``end``, both included (either order), is provisional."""
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
    """A maximal run of consecutive answerable years and the working days of its first years.

    ``working`` holds the ordinals of the working days of ``first_year``..``built_through``,
    ascending; the rest of the run (provisional years) is added when a question reaches it.
    """

    first_year: int
    last_year: int
    built_through: int
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
    """The mainland China business calendar: ``chinese_calendar`` plus optional overrides, and
    (in :attr:`CalendarMode.PROVISIONAL`, the default) provisional days for the years neither covers.

    ``mode`` is keyword-only and always visible (``repr``, :attr:`mode`): build
    ``ChinaCalendar(overrides, mode=CalendarMode.STRICT)`` where a deadline must never rest on a
    derived schedule.  Construction precomputes the official years (a few milliseconds for 23
    years); a provisional year is derived and added the first time a question reaches it (a few
    milliseconds each).  Afterwards every question is a dict lookup or a binary search.
    Instances never change what they answer and are safe to share between threads.
    """

    def __init__(
        self, overrides: CalendarOverrides | None = None, *, mode: CalendarMode = CalendarMode.PROVISIONAL
    ) -> None:
        if not isinstance(mode, CalendarMode):
            allowed = ", ".join(m.value for m in CalendarMode)
            raise ValidationError("mode", f"must be a CalendarMode ({allowed}), got {mode!r}")
        overrides = overrides if overrides is not None else CalendarOverrides()
        if not isinstance(overrides, CalendarOverrides):
            raise ValidationError("overrides", f"must be CalendarOverrides, got {type(overrides).__name__}")
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

        if mode is CalendarMode.PROVISIONAL:
            provisional = frozenset(range(PROVISIONAL_FIRST_YEAR, PROVISIONAL_LAST_YEAR + 1)) - covered
        else:
            provisional = frozenset()

        self._mode = mode
        self._overrides = overrides
        self._covered = covered
        self._covered_years = tuple(sorted(covered))
        self._provisional = provisional
        self._provisional_years = tuple(sorted(provisional))
        self._covered_text = _describe_years(covered)
        if provisional:
            self._covered_text += f", provisionally {_describe_years(provisional)}"
        self._special = special
        self._official_run_end = {year: last for first, last in _runs(covered) for year in range(first, last + 1)}
        # year -> the segment of its run; all years of a run point at the same (latest) segment.
        self._segments: dict[int, _Segment] = {}
        self._lock = threading.Lock()
        for first, last in _runs(covered | provisional):
            through = max((year for year in covered if first <= year <= last), default=first - 1)
            working = tuple(o for year in range(first, through + 1) for o in self._working_in(year))
            segment = _Segment(first, last, through, working)
            for year in range(first, last + 1):
                self._segments[year] = segment

    def __repr__(self) -> str:
        provisional = f", provisional_years={_describe_years(self._provisional)}" if self._provisional else ""
        return f"ChinaCalendar(mode={self._mode.value}, covered_years={_describe_years(self._covered)}{provisional})"

    # --- what the calendar is --------------------------------------------------------------------

    @property
    def mode(self) -> CalendarMode:
        return self._mode

    @property
    def overrides(self) -> CalendarOverrides:
        """The overrides this calendar was built with."""
        return self._overrides

    @property
    def covered_years(self) -> tuple[int, ...]:
        return self._covered_years

    @property
    def provisional_years(self) -> tuple[int, ...]:
        """The years answered provisionally, ascending (empty in strict mode)."""
        return self._provisional_years

    @property
    def official_until(self) -> date | None:
        return date(self._covered_years[-1], 12, 31) if self._covered_years else None

    def official_through(self, day: date) -> date | None:
        """The last day of the unbroken run of official years that contains ``day``; ``None`` when
        ``day`` itself has no official schedule.  "How long is today's schedule confirmed?"."""
        _require_date(day)
        last = self._official_run_end.get(day.year)
        return None if last is None else date(last, 12, 31)

    def with_overrides(self, overrides: CalendarOverrides) -> ChinaCalendar:
        """A new calendar, in the same mode, with ``overrides`` added to this one's.

        This is how an official year arrives: a year that ``overrides`` declares covered is
        answered officially by the new calendar (and is no longer provisional).  A day defined
        differently by the two sets of overrides raises :class:`ValidationError`
        (see :meth:`CalendarOverrides.merged`).  This calendar is unchanged.
        """
        if not isinstance(overrides, CalendarOverrides):
            raise ValidationError("overrides", f"must be CalendarOverrides, got {type(overrides).__name__}")
        return ChinaCalendar(self._overrides.merged(overrides), mode=self._mode)

    def with_mode(self, mode: CalendarMode) -> ChinaCalendar:
        """A new calendar with the same overrides in ``mode``."""
        return ChinaCalendar(self._overrides, mode=mode)

    # --- days --------------------------------------------------------------------------------------

    def _official_kind(self, ordinal: int) -> DayKind:
        entry = self._special.get(ordinal)
        if entry is not None:
            return entry[0]
        return _plain_kind(ordinal)

    def _working_in(self, year: int) -> list[int]:
        """The ordinals of the working days of ``year`` (official or provisional), ascending."""
        first, last = date(year, 1, 1).toordinal(), date(year, 12, 31).toordinal()
        if year in self._provisional:
            off = _provisional_off(year)
            return [o for o in range(first, last + 1) if o not in off and _plain_kind(o) is DayKind.WORKING_DAY]
        return [o for o in range(first, last + 1) if self._official_kind(o).is_working_day]

    def _not_covered(self, year: int) -> CalendarNotCovered:
        return CalendarNotCovered(year, self._covered_text)

    def _require_year(self, year: int) -> bool:
        """Whether ``year`` is provisional; raises if it cannot be answered at all."""
        if year in self._covered:
            return False
        if year in self._provisional:
            return True
        raise self._not_covered(year)

    def is_working_day(self, day: date) -> bool:
        ordinal = _require_date(day)
        if self._require_year(day.year):
            return ordinal not in _provisional_off(day.year) and _plain_kind(ordinal) is DayKind.WORKING_DAY
        return self._official_kind(ordinal).is_working_day

    def day_info(self, day: date) -> DayInfo:
        ordinal = _require_date(day)
        if self._require_year(day.year):
            name = provisional_holidays(day.year).get(day)
            kind = _plain_kind(ordinal) if name is None else DayKind.HOLIDAY
            return DayInfo(day, kind, name, PROVISIONAL_SOURCE, provisional=True)
        entry = self._special.get(ordinal)
        if entry is None:
            return DayInfo(day, _plain_kind(ordinal))
        kind, name, source = entry
        return DayInfo(day, kind, name, source)

    def is_provisional(self, day: date) -> bool:
        _require_date(day)
        return self._require_year(day.year)

    def provisional_between(self, start: date, end: date) -> bool:
        _require_date(start, "start")
        _require_date(end, "end")
        low, high = (start, end) if start <= end else (end, start)
        if self._run(low.year) != self._run(high.year):
            raise self._not_covered(self._run(low.year)[1] + 1)
        years = self._provisional_years
        return bisect_left(years, low.year) < bisect_right(years, high.year)

    # --- counting ----------------------------------------------------------------------------------

    def _run(self, year: int) -> tuple[int, int]:
        segment = self._segments.get(year)
        if segment is None:
            raise self._not_covered(year)
        return segment.first_year, segment.last_year

    def _segment_through(self, year: int) -> _Segment:
        """The segment containing ``year``, built at least through ``year``."""
        segment = self._segments.get(year)
        if segment is None:
            raise self._not_covered(year)
        if segment.built_through >= year:
            return segment
        with self._lock:
            segment = self._segments[year]
            if segment.built_through < year:
                added = tuple(o for y in range(segment.built_through + 1, year + 1) for o in self._working_in(y))
                segment = attrs.evolve(segment, built_through=year, working=segment.working + added)
                for y in range(segment.first_year, segment.last_year + 1):
                    self._segments[y] = segment
        return segment

    def add_working_days(self, day: date, n: int) -> date:
        ordinal = _require_date(day)
        _require_count(n)
        segment = self._segment_through(day.year)
        # bisect_right finds the first working day strictly after `day`: that one is the 1st.
        index = bisect_left(segment.working, ordinal) if n == 0 else bisect_right(segment.working, ordinal) + n - 1
        while index >= len(segment.working) and segment.built_through < segment.last_year:
            segment = self._segment_through(segment.built_through + 1)
        if index >= len(segment.working):
            raise self._not_covered(segment.last_year + 1)
        return date.fromordinal(segment.working[index])

    def next_working_day(self, day: date) -> date:
        return self.add_working_days(day, 0)

    def working_days_between(self, start: date, end: date) -> int:
        start_ordinal = _require_date(start, "start")
        end_ordinal = _require_date(end, "end")
        start_run, end_run = self._run(start.year), self._run(end.year)
        if start_run != end_run:
            # The two days lie in different stretches: a year without any schedule lies between.
            raise self._not_covered((start_run if end > start else end_run)[1] + 1)
        working = self._segment_through(max(start.year, end.year)).working
        return bisect_right(working, end_ordinal) - bisect_right(working, start_ordinal)


def _plain_kind(ordinal: int) -> DayKind:
    # date.fromordinal(1) is a Monday, so (ordinal - 1) % 7 is the ISO weekday - 1.
    return DayKind.WEEKEND if (ordinal - 1) % 7 >= 5 else DayKind.WORKING_DAY


@functools.cache
def _provisional_off(year: int) -> frozenset[int]:
    """The ordinals of the provisional holidays of ``year``."""
    return frozenset(day.toordinal() for day in provisional_holidays(year))


def _working_kind(day: date) -> DayKind:
    return DayKind.SWAPPED_WORKING_DAY if day.weekday() >= 5 else DayKind.WORKING_DAY


@functools.cache
def default_calendar() -> ChinaCalendar:
    """The shared provisional calendar built from ``chinese_calendar`` alone (built once, then cached).

    Years without an official schedule are answered provisionally, so a running portal keeps
    working across the new year; every such day and deadline is marked.  Use
    :func:`strict_calendar` to refuse them instead, ``default_calendar().with_overrides(o)`` to
    add a notice, and ``ChinaCalendar(overrides, mode=...)`` for anything else.
    """
    return ChinaCalendar(mode=CalendarMode.PROVISIONAL)


@functools.cache
def strict_calendar() -> ChinaCalendar:
    """The shared strict calendar built from ``chinese_calendar`` alone: a year without an
    official schedule raises :class:`~jianyi_flow.errors.CalendarNotCovered` (for audits)."""
    return ChinaCalendar(mode=CalendarMode.STRICT)


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


# --- health ---------------------------------------------------------------------------------------

DEFAULT_LOOKAHEAD_DAYS = 90
"""How far ahead :func:`calendar_health` looks by default: the default research period (60
calendar days) plus the longest extension (30), the furthest a deadline set today with
:data:`~jianyi_flow.domain.deadlines.DEFAULT_POLICY` normally reaches."""


class HealthStatus(enum.Enum):
    """The calendar's state for the days a deadline set today can reach."""

    OK = "ok"
    """Every day of the window has its official schedule."""
    PROVISIONAL = "provisional"
    """Some days of the window are provisional: deadlines reaching them are marked and will be
    re-timed when the official schedule is loaded."""
    UNCOVERED = "uncovered"
    """Some days of the window cannot be answered at all (strict mode, or past the derivable
    years): a command whose deadline reaches them fails with ``CalendarNotCovered``."""


@attrs.frozen
class CalendarHealth:
    """How long the official schedule lasts, seen from ``today`` (see :func:`calendar_health`).

    * ``official_until``: the last day of the unbroken official schedule that contains
      ``today`` (``None`` when today itself has none); ``official_days_left`` the number of days
      after ``today`` up to it (0 when ``None``).
    * ``provisional_years`` / ``uncovered_years``: the years of the window
      ``today``..``today + lookahead_days`` answered provisionally / not at all.
    """

    today: date
    mode: CalendarMode
    lookahead_days: int
    official_until: date | None
    official_days_left: int
    provisional_years: tuple[int, ...]
    uncovered_years: tuple[int, ...]
    status: HealthStatus

    @property
    def window_end(self) -> date:
        return self.today + timedelta(days=self.lookahead_days)

    def summary(self) -> str:
        """One English paragraph for an operator."""
        if self.official_until is None:
            official = f"{self.today.isoformat()} has no official holiday schedule"
        else:
            official = (
                f"the official holiday schedule runs until {self.official_until.isoformat()} "
                f"({self.official_days_left} days after {self.today.isoformat()})"
            )
        window = f"the next {self.lookahead_days} days (to {self.window_end.isoformat()})"
        if self.status is HealthStatus.OK:
            state = f"{window} are all covered officially"
        elif self.status is HealthStatus.PROVISIONAL:
            state = (
                f"{window} reach {_describe_years(self.provisional_years)}, answered provisionally from the "
                "全国年节及纪念日放假办法: deadlines there are marked provisional; load the State Council notice "
                "as calendar overrides to confirm them"
            )
        else:
            state = (
                f"{window} reach {_describe_years(self.uncovered_years)}, which this {self.mode.value} calendar "
                "cannot answer: commands whose deadlines fall there will fail until the notice is loaded"
            )
        return f"{self.mode.value} calendar: {official}; {state}."

    def summary_zh(self) -> str:
        """The same in Chinese."""
        if self.official_until is None:
            official = f"{self.today.isoformat()} 没有正式节假日安排"
        else:
            official = f"正式节假日安排至 {self.official_until.isoformat()}（还剩 {self.official_days_left} 天）"
        window = f"未来 {self.lookahead_days} 天（至 {self.window_end.isoformat()}）"
        if self.status is HealthStatus.OK:
            state = f"{window}均有正式安排"
        elif self.status is HealthStatus.PROVISIONAL:
            state = (
                f"{window}涉及 {_describe_years(self.provisional_years)} 年，按《全国年节及纪念日放假办法》"
                f"推算，相关期限标为{PROVISIONAL_LABEL_ZH}；请导入国务院办公厅通知"
            )
        else:
            state = f"{window}涉及 {_describe_years(self.uncovered_years)} 年，无法计算期限；请导入国务院办公厅通知"
        mode = "暂定模式" if self.mode is CalendarMode.PROVISIONAL else "严格模式"
        return f"{mode}：{official}；{state}。"

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready mapping (dates as ISO strings)."""
        return {
            "today": self.today.isoformat(),
            "mode": self.mode.value,
            "status": self.status.value,
            "lookahead_days": self.lookahead_days,
            "window_end": self.window_end.isoformat(),
            "official_until": None if self.official_until is None else self.official_until.isoformat(),
            "official_days_left": self.official_days_left,
            "provisional_years": list(self.provisional_years),
            "uncovered_years": list(self.uncovered_years),
            "summary": self.summary(),
            "summary_zh": self.summary_zh(),
        }


def calendar_health(
    calendar: BusinessCalendar, today: date | datetime, *, lookahead_days: int = DEFAULT_LOOKAHEAD_DAYS
) -> CalendarHealth:
    """How many days of official schedule remain after ``today``, and which years of the window
    ``today``..``today + lookahead_days`` are provisional or not answerable at all.

    ``today`` is a date, or an aware datetime whose Asia/Shanghai day is used (time is
    injected: pass ``clock.now()``).  Which open *deadlines* are provisional is the workflow's
    question, not the calendar's.
    """
    if isinstance(today, datetime):
        today = _local_day(today)
    _require_date(today, "today")
    if isinstance(lookahead_days, bool) or not isinstance(lookahead_days, int) or not 0 <= lookahead_days <= 3660:
        raise ValidationError("lookahead_days", f"must be a whole number of days from 0 to 3660, got "
                                                f"{lookahead_days!r}", code="out_of_range",
                              details={"min": 0, "max": 3660})
    end = today + timedelta(days=lookahead_days)
    provisional: list[int] = []
    uncovered: list[int] = []
    for year in range(today.year, end.year + 1):
        try:
            if calendar.is_provisional(date(year, 1, 1)):
                provisional.append(year)
        except CalendarNotCovered:
            uncovered.append(year)
    official_until: date | None = None
    last = calendar.official_until
    year = today.year
    while last is not None and year <= last.year and year not in provisional and year not in uncovered:
        try:
            if calendar.is_provisional(date(year, 1, 1)):
                break
        except CalendarNotCovered:
            break
        official_until = date(year, 12, 31)
        year += 1
    if uncovered:
        status = HealthStatus.UNCOVERED
    elif provisional:
        status = HealthStatus.PROVISIONAL
    else:
        status = HealthStatus.OK
    return CalendarHealth(
        today=today,
        mode=calendar.mode,
        lookahead_days=lookahead_days,
        official_until=official_until,
        official_days_left=0 if official_until is None else (official_until - today).days,
        provisional_years=tuple(provisional),
        uncovered_years=tuple(uncovered),
        status=status,
    )
