"""Statutory deadlines.  Every expected date below was counted by hand on the 2024-2026
State Council schedules (see tests/test_calendar.py), with the reasoning in a comment."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jianyi_flow.domain.calendar import CalendarMode, CalendarOverrides, ChinaCalendar
from jianyi_flow.domain.clock import SHANGHAI
from jianyi_flow.domain.deadlines import (
    DEFAULT_POLICY,
    MAX_EXTENSION,
    CalendarDays,
    DeadlinePolicy,
    Due,
    Step,
    StepRule,
    WorkingDays,
    due,
    due_detail,
    extend,
    extend_detail,
)
from jianyi_flow.errors import CalendarNotCovered, ValidationError

CAL = ChinaCalendar(mode=CalendarMode.STRICT)  # official schedules only; provisional cases at the end


def at(y: int, m: int, d: int, hour: int = 10) -> datetime:
    """An instant on a Shanghai day (10:00 local unless said otherwise)."""
    return datetime(y, m, d, hour, tzinfo=SHANGHAI)


def end_of(y: int, m: int, d: int) -> datetime:
    return datetime.combine(date(y, m, d), time(23, 59, 59, 999999), tzinfo=SHANGHAI)


# --- the two duration kinds --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "duration", "expected"),
    [
        # 9/20 + 15 = 10/5, a Saturday inside National Day (10/1-10/7): Art. 203 moves it to 10/8.
        (at(2024, 9, 20), CalendarDays(15), end_of(2024, 10, 8)),
        # Working days after Fri 9/27: 9/29 (Sun, 调休 worked), 9/30, 10/8, 10/9, 10/10.
        (at(2024, 9, 27), WorkingDays(5), end_of(2024, 10, 10)),
        # 2025-01-20 + 15 = 2/4, the last day of the Spring Festival block (1/28-2/4): moves to 2/5.
        (at(2025, 1, 20), CalendarDays(15), end_of(2025, 2, 5)),
        # After Thu 2024-02-08: 2/9 (Fri, worked), 2/10-2/17 off, 2/18 (Sun, worked), 2/19, 2/20, 2/21.
        (at(2024, 2, 8), WorkingDays(5), end_of(2024, 2, 21)),
        # 2026-01-15 + 30 = 2/14, a Saturday -- but a 调休 working day, so the deadline stays on it.
        (at(2026, 1, 15), CalendarDays(30), end_of(2026, 2, 14)),
        # An ordinary weekend moves to Monday: Wed 2024-03-06 + 3 = Sat 3/9 -> Mon 3/11.
        (at(2024, 3, 6), CalendarDays(3), end_of(2024, 3, 11)),
        # ...and an ordinary weekday stays: Wed 2024-03-06 + 2 = Fri 3/8.
        (at(2024, 3, 6), CalendarDays(2), end_of(2024, 3, 8)),
        # Zero: the start day itself, or the next working day.
        (at(2024, 3, 6), CalendarDays(0), end_of(2024, 3, 6)),
        (at(2024, 10, 2), CalendarDays(0), end_of(2024, 10, 8)),
        (at(2024, 10, 2), WorkingDays(0), end_of(2024, 10, 8)),
    ],
)
def test_due(start: datetime, duration: CalendarDays | WorkingDays, expected: datetime) -> None:
    result = due(start, duration, CAL)
    assert result == expected
    assert result.tzinfo is SHANGHAI
    assert result.utcoffset() == timedelta(hours=8)


def test_calendar_and_working_days_are_different_things() -> None:
    assert CalendarDays(5) != WorkingDays(5)  # type: ignore[comparison-overlap]  # exactly the point
    # From Fri 2024-09-27: 5 calendar days is 10/2 (holiday) -> 10/8; 5 working days is 10/10.
    assert due(at(2024, 9, 27), CalendarDays(5), CAL) == end_of(2024, 10, 8)
    assert due(at(2024, 9, 27), WorkingDays(5), CAL) == end_of(2024, 10, 10)
    assert (str(CalendarDays(15)), CalendarDays(15).zh) == ("15 calendar days", "15日")
    assert (str(WorkingDays(1)), WorkingDays(5).zh) == ("1 working day", "5个工作日")


@pytest.mark.parametrize("bad", [5, timedelta(days=5), "5", None])
def test_due_rejects_untyped_durations(bad: object) -> None:
    with pytest.raises(ValidationError) as info:
        due(at(2024, 3, 6), bad, CAL)  # type: ignore[arg-type]
    assert info.value.field == "duration"


@pytest.mark.parametrize("kind", [CalendarDays, WorkingDays])
@pytest.mark.parametrize("bad", [-1, True, 1.5, "3"])
def test_durations_must_be_non_negative_integers(kind: type, bad: object) -> None:
    with pytest.raises(ValidationError) as info:
        kind(bad)
    assert info.value.field == "duration"


# --- timezone: the start day is the Shanghai day -----------------------------------------------


def test_start_is_converted_to_shanghai_before_counting() -> None:
    # 2024-11-06T17:00Z is Thursday 11/7 01:00 in Shanghai: one day later is Friday 11/8
    # (counting from the UTC date would give 11/7).
    assert due(datetime(2024, 11, 6, 17, tzinfo=UTC), CalendarDays(1), CAL) == end_of(2024, 11, 8)
    assert due(datetime(2024, 11, 6, 17, tzinfo=UTC), WorkingDays(1), CAL) == end_of(2024, 11, 8)
    # 2024-09-30T17:00Z is already 1 October (a holiday) in Shanghai.
    assert due(datetime(2024, 9, 30, 17, tzinfo=UTC), CalendarDays(0), CAL) == end_of(2024, 10, 8)
    new_york = datetime(2024, 9, 30, 13, tzinfo=ZoneInfo("America/New_York"))  # the same instant
    assert due(new_york, CalendarDays(0), CAL) == end_of(2024, 10, 8)
    # A microsecond before Shanghai midnight it is still Monday 9/30, a working day.
    assert due(datetime(2024, 9, 30, 15, 59, 59, 999999, tzinfo=UTC), CalendarDays(0), CAL) == end_of(
        2024, 9, 30
    )


def test_naive_start_is_rejected() -> None:
    with pytest.raises(ValidationError) as info:
        due(datetime(2024, 9, 20, 10), CalendarDays(15), CAL)
    assert info.value.field == "start"


# --- uncovered years -----------------------------------------------------------------------------


def test_deadlines_running_into_an_unknown_year_raise() -> None:
    # 2026-12-20 + 15 = 2027-01-04: the 2027 schedule is not known, so no guess is made.
    with pytest.raises(CalendarNotCovered) as info:
        due(at(2026, 12, 20), CalendarDays(15), CAL)
    assert info.value.year == 2027
    # Fri 2026-12-25: only four working days (12/28-12/31) are known after it.
    assert due(at(2026, 12, 25), WorkingDays(4), CAL) == end_of(2026, 12, 31)
    with pytest.raises(CalendarNotCovered):
        due(at(2026, 12, 25), WorkingDays(5), CAL)
    with pytest.raises(CalendarNotCovered) as info:
        due(at(2003, 12, 1), WorkingDays(1), CAL)
    assert info.value.year == 2003


def test_overrides_let_deadlines_run_into_2027() -> None:
    # Illustrative 2027 data only (not the real schedule): 2027-01-01, a Friday, declared a holiday.
    calendar = ChinaCalendar(
        CalendarOverrides.from_notice(
            "test notice", holidays={date(2027, 1, 1): "元旦"}, covered_years=[2027]
        )
    )
    # 2026-12-17 + 15 = 2027-01-01 (holiday) -> Sat, Sun -> Mon 2027-01-04.
    assert due(at(2026, 12, 17), CalendarDays(15), calendar) == end_of(2027, 1, 4)


# --- the policy ----------------------------------------------------------------------------------


def test_default_policy_values() -> None:
    assert DEFAULT_POLICY.as_mapping() == {
        Step.REGISTER: CalendarDays(15),
        Step.OBJECT_TRANSFER: WorkingDays(5),
        Step.RESEARCH: CalendarDays(60),
        Step.REPLY: CalendarDays(15),
        Step.RATE: CalendarDays(30),
    }
    assert isinstance(Step.REGISTER, str)
    assert Step.REGISTER.value == "register"


def test_describe_rows_name_their_sources() -> None:
    rows = DEFAULT_POLICY.describe()
    assert [step for step, _, _ in rows] == list(Step)
    sources = {step: source for step, _, source in rows}
    assert "Art. 22" in sources[Step.REGISTER]
    assert "15日内" in sources[Step.REGISTER]
    assert "Art. 23" in sources[Step.OBJECT_TRANSFER]
    assert "5个工作日" in sources[Step.OBJECT_TRANSFER]
    for step in (Step.RESEARCH, Step.REPLY, Step.RATE):  # not set by the regulations for suggestions
        assert sources[step].startswith("our choice by analogy"), step
    for step in (Step.REGISTER, Step.OBJECT_TRANSFER):
        assert "our choice" not in sources[step]


@pytest.mark.parametrize(
    ("step", "start", "expected"),
    [
        # Receipt Mon 2025-01-20: + 15 = 2/4, last Spring Festival day -> 2/5.
        (Step.REGISTER, at(2025, 1, 20), end_of(2025, 2, 5)),
        # Transfer received Thu 2026-02-12: 2/13, 2/14 (Sat, worked), [2/15-2/23 off], 2/24, 2/25, 2/26.
        (Step.OBJECT_TRANSFER, at(2026, 2, 12), end_of(2026, 2, 26)),
        # 2024-08-02 + 60 = 10/1 (National Day) -> 10/8.
        (Step.RESEARCH, at(2024, 8, 2), end_of(2024, 10, 8)),
        # 2026-02-05 + 15 = 2/20 (Spring Festival) -> 2/24.
        (Step.REPLY, at(2026, 2, 5), end_of(2026, 2, 24)),
        # 2026-01-15 + 30 = Sat 2/14, a 调休 working day: stays.
        (Step.RATE, at(2026, 1, 15), end_of(2026, 2, 14)),
    ],
)
def test_due_for_each_default_step(step: Step, start: datetime, expected: datetime) -> None:
    assert DEFAULT_POLICY.due_for(step, start, CAL) == expected
    assert DEFAULT_POLICY.due_for(step, start, CAL) == due(start, DEFAULT_POLICY.duration(step), CAL)


def test_with_step_returns_a_new_policy() -> None:
    changed = DEFAULT_POLICY.with_step(Step.REPLY, WorkingDays(10))
    assert changed.duration(Step.REPLY) == WorkingDays(10)
    assert changed.rule(Step.REPLY).source == "operator override"
    assert DEFAULT_POLICY.duration(Step.REPLY) == CalendarDays(15)  # unchanged
    assert [step for step, _, _ in changed.describe()] == list(Step)
    for step in Step:
        if step is not Step.REPLY:
            assert changed.rule(step) == DEFAULT_POLICY.rule(step)

    local_rule = "市信访局 2024 campaign rules"
    sourced = DEFAULT_POLICY.with_step("research", CalendarDays(45), local_rule)  # type: ignore[arg-type]
    assert sourced.rule(Step.RESEARCH) == StepRule(Step.RESEARCH, CalendarDays(45), local_rule)


def test_with_step_validates() -> None:
    with pytest.raises(ValidationError) as info:
        DEFAULT_POLICY.with_step("sleep", CalendarDays(1))  # type: ignore[arg-type]
    assert info.value.field == "step"
    with pytest.raises(ValidationError) as info:
        DEFAULT_POLICY.with_step(Step.REPLY, 10)  # type: ignore[arg-type]
    assert info.value.field == "duration"
    with pytest.raises(ValidationError) as info:
        DEFAULT_POLICY.with_step(Step.REPLY, CalendarDays(10), " ")
    assert info.value.field == "source"


def test_a_policy_needs_each_step_exactly_once() -> None:
    rules = [DEFAULT_POLICY.rule(step) for step in Step]
    with pytest.raises(ValidationError) as info:
        DeadlinePolicy(tuple(rules[:-1]))
    assert "rate" in info.value.rule
    with pytest.raises(ValidationError) as info:
        DeadlinePolicy((*rules, rules[0]))
    assert "register" in info.value.rule
    # Order of construction does not matter; the policy keeps Step order.
    assert DeadlinePolicy(tuple(reversed(rules))) == DEFAULT_POLICY


# --- extensions ----------------------------------------------------------------------------------


def test_extension_by_calendar_days() -> None:
    assert CalendarDays(30) == MAX_EXTENSION
    old = end_of(2024, 9, 20)
    # 9/20 + 30 = Sun 10/20 -> Mon 10/21.
    assert extend(old, CalendarDays(30), CAL) == end_of(2024, 10, 21)
    # 9/20 + 10 = Mon 9/30.
    assert extend(old, CalendarDays(10), CAL) == end_of(2024, 9, 30)
    with pytest.raises(ValidationError) as info:
        extend(old, CalendarDays(31), CAL)
    assert info.value.field == "extension"


def test_extension_by_working_days_is_bounded_by_thirty_calendar_days() -> None:
    old = end_of(2024, 9, 20)
    # Working days after Fri 9/20: 9/23-9/27 (5), 9/29 Sun worked (6), 9/30 (7), 10/8-10/11 (11),
    # 10/12 Sat worked (12), 10/14-10/18 (17), 10/21 (18), 10/22 (19).  The 30-day bound is 10/21.
    assert extend(old, WorkingDays(18), CAL) == end_of(2024, 10, 21)
    with pytest.raises(ValidationError) as info:
        extend(old, WorkingDays(19), CAL)
    assert info.value.field == "extension"


def test_extension_input_validation() -> None:
    with pytest.raises(ValidationError) as info:
        extend(datetime(2024, 9, 20, 23, 59), CalendarDays(5), CAL)
    assert info.value.field == "due"
    with pytest.raises(ValidationError) as info:
        extend(end_of(2024, 9, 20), 5, CAL)  # type: ignore[arg-type]
    assert info.value.field == "extension"


def test_extension_is_counted_from_the_shanghai_day_of_the_old_deadline() -> None:
    # The old deadline given in UTC: 2024-09-20T15:59:59.999999Z is the end of 9/20 in Shanghai.
    old_utc = end_of(2024, 9, 20).astimezone(UTC)
    assert old_utc.date() == date(2024, 9, 20)
    assert extend(old_utc, CalendarDays(10), CAL) == end_of(2024, 9, 30)
    # An instant early on 9/21 Shanghai (still 9/20 in UTC) counts from 9/21: + 10 = Tue 10/1 -> 10/8.
    assert extend(datetime(2024, 9, 20, 16, 30, tzinfo=UTC), CalendarDays(10), CAL) == end_of(2024, 10, 8)


# --- provisional deadlines -----------------------------------------------------------------------
#
# PROV answers 2027 and 2028 from the 全国年节及纪念日放假办法 (see tests/test_calendar_provisional.py):
# in 2027 the days off are 1/1, 2/5-2/8, 4/5, 5/1-5/2, 6/9, 9/15, 10/1-10/3, weekends, no 调休.

PROV = ChinaCalendar()


@pytest.mark.parametrize(
    ("start", "duration", "expected"),
    [
        # Mon 2026-12-07 + 15 = Tue 12/22: every day from 12/7 to 12/22 is official.
        (at(2026, 12, 7), CalendarDays(15), Due(end_of(2026, 12, 22), False)),
        # 2026-12-20 + 15 = Mon 2027-01-04, a provisional working day.
        (at(2026, 12, 20), CalendarDays(15), Due(end_of(2027, 1, 4), True)),
        # 2026-12-17 + 15 = Fri 2027-01-01 (元旦, provisional) -> Sat, Sun -> Mon 1/4.
        (at(2026, 12, 17), CalendarDays(15), Due(end_of(2027, 1, 4), True)),
        # After Fri 2026-12-25: 12/28, 12/29, 12/30, 12/31 are official ...
        (at(2026, 12, 25), WorkingDays(4), Due(end_of(2026, 12, 31), False)),
        # ... the 5th is Mon 2027-01-04 (1/1 is 元旦, 1/2-1/3 a weekend): provisional.
        (at(2026, 12, 25), WorkingDays(5), Due(end_of(2027, 1, 4), True)),
        # After Mon 2027-02-01: 2/2, 2/3, 2/4; 2/5 (除夕) - 2/8 off; 2/9, 2/10.
        (at(2027, 2, 1), WorkingDays(5), Due(end_of(2027, 2, 10), True)),
    ],
)
def test_due_detail_marks_deadlines_over_provisional_days(
    start: datetime, duration: CalendarDays | WorkingDays, expected: Due
) -> None:
    detail = due_detail(start, duration, PROV)
    assert detail == expected
    assert detail.at == due(start, duration, PROV)


def test_due_detail_on_official_days_is_not_provisional_and_strict_still_refuses() -> None:
    assert due_detail(at(2024, 9, 20), CalendarDays(15), CAL) == Due(end_of(2024, 10, 8), False)
    with pytest.raises(CalendarNotCovered) as info:
        due_detail(at(2026, 12, 20), CalendarDays(15), CAL)
    assert info.value.year == 2027


def test_a_provisional_start_day_makes_the_deadline_provisional() -> None:
    """With 2028 loaded officially (illustrative data) but 2027 still derived, a period that starts
    in 2027 and ends in 2028 rests on provisional days although its last day is official."""
    calendar = PROV.with_overrides(
        CalendarOverrides.from_notice("test notice", holidays={date(2028, 1, 3): "元旦"}, covered_years=[2028])
    )
    assert not calendar.is_provisional(date(2028, 1, 4))
    # Mon 2027-12-20 + 15 = Tue 2028-01-04, an official working day.
    assert due_detail(at(2027, 12, 20), CalendarDays(15), calendar) == Due(end_of(2028, 1, 4), True)
    assert due_detail(at(2028, 1, 4), CalendarDays(1), calendar) == Due(end_of(2028, 1, 5), False)


def test_policy_due_detail() -> None:
    detail = DEFAULT_POLICY.due_detail(Step.REGISTER, at(2026, 12, 20), PROV)
    assert detail == Due(end_of(2027, 1, 4), True)
    assert detail.at == DEFAULT_POLICY.due_for(Step.REGISTER, at(2026, 12, 20), PROV)
    # OBJECT_TRANSFER is 5 working days: from Mon 12/7 that is Mon 12/14, official.
    assert DEFAULT_POLICY.due_detail(Step.OBJECT_TRANSFER, at(2026, 12, 7), PROV) == Due(end_of(2026, 12, 14), False)


def test_extend_detail() -> None:
    # Thu 2026-12-10 + 30 = Sat 2027-01-09 -> Mon 1/11: provisional.
    assert extend_detail(Due(end_of(2026, 12, 10), False), CalendarDays(30), PROV) == Due(end_of(2027, 1, 11), True)
    assert extend(end_of(2026, 12, 10), CalendarDays(30), PROV) == end_of(2027, 1, 11)
    # Sun 2026-11-01 + 10 = Wed 11/11: official, whether given as a Due or as a bare datetime ...
    assert extend_detail(end_of(2026, 11, 1), CalendarDays(10), PROV) == Due(end_of(2026, 11, 11), False)
    assert extend_detail(Due(end_of(2026, 11, 1)), CalendarDays(10), PROV) == Due(end_of(2026, 11, 11), False)
    # ... unless the old deadline was provisional: the new one is counted from it.
    assert extend_detail(Due(end_of(2026, 11, 1), True), CalendarDays(10), PROV) == Due(end_of(2026, 11, 11), True)
    with pytest.raises(ValidationError) as info:
        extend_detail(Due(end_of(2026, 11, 1)), CalendarDays(31), PROV)
    assert info.value.field == "extension"
    with pytest.raises(CalendarNotCovered):
        extend_detail(end_of(2026, 12, 10), CalendarDays(30), CAL)


def test_due_values_are_validated() -> None:
    with pytest.raises(ValidationError) as info:
        Due(datetime(2027, 1, 4, 23, 59))
    assert info.value.field == "at"
    with pytest.raises(ValidationError) as info:
        Due(end_of(2027, 1, 4), "yes")  # type: ignore[arg-type]
    assert info.value.field == "provisional"
    with pytest.raises(ValidationError) as info:
        due_detail(datetime(2026, 12, 20, 10), CalendarDays(15), PROV)
    assert info.value.field == "start"


def _walk_provisional(start: date, end: date) -> bool:
    day = start
    while day <= end:
        if PROV.day_info(day).provisional:
            return True
        day += timedelta(days=1)
    return False


@settings(max_examples=150, deadline=None)
@given(
    start=st.dates(min_value=date(2026, 9, 1), max_value=date(2027, 3, 1)),
    n=st.integers(min_value=0, max_value=90),
    working=st.booleans(),
)
def test_due_detail_agrees_with_due_and_a_day_by_day_check(start: date, n: int, working: bool) -> None:
    duration: CalendarDays | WorkingDays = WorkingDays(n) if working else CalendarDays(n)
    when = datetime.combine(start, time(10), tzinfo=SHANGHAI)
    detail = due_detail(when, duration, PROV)
    assert detail.at == due(when, duration, PROV)
    assert detail.provisional is _walk_provisional(start, detail.at.date())
