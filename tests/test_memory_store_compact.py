"""MemoryStore keeps histories and the outbox in a compact form: what it gives back must be exact.

The contract kit (test_store_contract.py) checks the store's behaviour; these tests check
what is particular to the compact form — every event and message a simulated campaign
commits comes back equal and of the same types, the events Flow writes are all kept
compactly (a silent fallback to whole events would undo the memory saving), odd events and
messages are kept whole and exactly, and the tamper hook still lets verify find an edit.
"""

from __future__ import annotations

import datetime as dt
import enum
import gc
import threading
import tracemalloc
import types
from collections.abc import Iterator
from typing import Any

import attrs
import pytest

from jianyi_flow import MemoryStore, Query, ValidationError
from jianyi_flow.domain.history import seal, verify_events
from jianyi_flow.domain.model import Actor, Event, Role, State, Suggestion
from jianyi_flow.simulation import CampaignSimulator
from jianyi_flow.storage.base import Change, OutboxMessage, order
from jianyi_flow.storage.memory import _HASH, _HDR
from jianyi_flow.testing import assert_same_event, create, make_suggestion, message
from jianyi_flow.testing.contract import OFFICE_ACTOR, T0, advance

FAR = dt.datetime(2090, 1, 1, tzinfo=dt.UTC)


class Recorder(MemoryStore):
    """A MemoryStore that also keeps every Change it was given (what history must give back)."""

    def __init__(self) -> None:
        super().__init__()
        self.changes: list[Change] = []

    def commit(self, change: Change) -> None:
        super().commit(change)
        self.changes.append(change)


def shapes_of(store: MemoryStore, sid: str) -> list[int]:
    """The shape index of each record of one history (0: the event is kept whole)."""
    store.history(sid)  # encodes what is pending
    blob = store._rows[sid][1]
    out: list[int] = []
    off = 0
    while off < len(blob):
        shape, _at, length = _HDR.unpack_from(blob, off)
        out.append(shape)
        off += _HDR.size + length + _HASH
    return out


_DRAINS = iter(range(1, 10**9))


def drain(store: MemoryStore) -> list[OutboxMessage]:
    """Every unsent message, claimed after every earlier lease ran out."""
    return store.claim(10**9, FAR + dt.timedelta(seconds=next(_DRAINS)), dt.timedelta(microseconds=1))


@pytest.fixture(scope="module")
def campaign() -> tuple[Recorder, CampaignSimulator]:
    from jianyi_flow.presets import yongchuan_2024

    store = Recorder()
    sim = CampaignSimulator(yongchuan_2024(), store, seed=3, suggestions=150)
    sim.run()
    return store, sim


def test_every_event_of_a_campaign_comes_back_exactly(campaign: tuple[Recorder, CampaignSimulator]) -> None:
    store, _ = campaign
    committed: dict[str, list[Event]] = {}
    for change in store.changes:
        committed.setdefault(change.suggestion.id, []).append(change.event)
    for sid, events in committed.items():
        history = store.history(sid)
        assert len(history) == len(events)
        for got, want in zip(history, events, strict=True):
            assert_same_event(got, want)
        assert verify_events(sid, history, store.load(sid)) == []
    exported = [e for e in store.export_events(None, 10**6)]
    assert [(e.suggestion_id, e.version) for e in exported] == [
        (sid, e.version) for sid in sorted(committed) for e in committed[sid]
    ]


def test_flow_events_are_all_kept_compactly(campaign: tuple[Recorder, CampaignSimulator]) -> None:
    store, _ = campaign
    whole = [(sid, v) for sid in store._ids for v, shape in enumerate(shapes_of(store, sid), 1) if shape == 0]
    assert whole == [], "Flow's events should never need to be kept whole"
    assert len(store._shapes) < 200  # shapes are shared: a handful per command
    assert not store._outbox.odd, "Flow's messages should never need to be kept whole"


def test_every_message_of_a_campaign_comes_back_exactly(campaign: tuple[Recorder, CampaignSimulator]) -> None:
    store, _ = campaign
    sent = [m for change in store.changes for m in change.messages]
    claimed = store.claim(10**9, FAR, dt.timedelta(days=1))  # leased: the module fixture stays as it was
    assert [m.id for m in claimed] == list(range(1, len(sent) + 1))
    for got, want in zip(claimed, sent, strict=True):
        assert got == attrs.evolve(want, id=got.id, attempts=1)
        for name in ("topic", "suggestion_id", "recipient", "version", "payload"):
            assert type(getattr(got, name)) is type(getattr(want, name))
        assert type(got.payload["state"]) is type(want.payload["state"])
        assert got.created_at.tzinfo is want.created_at.tzinfo


def test_the_due_index_agrees_with_the_rows(campaign: tuple[Recorder, CampaignSimulator]) -> None:
    store, sim = campaign
    rows = [store.load(sid) for sid in store._ids]
    for bound in (T0, sim.clock.now(), FAR):
        for query in (Query(due_before=bound), Query(due_after=bound), Query(due_before=bound, limit=7)):
            expected = order(query, [r for r in rows if r.due_at is not None and (
                (query.due_before is None or r.due_at < query.due_before)
                and (query.due_after is None or r.due_at >= query.due_after))])
            assert [r.id for r in store.query(query)] == [r.id for r in expected]


def test_history_sees_a_commit_at_once() -> None:
    store = MemoryStore()
    change = create(make_suggestion("p-1"), notify=["office"])
    store.commit(change)
    assert store._pending  # not encoded yet...
    [event] = store.history("p-1")  # ...but read as if it were
    assert_same_event(event, change.event)
    [claimed] = drain(store)
    assert claimed == attrs.evolve(change.messages[0], id=1, attempts=1)


def test_returned_events_and_messages_are_copies() -> None:
    store = MemoryStore()
    change = create(make_suggestion("c-1"), notify=["office"])
    store.commit(change)
    event = store.history("c-1")[0]
    event.changes["title"] = "改了"  # type: ignore[index]
    event.changes["accused_units"].append("x")
    assert_same_event(store.history("c-1")[0], change.event)
    [claimed] = drain(store)
    claimed.payload["state"] = "改了"  # type: ignore[index]
    [again] = drain(store)
    assert again.payload == {"state": "received"}


class Kind(str):
    """A str subclass: equal to a str, but not of its type."""


class Colour(enum.StrEnum):
    RED = "red"


@attrs.frozen
class LoudEvent(Event):
    volume: int = 11


@attrs.frozen
class LoudActor(Actor):
    pass


class Moment(dt.datetime):
    pass


def _odd_events() -> Iterator[tuple[str, Any]]:
    """(name, function of a fresh sealed first Event -> the odd Event to commit)."""
    yield "str-subclass kind", lambda e: seal(attrs.evolve(e, kind=Kind("receive")))
    yield "upper-case hash", lambda e: attrs.evolve(e, hash=e.hash.upper())
    yield "hash not hex", lambda e: attrs.evolve(e, hash="z" * 64)
    yield "short hash", lambda e: attrs.evolve(e, hash="ab")
    yield "hash with spaces", lambda e: attrs.evolve(e, hash=" ".join(e.hash[i:i + 2] for i in range(0, 64, 2)))
    yield "prev_hash off the chain", lambda e: seal(attrs.evolve(e, prev_hash="0" * 64))
    yield "tuple in payload", lambda e: seal(attrs.evolve(e, payload={"t": (1, 2)}))
    yield "StrEnum in payload", lambda e: seal(attrs.evolve(e, payload={"c": Colour.RED}))
    # (events the hash function cannot take keep the hash they had: the store does not check it)
    yield "mapping proxy payload", lambda e: attrs.evolve(e, payload=types.MappingProxyType({}))
    yield "int key in changes", lambda e: attrs.evolve(e, changes={**e.changes, 7: "seven"})
    yield "StrEnum in changes", lambda e: seal(attrs.evolve(e, changes={**e.changes, "area": Colour.RED}))
    yield "float and bool in changes", lambda e: seal(attrs.evolve(e, changes={**e.changes, "x": [1.5, True, 1]}))
    yield "StrEnum reason", lambda e: seal(attrs.evolve(e, reason=Colour.RED))
    yield "str reason", lambda e: seal(attrs.evolve(e, reason="理由 😀"))
    yield "naive at", lambda e: attrs.evolve(e, at=e.at.replace(tzinfo=None))
    yield "datetime subclass at", lambda e: seal(attrs.evolve(e, at=Moment.fromisoformat(e.at.isoformat())))
    yield "fixed-offset at", lambda e: seal(attrs.evolve(e, at=e.at.astimezone(dt.timezone(dt.timedelta(hours=-3)))))
    yield "Event subclass", lambda e: LoudEvent(**attrs.asdict(e, recurse=False))
    yield "Actor subclass", lambda e: seal(attrs.evolve(e, actor=LoudActor("a-1", Role.SYSTEM)))
    yield "str to_state", lambda e: attrs.evolve(e, to_state="received")


@pytest.mark.parametrize(("name", "make"), list(_odd_events()), ids=[n for n, _ in _odd_events()])
def test_odd_events_come_back_exactly(name: str, make: Any) -> None:
    store = MemoryStore()
    base = create(make_suggestion("odd-1"), notify=["office", "proposer:odd-1"])
    odd = make(base.event)
    store.commit(attrs.evolve(base, event=odd))
    [got] = store.history("odd-1")
    assert type(got) is type(odd)
    if odd.at.tzinfo is None:  # the kit's check wants aware times
        assert got == odd and got.at.tzinfo is None
    else:
        assert_same_event(got, odd)
    assert got.kind.__class__ is odd.kind.__class__
    assert type(got.at) is type(odd.at) and got.at.tzinfo == odd.at.tzinfo and got.at.fold == odd.at.fold
    assert type(got.reason) is type(odd.reason) and type(got.payload) is type(odd.payload)
    claimed = drain(store)
    assert claimed == [attrs.evolve(m, id=i, attempts=1) for i, m in enumerate(base.messages, 1)]
    # and a normal event after an odd one still chains to it
    after = advance(attrs.evolve(base.suggestion, event_hash=odd.hash), kind="note", reason="再来")
    store.commit(after)
    assert_same_event(store.history("odd-1")[1], after.event)


def _odd_messages(sid: str) -> Iterator[OutboxMessage]:
    yield message(sid, 1, "office", topic="other")
    yield message(sid, 1, "office", topic="receive", at=T0 + dt.timedelta(seconds=1))
    yield message(sid, 1, "office", topic="receive", at=T0.astimezone(dt.UTC))
    yield message(sid, 1, "office", topic="receive", payload={"state": "registered"})
    yield message(sid, 1, "office", topic="receive", payload={"state": State.RECEIVED})
    yield message(sid, 1, "office", topic="receive", payload={"state": "received", "more": 1})
    yield message("someone-else", 1, "office", topic="receive")
    yield message(sid, 2, "office", topic="receive")
    yield attrs.evolve(message(sid, 1, topic="receive"), recipient=Kind("office"))
    yield attrs.evolve(message(sid, 1, topic="receive"), id=99, attempts=5)


def test_odd_messages_come_back_exactly() -> None:
    store = MemoryStore()
    sid = "om-1"
    odd = tuple(_odd_messages(sid))
    base = create(make_suggestion(sid), notify=["office"], messages=odd)
    store.commit(base)
    claimed = drain(store)
    assert claimed == [attrs.evolve(m, id=i, attempts=1) for i, m in enumerate(base.messages, 1)]
    for got, want in zip(claimed, base.messages, strict=True):
        assert type(got.recipient) is type(want.recipient)
        assert got.created_at.tzinfo is want.created_at.tzinfo
        assert type(got.payload["state"]) is type(want.payload["state"])
    # the first and the last (id and attempts are the store's to set) say only what the event says
    assert set(store._outbox.odd) == set(range(2, len(base.messages)))


def test_sent_messages_are_dropped_and_ids_go_on() -> None:
    store = MemoryStore()
    for n in range(1500):
        store.commit(create(make_suggestion(f"m{n:04d}"), notify=["office", f"proposer:m{n:04d}"]))
    first = store.claim(2000, T0, dt.timedelta(minutes=1))
    store.mark_sent([m.id for m in first if m.id is not None])
    rest = store.claim(5000, T0, dt.timedelta(minutes=1))
    assert [m.id for m in first + rest] == list(range(1, 3001))
    store.mark_sent([m.id for m in rest[:-1] if m.id is not None])  # all but the last
    outbox = store._outbox
    assert len(outbox.sids) == 1 and outbox.leases.keys() == {3000}  # the sent ones are cut off
    [left] = store.claim(10, T0 + dt.timedelta(minutes=1), dt.timedelta(minutes=1))
    assert left.id == 3000 and left.attempts == 2 and left.recipient == "proposer:m1499"
    store.mark_sent([left.id or 0])
    store.commit(create(make_suggestion("late"), notify=["office"]))
    [late] = store.claim(10, FAR, dt.timedelta(minutes=1))
    assert late.id == 3001 and late.suggestion_id == "late"
    assert not outbox.sent and not outbox.leases.keys() - {3001}


def test_replace_event_lets_verify_find_the_edit() -> None:
    from jianyi_flow.presets import yongchuan_2024

    store = MemoryStore()
    sim = CampaignSimulator(yongchuan_2024(), store, seed=2, suggestions=40)
    sim.run()
    assert sim.flow.verify_all() == []
    victim = "S0000007"
    before = store.history(victim)
    outbox_before = [(m.id, m.topic, m.recipient, dict(m.payload)) for m in drain(store)]
    store._replace_event(victim, 1, attrs.evolve(before[1], reason="改过的理由"))
    after = store.history(victim)
    assert after[1].reason == "改过的理由" and after[1].hash == before[1].hash
    assert [e for i, e in enumerate(after) if i != 1] == [e for i, e in enumerate(before) if i != 1]
    problems = sim.flow.verify_all()
    assert {p.suggestion_id for p in problems} == {victim}
    assert any(p.version == 2 and "hash" in p.problem for p in problems)
    assert [(m.id, m.topic, m.recipient, dict(m.payload)) for m in drain(store)] == outbox_before
    with pytest.raises(IndexError):
        store._replace_event(victim, len(after), before[0])


def test_equal_actors_share_one_object_and_others_do_not() -> None:
    store = MemoryStore()
    change = create(make_suggestion("a-1"), actor=Actor("clerk", Role.COLLECTION_OFFICE, unit="zjb", name="甲"))
    store.commit(change)
    current = change.suggestion
    actors = [Actor("clerk", Role.COLLECTION_OFFICE, unit="zjb", name="甲"),  # equal: shared
              Actor("clerk", Role.COLLECTION_OFFICE, unit="zjb", name="乙"),  # same id, another name
              Actor("clerk", Role.HANDLING_UNIT, unit="zjb", name="甲"),  # same id, another role
              Actor("clerk", Role.COLLECTION_OFFICE, unit="zjb", name=Kind("甲"))]  # equal but a str subclass
    for actor in actors:
        nxt = advance(current, actor=actor)
        store.commit(nxt)
        current = nxt.suggestion
    history = store.history("a-1")
    assert history[1].actor is history[0].actor
    for got, want in zip(history[2:], actors[1:], strict=True):
        assert got.actor == want and type(got.actor.name) is type(want.name)


def test_fresh_fixed_offset_zones_share_a_shape() -> None:
    store = MemoryStore()
    change = create(make_suggestion("z-1"))
    store.commit(change)
    current = change.suggestion
    for n in range(50):
        zone = dt.timezone(dt.timedelta(hours=8), "CST") if n % 2 else dt.timezone(dt.timedelta(hours=-5))
        nxt = advance(current, at=(T0 + dt.timedelta(minutes=n + 1)).astimezone(zone), kind="note")
        store.commit(nxt)
        current = nxt.suggestion
    history = store.history("z-1")
    assert len(store._shapes) <= 4
    assert [e.at.tzname() for e in history[1:]] == ["UTC-05:00" if n % 2 == 0 else "CST" for n in range(50)]
    assert verify_events("z-1", history, store.load("z-1")) == []


def test_readers_see_consistent_histories_while_one_writes() -> None:
    store = MemoryStore()
    change = create(make_suggestion("t-1"))
    store.commit(change)
    stop = threading.Event()
    seen: list[int] = []
    errors: list[BaseException] = []

    def read() -> None:
        try:
            while not stop.is_set():
                history = store.history("t-1")
                row = store.load("t-1")
                assert row.version >= len(history)
                assert verify_events("t-1", history, None) == []
                seen.append(len(history))
        except BaseException as exc:
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(2)]
    for t in readers:
        t.start()
    current: Suggestion = change.suggestion
    for n in range(300):
        nxt = advance(current, kind="note", reply=f"第{n}次", notify=["office"])
        store.commit(nxt)
        current = nxt.suggestion
    stop.set()
    for t in readers:
        t.join(30)
    assert not errors, errors
    assert len(store.history("t-1")) == 301 and seen


def test_a_suggestion_holds_a_few_kilobytes() -> None:
    """A coarse guard (the benchmark measures it precisely): what only the store keeps alive."""
    from jianyi_flow.presets import yongchuan_2024

    n = 300
    CampaignSimulator(yongchuan_2024(), MemoryStore(), seed=1, suggestions=10).run()  # warm module caches
    gc.collect()
    tracemalloc.start()
    try:
        store = MemoryStore()
        CampaignSimulator(yongchuan_2024(), store, seed=1, suggestions=n).run()
        store.history("S0000001")  # encode what is pending
        gc.collect()
        held = tracemalloc.get_traced_memory()[0]
        del store
        gc.collect()
        held -= tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert held / n < 3.5 * 1024


def test_a_change_must_agree_before_anything_is_queued() -> None:
    store = MemoryStore()
    change = create(make_suggestion("v-1"))
    bad = attrs.evolve(change, event=attrs.evolve(change.event, version=2))
    with pytest.raises(ValidationError):
        store.commit(bad)
    assert store.history("v-1") == [] and not store._pending
    store.commit(change)
    assert [e.kind for e in store.history("v-1")] == ["receive"]
    assert OFFICE_ACTOR == store.history("v-1")[0].actor
