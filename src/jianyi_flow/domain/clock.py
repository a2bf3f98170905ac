"""Injected time.  Nothing in the engine asks the operating system what time it is.

Every datetime the library accepts or returns is timezone-aware.  Calendar questions
("which day is it?") are answered in Asia/Shanghai, the campaign's timezone.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Protocol, runtime_checkable
from zoneinfo import ZoneInfo

from ..errors import ValidationError

SHANGHAI = ZoneInfo("Asia/Shanghai")
"""The timezone of every campaign calendar day (UTC+8, no daylight saving)."""


def require_aware(value: object, field: str = "time") -> dt.datetime:
    """Return ``value`` if it is an aware datetime, else raise :class:`ValidationError`
    (code ``not_a_datetime`` or ``not_aware``).

    A tzinfo whose offset is ``None`` makes the time as ambiguous as a naive one.
    """
    if not isinstance(value, dt.datetime):
        raise ValidationError(field, "must be a datetime", code="not_a_datetime")
    tz = value.tzinfo
    if tz is None or tz.utcoffset(value) is None:
        raise ValidationError(field, "must be timezone-aware (naive datetimes are ambiguous)", code="not_aware")
    return value


def to_utc(value: object, field: str = "datetime") -> dt.datetime:
    """``value`` as an aware UTC datetime; :class:`ValidationError` if it is not an aware datetime.

    How stores compare and keep times: by instant.  (``<`` between two datetimes of one
    zone compares wall times and ignores ``fold``.)
    """
    try:
        return require_aware(value, field).astimezone(dt.UTC)
    except OverflowError:
        raise ValidationError(field, "is out of the range of dates this library handles",
                              code="not_a_datetime") from None


def local_date(value: dt.datetime) -> dt.date:
    """The Asia/Shanghai calendar day of an aware datetime.

    2024-09-30T17:00Z is 2024-10-01 in Shanghai: converting first matters.
    """
    try:
        return require_aware(value).astimezone(SHANGHAI).date()
    except OverflowError:
        raise ValidationError("time", "is out of the range of dates this library handles",
                              code="not_a_datetime") from None


def end_of_local_day(day: dt.date) -> dt.datetime:
    """The last microsecond of ``day`` in Asia/Shanghai (a deadline is the end of its day)."""
    return dt.datetime.combine(day, dt.time(23, 59, 59, 999999), tzinfo=SHANGHAI)


def start_of_local_day(day: dt.date) -> dt.datetime:
    """Midnight at the start of ``day`` in Asia/Shanghai."""
    return dt.datetime.combine(day, dt.time(0, 0), tzinfo=SHANGHAI)


@runtime_checkable
class Clock(Protocol):
    """Something that says what time it is now (always aware)."""

    def now(self) -> dt.datetime: ...


class SystemClock:
    """The real clock, in Asia/Shanghai.  Use it in production, never in tests."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(SHANGHAI)


class FakeClock:
    """A clock that stands still until a test sets or advances it.

    >>> clock = FakeClock(dt.datetime(2024, 8, 1, 9, tzinfo=SHANGHAI))
    >>> clock.advance(days=1).date()
    datetime.date(2024, 8, 2)
    """

    def __init__(self, start: dt.datetime) -> None:
        self._now = require_aware(start, "start")
        self._lock = threading.Lock()

    def now(self) -> dt.datetime:
        return self._now

    def set(self, value: dt.datetime) -> dt.datetime:
        """Jump to ``value`` (forwards or backwards)."""
        value = require_aware(value, "value")
        with self._lock:
            self._now = value
        return value

    def advance(self, delta: dt.timedelta | None = None, **kwargs: float) -> dt.datetime:
        """Move forward by ``delta`` or by ``timedelta(**kwargs)``; never backwards."""
        step = delta if delta is not None else dt.timedelta(**kwargs)
        if step < dt.timedelta(0):
            raise ValidationError("delta", "a FakeClock only advances; use set() to go back", code="too_small",
                                  details={"min": 0})
        with self._lock:
            self._now = self._now + step
            return self._now


def parse_time(text: str) -> dt.datetime:
    """Parse a time a person typed (ISO 8601, or a bare date) into an aware datetime.

    A time without an offset is read as Asia/Shanghai local time, because that is what an
    office worker in the district means; a bare date means its start.  Parsing uses
    ``pendulum`` (lenient about the many ISO 8601 spellings); the result is a plain stdlib
    datetime in Asia/Shanghai.  Unparseable text raises :class:`ValidationError`.
    """
    import pendulum

    if not isinstance(text, str) or not text.strip():
        raise ValidationError("time", "must be a date or time like 2024-12-01 or 2024-12-01T09:30+08:00",
                              code="not_a_date")
    try:
        parsed = pendulum.parse(text.strip(), tz="Asia/Shanghai", exact=True)
    except (ValueError, pendulum.parsing.exceptions.ParserError) as e:
        raise ValidationError("time", f"cannot read {text!r} as a date or time ({e})", code="not_a_date") from None
    if isinstance(parsed, pendulum.DateTime):
        utc = parsed.in_timezone("UTC")
        plain = dt.datetime(
            utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second, utc.microsecond, tzinfo=dt.UTC
        )
        return plain.astimezone(SHANGHAI)
    if isinstance(parsed, pendulum.Date):
        return start_of_local_day(dt.date(parsed.year, parsed.month, parsed.day))
    raise ValidationError("time", f"{text!r} is a duration or a time of day, not a date or time", code="not_a_date")
