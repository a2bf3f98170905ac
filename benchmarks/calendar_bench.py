"""How much faster counting working days is than walking through ``chinese_calendar``.

``ChinaCalendar.add_working_days`` binary-searches a precomputed array of working days;
the baseline is the package's own ``chinese_calendar.find_workday(delta_days, date)``,
which steps day by day and re-validates every date it looks at.

The two count differently: ``find_workday(15, d)`` first moves to the first working day
on or after ``d`` and then 15 working days on, whereas ``add_working_days(d, 15)`` counts
15 working days strictly after ``d``.  They agree exactly when ``d`` is a working day, so
the sample is random *working* days and the benchmark asserts both answers are equal
before it times anything.  Both run in this process over the same dates, timed with
``time.perf_counter``.

Run: ``python -m benchmarks.calendar_bench`` (add ``--quick`` for a short run).
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable, Sequence
from datetime import date, timedelta

import chinese_calendar  # type: ignore[import-untyped]

from jianyi_flow.domain.calendar import ChinaCalendar

N = 15
TARGET = 20.0
FIRST = date(2004, 1, 1)
LAST = date(2026, 11, 30)  # 15 working days after it are still inside 2026, the last covered year


def _sample(calendar: ChinaCalendar, size: int, seed: int) -> list[date]:
    rng = random.Random(seed)
    span = (LAST - FIRST).days
    days: list[date] = []
    while len(days) < size:
        day = FIRST + timedelta(days=rng.randrange(span + 1))
        if calendar.is_working_day(day):
            days.append(day)
    return days


def _per_op_us(func: Callable[[date], date], days: Sequence[date], min_seconds: float) -> float:
    """Best-of-three mean microseconds per call, repeating the sample until ``min_seconds`` pass."""
    best = float("inf")
    for _ in range(3):
        calls = 0
        start = time.perf_counter()
        while True:
            for day in days:
                func(day)
            calls += len(days)
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds:
                break
        best = min(best, elapsed / calls * 1e6)
    return best


def run(quick: bool) -> list[dict[str, object]]:
    """Measure ours and the baseline side by side; one dict per figure."""
    calendar = ChinaCalendar()
    days = _sample(calendar, 200 if quick else 2000, seed=20240930)

    def ours(day: date) -> date:
        return calendar.add_working_days(day, N)

    def baseline(day: date) -> date:
        result: date = chinese_calendar.find_workday(N, day)
        return result

    for day in days:  # not `assert`: the check must also run under python -O
        if ours(day) != baseline(day):
            raise RuntimeError(f"answers differ for {day}: {ours(day)} != {baseline(day)}")

    min_seconds = 0.05 if quick else 0.5
    value = _per_op_us(ours, days, min_seconds)
    base = _per_op_us(baseline, days, min_seconds)
    ratio = base / value
    return [
        {
            "name": "calendar.add_15_working_days",
            "value": round(value, 3),
            "baseline": round(base, 3),
            "ratio": round(ratio, 1),
            "target": TARGET,
            "meets": ratio >= TARGET,
        }
    ]


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv[1:]):
        verdict = "met" if row["meets"] else "NOT met"
        print(
            f"{row['name']}: ours {row['value']} µs/op, "
            f"chinese_calendar.find_workday {row['baseline']} µs/op, "
            f"speed-up {row['ratio']}x (target {row['target']}x: {verdict})"
        )
