"""Provisional days: years without an official schedule, derived from the 全国年节及纪念日放假办法.

The expected 2027 and 2028 holidays below are written down by hand, not computed: the lunar dates
(除夕, 正月初一, 端午, 中秋) agree with the table-based ``lunardate`` package and the 清明 days with
``chinese_calendar``'s solar-term formula, two sources independent of ``lunar_python``, which the
code uses.  2027 and 2028 are "no 年三十" years: 除夕 is 腊月廿九, so a rule "腊月三十" would fail here.
"""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta

import chinese_calendar  # type: ignore[import-untyped]
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lunar_python import Solar  # type: ignore[import-untyped]

from jianyi_flow.domain.calendar import (
    PACKAGE_SOURCE,
    PROVISIONAL_SOURCE,
    CalendarHealth,
    CalendarMode,
    CalendarOverrides,
    ChinaCalendar,
    DayInfo,
    DayKind,
    HealthStatus,
    calendar_health,
    default_calendar,
    strict_calendar,
)
from jianyi_flow.domain.holidays import (
    PROVISIONAL_FIRST_YEAR,
    PROVISIONAL_LAST_YEAR,
    lunar_new_year_eve,
    provisional_holidays,
    qingming,
    statutory_holidays,
)
from jianyi_flow.errors import CalendarNotCovered, ValidationError

NY, SF, QM, LB = "New Year's Day", "Spring Festival", "Tomb-sweeping Day", "Labour Day"
DB, MA, ND = "Dragon Boat Festival", "Mid-autumn Festival", "National Day"


def d(text: str) -> date:
    return date.fromisoformat(text)


# fmt: off
EXPECTED: dict[int, dict[date, str]] = {
    2027: {
        d("2027-01-01"): NY,
        d("2027-02-05"): SF, d("2027-02-06"): SF, d("2027-02-07"): SF, d("2027-02-08"): SF,  # 除夕 = 腊月廿九
        d("2027-04-05"): QM,
        d("2027-05-01"): LB, d("2027-05-02"): LB,
        d("2027-06-09"): DB,
        d("2027-09-15"): MA,
        d("2027-10-01"): ND, d("2027-10-02"): ND, d("2027-10-03"): ND,
    },
    2028: {
        d("2028-01-01"): NY,
        d("2028-01-25"): SF, d("2028-01-26"): SF, d("2028-01-27"): SF, d("2028-01-28"): SF,  # 除夕 = 腊月廿九
        d("2028-04-04"): QM,
        d("2028-05-01"): LB, d("2028-05-02"): LB,
        d("2028-05-28"): DB,
        # 中秋 (八月十五) falls on 10-03, inside National Day: one day off for both, named National Day.
        d("2028-10-01"): ND, d("2028-10-02"): ND, d("2028-10-03"): ND,
    },
}
# fmt: on

PROV = ChinaCalendar()
STRICT = ChinaCalendar(mode=CalendarMode.STRICT)


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=k) for k in range((last - first).days + 1)]


# --- the official years answer exactly as before ----------------------------------------------------


def _expected_from_package(day: date) -> DayInfo:
    """The DayInfo the calendar gave before provisional days existed, from chinese_calendar's own API."""
    is_holiday, name = chinese_calendar.get_holiday_detail(day)
    if is_holiday:
        kind = DayKind.HOLIDAY if name is not None else DayKind.WEEKEND
    elif name is not None:
        kind = DayKind.SWAPPED_WORKING_DAY if day.weekday() >= 5 else DayKind.WORKING_DAY
    else:
        kind = DayKind.WORKING_DAY
    assert chinese_calendar.is_workday(day) is kind.is_working_day
    return DayInfo(day, kind, name, PACKAGE_SOURCE if name is not None else None, False)


@pytest.mark.parametrize("calendar", [PROV, STRICT, default_calendar(), strict_calendar()])
def test_every_day_of_2024_to_2026_answers_as_chinese_calendar_says(calendar: ChinaCalendar) -> None:
    for day in _days(date(2024, 1, 1), date(2026, 12, 31)):
        expected = _expected_from_package(day)
        assert calendar.day_info(day) == expected, day
        assert calendar.is_working_day(day) is expected.is_working_day, day
        assert calendar.is_provisional(day) is False, day


def test_working_day_counts_of_official_years_are_unchanged() -> None:
    for year, count in ((2024, 251), (2025, 248), (2026, 248)):
        assert PROV.working_days_between(date(year - 1, 12, 31), date(year, 12, 31)) == count


# --- 2027 and 2028 from the 办法 -----------------------------------------------------------------


@pytest.mark.parametrize("year", sorted(EXPECTED))
def test_provisional_holidays_are_the_dates_the_measures_give(year: int) -> None:
    assert dict(provisional_holidays(year)) == EXPECTED[year]
    for day in _days(date(year, 1, 1), date(year, 12, 31)):
        info = PROV.day_info(day)
        name = EXPECTED[year].get(day)
        plain = DayKind.WEEKEND if day.weekday() >= 5 else DayKind.WORKING_DAY
        assert info == DayInfo(day, DayKind.HOLIDAY if name else plain, name, PROVISIONAL_SOURCE, True), day
        assert PROV.is_working_day(day) is (name is None and day.weekday() < 5), day
        assert PROV.is_provisional(day), day


@pytest.mark.parametrize(("year", "working", "holidays"), [(2027, 254, 13), (2028, 251, 12)])
def test_provisional_year_counts(year: int, working: int, holidays: int) -> None:
    """2027: 261 weekdays - 7 holidays on weekdays; 2028: 260 weekdays - 9 (中秋 shares 10-03)."""
    assert PROV.working_days_between(date(year - 1, 12, 31), date(year, 12, 31)) == working
    assert len(statutory_holidays(year)) == holidays


@pytest.mark.parametrize(
    ("year", "eve", "day"),
    [(2027, date(2027, 2, 5), 29), (2028, date(2028, 1, 25), 29), (2030, date(2030, 2, 2), 30)],
)
def test_new_year_eve_is_the_last_day_of_the_twelfth_lunar_month(year: int, eve: date, day: int) -> None:
    """腊月 has 29 days before 2027 and 2028, 30 before 2030 (written down by hand, like EXPECTED)."""
    assert lunar_new_year_eve(year) == eve
    lunar = Solar.fromYmd(eve.year, eve.month, eve.day).getLunar()
    assert (lunar.getMonth(), lunar.getDay()) == (12, day)
    following = Solar.fromYmd(eve.year, eve.month, eve.day).next(1).getLunar()
    assert (following.getMonth(), following.getDay()) == (1, 1)


def test_qingming_agrees_with_chinese_calendars_solar_term_formula_for_every_derived_year() -> None:
    """Two independent computations of the 清明 day: lunar_python's astronomical one and the 寿星
    formula (with its correction table) in chinese_calendar."""
    for year in range(PROVISIONAL_FIRST_YEAR, PROVISIONAL_LAST_YEAR + 1):
        terms = chinese_calendar.get_solar_terms(date(year, 4, 1), date(year, 4, 30))
        assert [day for day, name in terms if name == "清明"] == [qingming(year)], year


@pytest.mark.parametrize("year", [2025, 2026])
def test_the_derivation_reproduces_the_statutory_days_of_the_published_years(year: int) -> None:
    """2025 and 2026 were published under the same 办法: each derived day is off in the notice."""
    for holiday in statutory_holidays(year):
        info = STRICT.day_info(holiday.day)
        assert info.kind is DayKind.HOLIDAY, holiday
        # The 2025 notice joined 中秋 (10-06) to the National Day block.
        assert info.holiday in (holiday.name, ND), holiday


def test_statutory_holidays_name_the_rule() -> None:
    rules = [(h.day, h.rule_zh) for h in statutory_holidays(2027) if h.name == SF]
    assert rules == [
        (d("2027-02-05"), "农历除夕"), (d("2027-02-06"), "正月初一"),
        (d("2027-02-07"), "正月初二"), (d("2027-02-08"), "正月初三"),
    ]


@pytest.mark.parametrize("year", [2024, 2100, 1999])
def test_derivation_is_limited_to_the_years_of_the_revised_measures(year: int) -> None:
    with pytest.raises(ValidationError) as info:
        statutory_holidays(year)
    assert info.value.field == "year"


# --- modes and the limits of derivation ----------------------------------------------------------


def test_modes_are_visible() -> None:
    assert PROV.mode is CalendarMode.PROVISIONAL
    assert STRICT.mode is CalendarMode.STRICT
    assert repr(PROV) == "ChinaCalendar(mode=provisional, covered_years=2004-2026, provisional_years=2027-2099)"
    assert PROV.covered_years == STRICT.covered_years == tuple(range(2004, 2027))
    assert PROV.provisional_years == tuple(range(2027, 2100))
    assert STRICT.provisional_years == ()
    assert PROV.official_until == STRICT.official_until == date(2026, 12, 31)
    with pytest.raises(ValidationError) as info:
        ChinaCalendar(mode="provisional")  # type: ignore[arg-type]
    assert info.value.field == "mode"


@pytest.mark.parametrize("day", [date(2027, 1, 4), date(2028, 6, 1)])
def test_strict_mode_still_refuses_uncovered_years(day: date) -> None:
    for call in (
        lambda: STRICT.day_info(day),
        lambda: STRICT.is_working_day(day),
        lambda: STRICT.is_provisional(day),
        lambda: STRICT.add_working_days(day, 1),
        lambda: STRICT.provisional_between(date(2026, 12, 1), day),
    ):
        with pytest.raises(CalendarNotCovered) as info:
            call()
        assert info.value.year == day.year


@pytest.mark.parametrize("day", [date(2003, 12, 31), date(2100, 1, 1)])
def test_provisional_mode_refuses_years_outside_the_derivable_range(day: date) -> None:
    for call in (
        lambda: PROV.day_info(day),
        lambda: PROV.is_working_day(day),
        lambda: PROV.is_provisional(day),
        lambda: PROV.working_days_between(day, day),
    ):
        with pytest.raises(CalendarNotCovered) as info:
            call()
        assert info.value.year == day.year
        assert info.value.covered == "2004-2026, provisionally 2027-2099"
    with pytest.raises(CalendarNotCovered) as info:
        PROV.add_working_days(date(2099, 12, 20), 30)
    assert info.value.year == 2100


def test_counting_runs_from_official_into_provisional_days() -> None:
    # Fri 2026-12-25: 12/28-12/31 official, then 1/1 (元旦) and a weekend: the 5th is Mon 2027-01-04.
    assert PROV.add_working_days(date(2026, 12, 25), 5) == date(2027, 1, 4)
    assert PROV.working_days_between(date(2026, 12, 25), date(2027, 1, 4)) == 5
    assert PROV.working_days_between(date(2027, 1, 4), date(2026, 12, 25)) == -5
    assert PROV.next_working_day(date(2027, 2, 5)) == date(2027, 2, 9)
    assert PROV.provisional_between(date(2026, 12, 25), date(2026, 12, 31)) is False
    assert PROV.provisional_between(date(2026, 12, 25), date(2027, 1, 1)) is True
    assert PROV.provisional_between(date(2027, 1, 1), date(2026, 12, 25)) is True


def test_a_fresh_calendar_derives_far_years_on_demand() -> None:
    calendar = ChinaCalendar()
    assert calendar.add_working_days(date(2098, 12, 24), 3) == date(2098, 12, 29)
    total = sum(
        calendar.working_days_between(date(year - 1, 12, 31), date(year, 12, 31)) for year in range(2027, 2100)
    )
    assert calendar.working_days_between(date(2026, 12, 31), date(2099, 12, 31)) == total
    last = date(2099, 12, 31)
    while not calendar.is_working_day(last):
        last -= timedelta(days=1)
    assert calendar.add_working_days(date(2026, 12, 31), total) == last


def _expected_working(day: date) -> bool:
    if day.year <= 2026:
        return bool(chinese_calendar.is_workday(day))
    return day.weekday() < 5 and day not in EXPECTED[day.year]


@settings(max_examples=200, deadline=None)
@given(day=st.dates(min_value=date(2026, 6, 1), max_value=date(2028, 9, 30)), n=st.integers(0, 45))
def test_add_working_days_across_years_agrees_with_a_day_by_day_walk(day: date, n: int) -> None:
    walk, found = day, 0
    if n == 0:
        while not _expected_working(walk):
            walk += timedelta(days=1)
    while found < n:
        walk += timedelta(days=1)
        found += _expected_working(walk)
    calendar = ChinaCalendar()  # fresh, so the lazy building is exercised from every starting point
    assert calendar.add_working_days(day, n) == walk
    if n:
        assert calendar.working_days_between(day, walk) == n


def test_lazy_building_is_safe_across_threads() -> None:
    calendar = ChinaCalendar()
    starts = [date(2027 + k * 7, 3, 1) for k in range(10)]
    expected = {start: PROV.add_working_days(start, 40) for start in starts}
    results: dict[date, date] = {}
    barrier = threading.Barrier(len(starts))

    def work(start: date) -> None:
        barrier.wait()
        results[start] = calendar.add_working_days(start, 40)

    threads = [threading.Thread(target=work, args=(start,)) for start in starts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == expected
    assert calendar.working_days_between(date(2026, 12, 31), date(2099, 12, 31)) == PROV.working_days_between(
        date(2026, 12, 31), date(2099, 12, 31)
    )


# --- loading the official year -------------------------------------------------------------------

NOTICE = "国务院办公厅关于2027年部分节假日安排的通知 (test data, not the real schedule)"
OVERRIDES_2027 = CalendarOverrides.from_notice(
    NOTICE,
    holidays={d("2027-01-01"): "元旦", **{d(f"2027-02-{k:02d}"): "春节" for k in range(5, 12)}},
    working_days={d("2027-02-20"): "春节"},
    covered_years=[2027],
)


def test_with_overrides_turns_a_provisional_year_official() -> None:
    calendar = PROV.with_overrides(OVERRIDES_2027)
    assert calendar.mode is CalendarMode.PROVISIONAL
    assert calendar.covered_years == tuple(range(2004, 2028))
    assert calendar.provisional_years == tuple(range(2028, 2100))
    assert calendar.official_until == date(2027, 12, 31)
    assert calendar.day_info(d("2027-02-09")) == DayInfo(d("2027-02-09"), DayKind.HOLIDAY, SF, NOTICE)
    assert calendar.day_info(d("2027-02-20")) == DayInfo(d("2027-02-20"), DayKind.SWAPPED_WORKING_DAY, SF, NOTICE)
    assert calendar.day_info(d("2027-03-01")) == DayInfo(d("2027-03-01"), DayKind.WORKING_DAY)
    assert not calendar.is_provisional(d("2027-06-09"))
    assert calendar.provisional_between(d("2027-01-01"), d("2027-12-31")) is False
    assert calendar.is_provisional(d("2028-01-03"))
    # The calendar it came from is unchanged.
    assert PROV.is_provisional(d("2027-02-09")) and PROV.is_working_day(d("2027-02-09"))
    # Strict stays strict, and now answers 2027.
    strict = STRICT.with_overrides(OVERRIDES_2027)
    assert strict.mode is CalendarMode.STRICT
    assert strict.add_working_days(d("2027-02-04"), 1) == d("2027-02-12")
    with pytest.raises(CalendarNotCovered):
        strict.day_info(d("2028-01-03"))


def test_with_overrides_refuses_conflicting_days_and_other_types() -> None:
    calendar = PROV.with_overrides(OVERRIDES_2027)
    clash = CalendarOverrides.from_notice("another notice", holidays={d("2027-01-01"): "春节"}, covered_years=[2027])
    with pytest.raises(ValidationError) as info:
        calendar.with_overrides(clash)
    assert info.value.field == "holidays.2027-01-01"
    with pytest.raises(ValidationError) as info:
        calendar.with_overrides({"covered_years": [2027]})  # type: ignore[arg-type]
    assert info.value.field == "overrides"
    assert calendar.with_mode(CalendarMode.STRICT).covered_years == calendar.covered_years


def test_a_newer_chinese_calendar_release_wins_over_the_derivation(monkeypatch: pytest.MonkeyPatch) -> None:
    """A release covering 2027 (simulated: the package's tables gain 2027 days) is official at once."""
    holidays = dict(chinese_calendar.holidays) | {d("2027-02-09"): SF, d("2027-02-10"): SF}
    workdays = dict(chinese_calendar.workdays) | {d("2027-02-20"): SF}
    monkeypatch.setattr(chinese_calendar, "holidays", holidays)
    monkeypatch.setattr(chinese_calendar, "workdays", workdays)
    calendar = ChinaCalendar()
    assert calendar.covered_years[-1] == 2027
    assert calendar.day_info(d("2027-02-09")) == DayInfo(d("2027-02-09"), DayKind.HOLIDAY, SF, PACKAGE_SOURCE)
    assert calendar.day_info(d("2027-02-20")).kind is DayKind.SWAPPED_WORKING_DAY
    assert not calendar.is_provisional(d("2027-06-09"))
    assert calendar.is_provisional(d("2028-01-03"))


def test_an_official_year_after_a_gap_joins_the_provisional_ones() -> None:
    overrides = CalendarOverrides.from_notice("notice 2029", holidays={d("2029-01-01"): "元旦"}, covered_years=[2029])
    calendar = ChinaCalendar(overrides)
    assert calendar.official_until == date(2029, 12, 31)
    assert calendar.official_through(date(2026, 6, 1)) == date(2026, 12, 31)
    assert calendar.official_through(date(2027, 6, 1)) is None
    assert calendar.official_through(date(2029, 6, 1)) == date(2029, 12, 31)
    # Fri 2028-12-29 -> Mon 2029-01-01 is an official holiday -> Tue 1/2.
    assert calendar.add_working_days(d("2028-12-29"), 1) == d("2029-01-02")
    assert calendar.provisional_between(d("2028-12-29"), d("2029-01-02")) is True
    assert calendar.provisional_between(d("2029-01-01"), d("2029-12-31")) is False
    strict = calendar.with_mode(CalendarMode.STRICT)
    with pytest.raises(CalendarNotCovered) as info:
        strict.working_days_between(d("2026-12-01"), d("2029-01-05"))
    assert info.value.year == 2027


# --- health --------------------------------------------------------------------------------------


def test_health_a_few_weeks_before_the_year_ends() -> None:
    health = calendar_health(PROV, date(2026, 12, 7))
    assert health == CalendarHealth(
        today=date(2026, 12, 7),
        mode=CalendarMode.PROVISIONAL,
        lookahead_days=90,
        official_until=date(2026, 12, 31),
        official_days_left=24,
        provisional_years=(2027,),
        uncovered_years=(),
        status=HealthStatus.PROVISIONAL,
    )
    assert "2026-12-31" in health.summary() and "provisionally" in health.summary()
    assert "暂定" in health.summary_zh()
    strict = calendar_health(STRICT, date(2026, 12, 7))
    assert (strict.status, strict.uncovered_years, strict.provisional_years) == (HealthStatus.UNCOVERED, (2027,), ())
    assert strict.to_dict()["status"] == "uncovered"


def test_health_when_all_is_well_and_after_loading_the_notice() -> None:
    early = calendar_health(PROV, date(2026, 6, 1))
    assert (early.status, early.official_days_left, early.provisional_years) == (HealthStatus.OK, 213, ())
    loaded = calendar_health(PROV.with_overrides(OVERRIDES_2027), date(2026, 12, 7), lookahead_days=30)
    assert (loaded.status, loaded.official_until, loaded.official_days_left) == (
        HealthStatus.OK, date(2027, 12, 31), 389
    )


def test_health_takes_an_aware_instant_as_its_shanghai_day() -> None:
    health = calendar_health(PROV, datetime(2026, 12, 31, 17, tzinfo=UTC))  # 2027-01-01 01:00 in Shanghai
    assert health.today == date(2027, 1, 1)
    assert (health.official_until, health.official_days_left) == (None, 0)
    assert health.to_dict()["official_until"] is None
    with pytest.raises(ValidationError) as info:
        calendar_health(PROV, datetime(2026, 12, 7, 9))
    assert info.value.field == "when"
    with pytest.raises(ValidationError) as info:
        calendar_health(PROV, date(2026, 12, 7), lookahead_days=-1)
    assert info.value.field == "lookahead_days"


def test_is_provisional_rejects_datetimes() -> None:
    with pytest.raises(ValidationError):
        PROV.is_provisional(datetime(2027, 1, 1, tzinfo=UTC))
    with pytest.raises(ValidationError):
        PROV.provisional_between(datetime(2027, 1, 1, tzinfo=UTC), date(2027, 1, 2))
