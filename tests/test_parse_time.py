"""clock.parse_time: what a person types, read as Asia/Shanghai, never guessed from the system clock."""

from __future__ import annotations

import datetime as dt

import pytest

from jianyi_flow.domain.clock import SHANGHAI, parse_time
from jianyi_flow.errors import ValidationError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-12-01", dt.datetime(2024, 12, 1, tzinfo=SHANGHAI)),
        ("2024-12-01T09:30", dt.datetime(2024, 12, 1, 9, 30, tzinfo=SHANGHAI)),
        ("2024-09-30T17:00Z", dt.datetime(2024, 10, 1, 1, 0, tzinfo=SHANGHAI)),
        ("2024-12-01T09:30:00.123456+00:00", dt.datetime(2024, 12, 1, 17, 30, 0, 123456, tzinfo=SHANGHAI)),
    ],
)
def test_parses_dates_and_times(text: str, expected: dt.datetime) -> None:
    got = parse_time(text)
    assert got == expected
    assert got.utcoffset() == dt.timedelta(hours=8)


@pytest.mark.parametrize("text", ["", "  ", "xx", "P3D", "10:00", "2024-13-01"])
def test_refuses_what_is_not_a_date_or_time(text: str) -> None:
    with pytest.raises(ValidationError) as e:
        parse_time(text)
    assert e.value.field == "time"
