"""MemoryStore's due index under many due times: its timestamp memo (``_stamp``) and the
sets of ids per due time, checked against a plain sort of the rows.

The memo is keyed by the due time's identity, so the test mixes one object shared by
many rows, equal times that are distinct objects (in two zones), more distinct times than
the memo holds, and rows that move from one due time to another again and again.
"""

from __future__ import annotations

import datetime as dt
import random
from zoneinfo import ZoneInfo

from jianyi_flow import MemoryStore, Query, State, Suggestion
from jianyi_flow.storage.memory import _STAMP_CACHE
from jianyi_flow.testing.contract import T0, advance, create, make_suggestion

UTC = dt.UTC
YORK = ZoneInfo("America/New_York")


def _due_times(rng: random.Random) -> list[dt.datetime]:
    """More distinct objects than the memo holds, and equal instants as distinct objects."""
    out: list[dt.datetime] = []
    for n in range(_STAMP_CACHE + 200):
        when = T0 + dt.timedelta(hours=rng.randrange(0, 24 * 40), minutes=n % 60)
        out.append(when)
        if n % 7 == 0:
            out.append(when.astimezone(UTC))  # the same instant, another object and zone
        if n % 11 == 0:
            out.append(when.astimezone(YORK))
    return out


def _expected(rows: dict[str, dt.datetime | None], before: dt.datetime) -> list[str]:
    due = [(when, sid) for sid, when in rows.items() if when is not None and when < before]
    return [sid for _, sid in sorted(due, key=lambda p: (p[0].timestamp(), p[1]))]


def test_the_due_index_matches_a_plain_sort_through_many_moves() -> None:
    rng = random.Random(11)
    times = _due_times(rng)
    shared = times[0]
    store = MemoryStore()
    current: dict[str, Suggestion] = {}
    due: dict[str, dt.datetime | None] = {}
    for n in range(400):
        sid = f"m{rng.randrange(10**6):06d}-{n}"
        when = shared if n % 5 == 0 else rng.choice(times)
        s = make_suggestion(sid, state=State.TRANSFERRED, due_at=when)
        store.commit(create(s))
        current[sid], due[sid] = s, when
    bounds = [T0 + dt.timedelta(days=d) for d in (1, 5, 13, 22, 41)]
    for round_ in range(6):
        for sid in rng.sample(sorted(current), 150):
            moved_to: dt.datetime | None = rng.choice([None, shared, *rng.sample(times, 3)])
            change = advance(current[sid], due_at=moved_to)
            store.commit(change)
            current[sid], due[sid] = change.suggestion, moved_to
        for before in bounds:
            got = [r.id for r in store.query(Query(due_before=before))]
            assert got == _expected(due, before), (round_, before)
        assert len(store._stamps) <= _STAMP_CACHE


def test_equal_due_times_that_are_distinct_objects_share_one_place() -> None:
    store = MemoryStore()
    when = T0 + dt.timedelta(days=3)
    copy = dt.datetime.fromisoformat(when.isoformat())  # the same instant, a fixed-offset zone
    twins = [when, when.astimezone(UTC), when.astimezone(YORK), copy]
    assert len({id(t) for t in twins}) == 4
    for n, t in enumerate(twins):
        store.commit(create(make_suggestion(f"tw{3 - n}", state=State.TRANSFERRED, due_at=t)))
    assert [r.id for r in store.query(Query(due_before=when + dt.timedelta(seconds=1)))] == ["tw0", "tw1", "tw2", "tw3"]
    assert store.query(Query(due_before=when)) == []
    assert len(store._due) == 1
