"""Injected time: FakeClock, SystemClock and the Asia/Shanghai day helpers."""

from __future__ import annotations

import datetime as dt
import threading
from zoneinfo import ZoneInfo

import pytest

from helpers import START, make_clock
from jianyi_flow import SHANGHAI, Clock, FakeClock, SystemClock, ValidationError
from jianyi_flow.domain.clock import end_of_local_day, local_date, require_aware, start_of_local_day


def test_fake_clock_stands_still() -> None:
    clock = make_clock()
    assert clock.now() == START
    assert clock.now() == START
    assert START == dt.datetime(2024, 8, 21, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert isinstance(clock, Clock)


def test_fake_clock_advance() -> None:
    clock = make_clock()
    assert clock.advance(dt.timedelta(hours=3)) == START + dt.timedelta(hours=3)
    assert clock.advance(days=1, minutes=30) == START + dt.timedelta(days=1, hours=3, minutes=30)
    assert clock.now() == START + dt.timedelta(days=1, hours=3, minutes=30)
    assert clock.advance(dt.timedelta(0)) == clock.now()


@pytest.mark.parametrize("step", [dt.timedelta(microseconds=-1), dt.timedelta(days=-1)])
def test_fake_clock_refuses_to_advance_backwards(step: dt.timedelta) -> None:
    clock = make_clock()
    with pytest.raises(ValidationError) as info:
        clock.advance(step)
    assert info.value.field == "delta"
    with pytest.raises(ValidationError):
        clock.advance(seconds=-5)
    assert clock.now() == START


def test_fake_clock_set_goes_anywhere() -> None:
    clock = make_clock()
    earlier = START - dt.timedelta(days=400)
    assert clock.set(earlier) == earlier
    assert clock.now() == earlier
    utc = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    clock.set(utc)
    assert clock.now() == utc


def test_fake_clock_refuses_naive_times() -> None:
    naive = dt.datetime(2024, 8, 21, 9)
    with pytest.raises(ValidationError) as info:
        FakeClock(naive)
    assert info.value.field == "start"
    clock = make_clock()
    with pytest.raises(ValidationError) as info:
        clock.set(naive)
    assert info.value.field == "value"
    assert clock.now() == START
    with pytest.raises(ValidationError):
        FakeClock(dt.date(2024, 8, 21))  # type: ignore[arg-type]


def test_fake_clock_advances_atomically() -> None:
    clock = make_clock()

    def work() -> None:
        for _ in range(1000):
            clock.advance(microseconds=1)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert clock.now() == START + dt.timedelta(microseconds=4000)


def test_system_clock_is_aware_shanghai_and_close_to_now() -> None:
    now = SystemClock().now()
    assert now.tzinfo is not None
    assert now.utcoffset() == dt.timedelta(hours=8)
    assert now.tzinfo == SHANGHAI
    assert abs(now - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)
    assert isinstance(SystemClock(), Clock)


def test_local_date_converts_before_taking_the_day() -> None:
    assert local_date(dt.datetime(2024, 9, 30, 17, 0, tzinfo=dt.UTC)) == dt.date(2024, 10, 1)
    assert local_date(dt.datetime(2024, 9, 30, 15, 59, 59, tzinfo=dt.UTC)) == dt.date(2024, 9, 30)
    assert local_date(dt.datetime(2024, 9, 30, 16, 0, tzinfo=dt.UTC)) == dt.date(2024, 10, 1)
    new_york = ZoneInfo("America/New_York")
    assert local_date(dt.datetime(2024, 9, 30, 12, 0, tzinfo=new_york)) == dt.date(2024, 10, 1)
    with pytest.raises(ValidationError):
        local_date(dt.datetime(2024, 9, 30, 17, 0))


def test_day_bounds_in_shanghai() -> None:
    day = dt.date(2024, 10, 1)
    end = end_of_local_day(day)
    assert end == dt.datetime(2024, 10, 1, 23, 59, 59, 999999, tzinfo=SHANGHAI)
    assert end.astimezone(dt.UTC) == dt.datetime(2024, 10, 1, 15, 59, 59, 999999, tzinfo=dt.UTC)
    start = start_of_local_day(day)
    assert start == dt.datetime(2024, 9, 30, 16, 0, tzinfo=dt.UTC)
    assert end - start == dt.timedelta(days=1, microseconds=-1)


@pytest.mark.parametrize("value", [None, "2024-08-21T09:00+08:00", 1724202000, dt.date(2024, 8, 21)])
def test_require_aware_refuses_non_datetimes(value: object) -> None:
    with pytest.raises(ValidationError) as info:
        require_aware(value, "when")
    assert info.value.field == "when"
