"""The statutory holidays of a year, derived from the 全国年节及纪念日放假办法 (provisional days).

The State Council publishes each year's holiday schedule (国务院办公厅关于 YYYY 年部分节假日安排的
通知) only in the autumn before.  For a year without one, :class:`~jianyi_flow.domain.calendar.ChinaCalendar`
in provisional mode answers from the rule the notices apply: Art. 2 of the 全国年节及纪念日放假办法 as
revised by the State Council's decision of 2024-11-10 (国务院令第795号), in force from 2025-01-01:

* 元旦: 1 day, 1 January;
* 春节: 4 days, 农历除夕 and 正月初一 to 初三;
* 清明节: 1 day, the day of the 清明 solar term;
* 劳动节: 2 days, 1 and 2 May;
* 端午节: 1 day, 农历五月初五;
* 中秋节: 1 day, 农历八月十五;
* 国庆节: 3 days, 1 to 3 October.

Lunar dates and the 清明 solar term come from the PyPI package ``lunar_python`` (import name
``lunar_python``), which computes them with the astronomical series of 寿星天文历; this module
holds no lunar tables.
除夕 is the last day of the twelfth lunar month (the 29th or the 30th), i.e. the day before
正月初一.

What a derivation cannot know, and so does not contain: the 调休 arrangement (weekdays given
off and weekend days worked in exchange), the weekday on which a holiday that falls on a
Saturday or Sunday is made up (补假, Art. 6 of the 办法: the notice chooses the day), and
one-off holidays a notice may add.  Days derived here are therefore only ever used as
*provisional* days, marked as such wherever they reach a deadline.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import date, timedelta
from importlib.metadata import version
from types import MappingProxyType

import attrs
from lunar_python import Lunar  # type: ignore[import-untyped]

from ..errors import ValidationError

__all__ = [
    "MEASURES",
    "PROVISIONAL_FIRST_YEAR",
    "PROVISIONAL_LAST_YEAR",
    "PROVISIONAL_SOURCE",
    "StatutoryHoliday",
    "lunar_new_year_eve",
    "provisional_holidays",
    "qingming",
    "statutory_holidays",
]

MEASURES = "全国年节及纪念日放假办法 (2024年11月10日修订, 国务院令第795号)"
"""The rule provisional days are derived from."""

PROVISIONAL_FIRST_YEAR = 2025
"""The first year the 2024 revision of the 办法 governs (it took effect on 2025-01-01)."""

PROVISIONAL_LAST_YEAR = 2099
"""The last year the calendar derives: a deadline further ahead than this is not a plausible
question, and refusing it (``CalendarNotCovered``) is better than answering it."""

PROVISIONAL_SOURCE = (
    "provisional: 全国年节及纪念日放假办法 Art. 2 (2024 revision); "
    f"lunar dates by lunar_python {version('lunar_python')}"
)
"""The ``source`` of every day of a provisional year."""


@attrs.frozen
class StatutoryHoliday:
    """One day off that Art. 2 of the 办法 gives every citizen.

    ``name`` is the English name ``chinese_calendar`` uses (e.g. ``"Spring Festival"``) so that
    derived and published days describe the same festival; ``rule_zh`` is the 办法's wording
    for this particular day (e.g. ``农历除夕``).
    """

    day: date
    name: str
    rule_zh: str


def _check_year(year: int) -> int:
    if isinstance(year, bool) or not isinstance(year, int):
        raise ValidationError("year", f"must be an integer, got {year!r}")
    if not PROVISIONAL_FIRST_YEAR <= year <= PROVISIONAL_LAST_YEAR:
        raise ValidationError(
            "year",
            f"{year} is outside {PROVISIONAL_FIRST_YEAR}-{PROVISIONAL_LAST_YEAR}, the years the 2024 revision "
            "of the 办法 is applied to",
        )
    return year


def _solar(lunar: Lunar) -> date:
    solar = lunar.getSolar()
    return date(solar.getYear(), solar.getMonth(), solar.getDay())


def lunar_new_year_eve(year: int) -> date:
    """除夕 falling in the Gregorian ``year``: the last day of the twelfth lunar month, which is
    the day before 正月初一 of lunar year ``year``."""
    return _solar(Lunar.fromYmd(_check_year(year), 1, 1)) - timedelta(days=1)


def qingming(year: int) -> date:
    """The day (Beijing time, as ``lunar_python`` computes it) of the 清明 solar term in ``year``."""
    solar = Lunar.fromYmd(_check_year(year), 1, 1).getJieQiTable()["清明"]
    return date(solar.getYear(), solar.getMonth(), solar.getDay())


@functools.cache
def statutory_holidays(year: int) -> tuple[StatutoryHoliday, ...]:
    """The 13 days off of Art. 2 of the 办法 (2024 revision) in ``year``, in date order.

    When two festivals fall on the same day (中秋 can fall on 1-3 October) that day is listed
    once, as National Day, the name ``chinese_calendar`` gives such combined blocks; the
    year then has 12 days.  ``year`` must lie in
    :data:`PROVISIONAL_FIRST_YEAR`..:data:`PROVISIONAL_LAST_YEAR` (``ValidationError`` otherwise).
    """
    _check_year(year)
    new_year = Lunar.fromYmd(year, 1, 1)
    eve = lunar_new_year_eve(year)
    days = [
        StatutoryHoliday(date(year, 1, 1), "New Year's Day", "1月1日"),
        StatutoryHoliday(eve, "Spring Festival", "农历除夕"),
        StatutoryHoliday(_solar(new_year), "Spring Festival", "正月初一"),
        StatutoryHoliday(_solar(new_year) + timedelta(days=1), "Spring Festival", "正月初二"),
        StatutoryHoliday(_solar(new_year) + timedelta(days=2), "Spring Festival", "正月初三"),
        StatutoryHoliday(qingming(year), "Tomb-sweeping Day", "农历清明当日"),
        StatutoryHoliday(date(year, 5, 1), "Labour Day", "5月1日"),
        StatutoryHoliday(date(year, 5, 2), "Labour Day", "5月2日"),
        StatutoryHoliday(_solar(Lunar.fromYmd(year, 5, 5)), "Dragon Boat Festival", "农历端午当日"),
        StatutoryHoliday(_solar(Lunar.fromYmd(year, 8, 15)), "Mid-autumn Festival", "农历中秋当日"),
        StatutoryHoliday(date(year, 10, 1), "National Day", "10月1日"),
        StatutoryHoliday(date(year, 10, 2), "National Day", "10月2日"),
        StatutoryHoliday(date(year, 10, 3), "National Day", "10月3日"),
    ]
    by_day: dict[date, StatutoryHoliday] = {}
    for holiday in days:  # National Day comes last, so it wins a shared day
        by_day[holiday.day] = holiday
    return tuple(sorted(by_day.values(), key=lambda h: h.day))


@functools.cache
def provisional_holidays(year: int) -> Mapping[date, str]:
    """``{day: holiday name}`` of :func:`statutory_holidays` (read-only)."""
    return MappingProxyType({h.day: h.name for h in statutory_holidays(year)})
