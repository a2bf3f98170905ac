"""``jianyi-flow calendar``: look at the business calendar from the command line.

- ``jianyi-flow calendar show YEAR [--overrides FILE]... [--strict] [--format text|json]``
  prints a year: a month-by-month grid, the holidays and 调休 working days, counts, and
  whether the year is official or provisional (暂定).
- ``jianyi-flow calendar check FILE [--overrides FILE]... [--strict] [--format text|json]``
  loads a State Council notice typed into an override file and lists, per year, the days the
  file declares differently from what the calendar answers now (e.g. the provisional
  derivation against the notice's 调休).  Exit status 0 when the file loads, 1 (with a one-line
  message naming the culprit) when it does not.
- ``jianyi-flow calendar health [--overrides FILE]... [--strict] [--today DATE] [--lookahead DAYS]
  [--format text|json]`` says how long the official schedule lasts and whether the coming
  days are provisional.  Exit status 1 when some day of the window cannot be answered at all.

``--overrides`` may be given several times (e.g. one file per year); ``--strict`` builds a
strict calendar (years without an official schedule are refused) instead of the default
provisional one.  Errors are :class:`~jianyi_flow.errors.JianyiFlowError` s, which the
``jianyi-flow`` entry point prints as one line.
"""

from __future__ import annotations

import argparse
import calendar as stdlib_calendar
import json
import sys
import unicodedata
from collections import Counter
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from .domain.calendar import (
    DEFAULT_LOOKAHEAD_DAYS,
    PROVISIONAL_LABEL_ZH,
    CalendarMode,
    CalendarOverrides,
    ChinaCalendar,
    DayInfo,
    DayKind,
    HealthStatus,
    calendar_health,
    holiday_label_zh,
)
from .domain.holidays import PROVISIONAL_FIRST_YEAR, PROVISIONAL_LAST_YEAR, statutory_holidays
from .errors import CalendarNotCovered, ValidationError

__all__ = ["COMMANDS", "add_parsers", "run"]

COMMANDS = ("calendar",)

_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MARKS = {DayKind.HOLIDAY: "*", DayKind.SWAPPED_WORKING_DAY: "+"}
_KIND_TEXT = {
    DayKind.WORKING_DAY: "working day",
    DayKind.WEEKEND: "weekend",
    DayKind.HOLIDAY: "holiday",
    DayKind.SWAPPED_WORKING_DAY: "working day (调休上班)",
}


def _year(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a year, got {text!r}") from None
    if not 1 <= value <= 9998:
        raise argparse.ArgumentTypeError(f"expected a year between 1 and 9998, got {value}")
    return value


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None


def _days(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of days, got {text!r}") from None
    if not 0 <= value <= 3660:
        raise argparse.ArgumentTypeError(f"expected 0 to 3660 days, got {value}")
    return value


def add_parsers(sub: Any) -> None:
    """Add ``calendar show|check|health`` to ``jianyi-flow``'s sub-parsers ``sub``."""
    cal = sub.add_parser("calendar", help="show, check and monitor the holiday calendar")
    # The nested parsers are of the same class as ``cal``, so usage errors are reported the same way.
    cal_sub = cal.add_subparsers(dest="calendar_command", required=True, parser_class=type(cal))

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--overrides", action="append", default=[], metavar="FILE",
            help="calendar overrides (.toml or .json) to load first; may be repeated",
        )
        p.add_argument("--strict", action="store_true", help="refuse years without an official schedule")
        p.add_argument("--format", choices=["text", "json"], default="text", help="output format (default: text)")

    show = cal_sub.add_parser("show", help="print a year: grid, holidays, 调休, provisional marks")
    show.add_argument("year", type=_year, help="the year, e.g. 2027")
    common(show)

    check = cal_sub.add_parser("check", help="check a State Council notice file against the calendar")
    check.add_argument("file", help="the notice as calendar overrides (.toml or .json)")
    common(check)

    health = cal_sub.add_parser("health", help="how long the official schedule lasts; provisional years ahead")
    health.add_argument("--today", type=_day, default=None, help="the day to look from (default: today in Shanghai)")
    health.add_argument(
        "--lookahead", type=_days, default=DEFAULT_LOOKAHEAD_DAYS,
        help=f"days to look ahead (default: {DEFAULT_LOOKAHEAD_DAYS})",
    )
    health.add_argument("--store", default=None,
                        help="database URL: also count the open deadlines that are provisional")
    common(health)

    retime = cal_sub.add_parser("retime", help="re-count provisional deadlines once the official year is loaded")
    retime.add_argument("--store", required=True, help="database URL")
    retime.add_argument("--reason", required=True, help="why, e.g. the notice's title (recorded on every event)")
    common(retime)


def run(args: argparse.Namespace) -> int:
    """Run a parsed ``calendar`` command; returns the exit status."""
    calendar = _calendar(args.overrides, args.strict)
    if args.calendar_command == "show":
        return _show(calendar, args.year, args.format)
    if args.calendar_command == "check":
        return _check(calendar, args.file, args.format)
    if args.calendar_command == "health":
        return _health(calendar, args.today, args.lookahead, args.format, args.store)
    if args.calendar_command == "retime":
        return _retime(calendar, args.store, args.reason, args.format)
    raise ValidationError("calendar_command", f"unknown calendar command {args.calendar_command!r}")


def _calendar(files: Sequence[str], strict: bool) -> ChinaCalendar:
    overrides = CalendarOverrides()
    for file in files:
        overrides = overrides.merged(CalendarOverrides.from_file(file))
    return ChinaCalendar(overrides, mode=CalendarMode.STRICT if strict else CalendarMode.PROVISIONAL)


def _write(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def _write_json(data: object) -> None:
    json.dump(data, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


def _width(text: str) -> int:
    """Columns ``text`` takes in a terminal (CJK characters take two)."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))


def _year_days(calendar: ChinaCalendar, year: int) -> list[DayInfo]:
    day, days = date(year, 1, 1), []
    while day.year == year:
        days.append(calendar.day_info(day))
        day += timedelta(days=1)
    return days


def _notable(info: DayInfo) -> bool:
    """Holidays, 调休 working days, and weekdays an override made working days again."""
    if info.kind in (DayKind.HOLIDAY, DayKind.SWAPPED_WORKING_DAY):
        return True
    return info.kind is DayKind.WORKING_DAY and info.source is not None and not info.provisional


def _counts(days: Sequence[DayInfo]) -> dict[str, int]:
    kinds = Counter(info.kind for info in days)
    return {
        "days": len(days),
        "working_days": kinds[DayKind.WORKING_DAY] + kinds[DayKind.SWAPPED_WORKING_DAY],
        "weekends": kinds[DayKind.WEEKEND],
        "holidays": kinds[DayKind.HOLIDAY],
        "swapped_working_days": kinds[DayKind.SWAPPED_WORKING_DAY],
    }


def _day_dict(info: DayInfo) -> dict[str, object]:
    return {
        "date": info.date.isoformat(),
        "weekday": _WEEKDAYS[info.date.weekday()],
        "kind": info.kind.value,
        "working_day": info.is_working_day,
        "holiday": info.holiday,
        "holiday_zh": info.holiday_zh,
        "source": info.source,
        "provisional": info.provisional,
    }


def _describe(info: DayInfo) -> str:
    text = _KIND_TEXT[info.kind]
    if info.holiday is not None:
        text += f" {holiday_label_zh(info.holiday)} {info.holiday}" if info.kind is DayKind.HOLIDAY else (
            f" for {holiday_label_zh(info.holiday)} {info.holiday}"
        )
    if info.provisional:
        text += f" ({PROVISIONAL_LABEL_ZH})"
    return text


# --- show -----------------------------------------------------------------------------------------


def _show(calendar: ChinaCalendar, year: int, fmt: str) -> int:
    days = _year_days(calendar, year)  # raises CalendarNotCovered for a year it cannot answer
    provisional = days[0].provisional
    counts = _counts(days)
    if fmt == "json":
        _write_json({
            "year": year,
            "mode": calendar.mode.value,
            "provisional": provisional,
            "sources": sorted({info.source for info in days if info.source is not None}),
            "counts": counts,
            "days": [_day_dict(info) for info in days],
        })
        return 0
    lines = []
    sources: list[str] = []
    if provisional:
        lines += [
            f"{year}: PROVISIONAL ({PROVISIONAL_LABEL_ZH}) - no official holiday schedule is loaded for {year}.",
            "  Derived from 全国年节及纪念日放假办法 Art. 2 (2024 revision): the statutory holidays, weekends off;",
            "  no 调休 and no 补假 (only the State Council notice can give them). Every day below is provisional.",
            f"  source: {days[0].source}",
        ]
    else:
        sources = sorted({info.source for info in days if info.source is not None})
        lines.append(f"{year}: official holiday schedule; source: {'; '.join(sources) or 'none'}.")
    lines.append(
        f"  {counts['working_days']} working days ({counts['swapped_working_days']} of them 调休上班 weekend days), "
        f"{counts['weekends']} weekend days off, {counts['holidays']} holidays; {counts['days']} days."
    )
    lines.append("")
    lines += _grid(year, {info.date: info for info in days})
    lines += ["", "  * holiday (休)   + weekend day worked (调休上班)", ""]
    notable = [info for info in days if _notable(info)]
    if notable:
        lines.append("Holidays and 调休:")
        for info in notable:
            lines.append(f"  {info.date.isoformat()} {_WEEKDAYS[info.date.weekday()]}  {_describe(info)}")
            if len(sources) > 1 and info.source is not None:
                lines.append(f"      source: {info.source}")
    else:
        lines.append("No holidays.")
    _write("\n".join(lines))
    return 0


def _grid(year: int, info: dict[date, DayInfo]) -> list[str]:
    """Two months side by side, Monday first, each day followed by its mark (60 columns)."""
    cell = 4
    month_width = 7 * cell
    rows: list[str] = []
    for first_month in range(1, 13, 2):
        months = range(first_month, first_month + 2)
        rows.append("    ".join(f"{stdlib_calendar.month_name[m]} {year}".center(month_width) for m in months).rstrip())
        rows.append("    ".join("Mo  Tu  We  Th  Fr  Sa  Su  " for _ in months).rstrip())
        weeks = [stdlib_calendar.Calendar().monthdayscalendar(year, m) for m in months]
        for w in range(max(len(x) for x in weeks)):
            parts = []
            for m, month_weeks in zip(months, weeks, strict=True):
                week = month_weeks[w] if w < len(month_weeks) else [0] * 7
                text = ""
                for d in week:
                    mark = " " if d == 0 else _MARKS.get(info[date(year, m, d)].kind, " ")
                    text += " " * cell if d == 0 else f"{d:>2}{mark} "
                parts.append(text)
            rows.append("    ".join(parts).rstrip())
        rows.append("")
    return rows[:-1]


# --- check ----------------------------------------------------------------------------------------


def _check(calendar: ChinaCalendar, file: str, fmt: str) -> int:
    overrides = CalendarOverrides.from_file(file)
    checked = calendar.with_overrides(overrides)  # refuses days of years it cannot place
    years = sorted(overrides.covered_years | {d.year for d in (*overrides.holidays, *overrides.working_days)})
    reports = [_check_year(calendar, checked, overrides, year) for year in years]
    if fmt == "json":
        _write_json({"file": str(file), "mode": calendar.mode.value, "years": reports})
        return 0
    name = Path(file).name
    lines = [
        f"{name} loads: {len(overrides.holidays)} holidays, {len(overrides.working_days)} working days, "
        f"covered years: {', '.join(map(str, sorted(overrides.covered_years))) or 'none'}."
    ]
    for report in reports:
        year = report["year"]
        lines.append("")
        lines.append(f"{year}: now {report['now']}; with the file {report['with_file']}.")
        differences = report["differences"]
        if not differences:
            lines.append("  no day differs.")
        else:
            lines.append(f"  {len(differences)} days differ:")
            for diff in differences:
                now_text = _pad(diff["now_text"], 44)
                lines.append(f"    {diff['date']} {diff['weekday']}  now: {now_text} file: {diff['file_text']}")
        if report["working_days_now"] is not None:
            now_count, file_count = report["working_days_now"], report["working_days_file"]
            lines.append(f"  working days: now {now_count}, with the file {file_count}.")
        for warning in report["warnings"]:
            lines.append(f"  warning: {warning}")
    _write("\n".join(lines))
    return 0


def _check_year(
    calendar: ChinaCalendar, checked: ChinaCalendar, overrides: CalendarOverrides, year: int
) -> dict[str, Any]:
    try:
        now_days: list[DayInfo] | None = _year_days(calendar, year)
    except CalendarNotCovered:
        now_days = None
    file_days = _year_days(checked, year)
    if now_days is None:
        now = f"not covered by this {calendar.mode.value} calendar"
    elif now_days[0].provisional:
        now = f"provisional ({PROVISIONAL_LABEL_ZH}, derived from the 办法)"
    else:
        now = "official"
    with_file = "official" if year in overrides.covered_years else "official, amended"
    differences = []
    for index, new in enumerate(file_days):
        old = None if now_days is None else now_days[index]
        if old is not None and (old.kind, old.holiday) == (new.kind, new.holiday):
            continue
        if old is None and new.kind in (DayKind.WORKING_DAY, DayKind.WEEKEND) and new.source is None:
            continue  # nothing to compare against; ordinary days of the file are listed by `show`
        differences.append({
            "date": new.date.isoformat(),
            "weekday": _WEEKDAYS[new.date.weekday()],
            "now": None if old is None else _day_dict(old),
            "file": _day_dict(new),
            "now_text": "not covered" if old is None else _describe(old),
            "file_text": _describe(new),
        })
    warnings = []
    if PROVISIONAL_FIRST_YEAR <= year <= PROVISIONAL_LAST_YEAR:
        for holiday in statutory_holidays(year):
            info = checked.day_info(holiday.day)
            if info.is_working_day:
                warnings.append(
                    f"{holiday.day.isoformat()} ({holiday_label_zh(holiday.name)}, {holiday.rule_zh}) is a working "
                    "day in the file, but 全国年节及纪念日放假办法 Art. 2 gives it off"
                )
    return {
        "year": year,
        "now": now,
        "with_file": with_file,
        "differences": differences,
        "working_days_now": None if now_days is None else _counts(now_days)["working_days"],
        "working_days_file": _counts(file_days)["working_days"],
        "warnings": warnings,
    }


# --- health ---------------------------------------------------------------------------------------


def _flow(url: str, calendar: ChinaCalendar) -> Any:
    from .cli_ops import require_existing
    from .domain.clock import SystemClock
    from .service.flow import Flow
    from .sql import SqlStore

    require_existing(url)
    return Flow(SqlStore(url), SystemClock(), calendar=calendar)


def _retime(calendar: ChinaCalendar, url: str, reason: str, fmt: str) -> int:
    """Re-count the store's open provisional deadlines on ``calendar`` (with the overrides loaded)."""
    flow = _flow(url, calendar)
    try:
        result = flow.retime(reason, calendar=calendar)
    finally:
        flow.store.close()
    if fmt == "json":
        _write_json({"retimed": [e.suggestion_id for e in result.events], "skipped": list(result.skipped)})
    else:
        _write(f"re-timed {len(result.events)} suggestions; {len(result.skipped)} left as they were")
    return 0


def _health(calendar: ChinaCalendar, today: date | None, lookahead: int, fmt: str, url: str | None = None) -> int:
    provisional: tuple[int, str | None] | None = None
    if url is not None:
        flow = _flow(url, calendar)
        try:
            mine = flow.calendar_health()
        finally:
            flow.store.close()
        earliest = mine.earliest_provisional_due
        provisional = (mine.provisional_deadlines, None if earliest is None else earliest.isoformat())
    if today is None:
        from .domain.clock import SystemClock, local_date

        today = local_date(SystemClock().now())
    health = calendar_health(calendar, today, lookahead_days=lookahead)
    if fmt == "json":
        data = health.to_dict()
        if provisional is not None:
            data["provisional_deadlines"], data["earliest_provisional_due"] = provisional
        _write_json(data)
    else:
        official = "none" if health.official_until is None else (
            f"{health.official_until.isoformat()} ({health.official_days_left} days left)"
        )
        _write("\n".join([
            f"status:            {health.status.value}",
            f"mode:              {health.mode.value}",
            f"today:             {health.today.isoformat()}",
            f"official until:    {official}",
            f"window:            {health.lookahead_days} days, to {health.window_end.isoformat()}",
            f"provisional years: {', '.join(map(str, health.provisional_years)) or 'none'}",
            f"uncovered years:   {', '.join(map(str, health.uncovered_years)) or 'none'}",
            *([] if provisional is None else
              [f"open deadlines counted over provisional days: {provisional[0]}"
               + (f" (earliest {provisional[1]})" if provisional[1] else "")]),
            "",
            health.summary(),
            health.summary_zh(),
        ]))
    return 1 if health.status is HealthStatus.UNCOVERED else 0
