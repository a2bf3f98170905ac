"""``StoreContract``: the tests every :class:`~jianyi_flow.storage.base.Store` must pass.

Subclass it in your test suite with a class whose name starts with ``Test`` and give it
``make_store``, returning a new, empty store each call::

    from jianyi_flow.testing import StoreContract

    class TestMyStore(StoreContract):
        def make_store(self) -> MyStore:
            return MyStore(...)

pytest then runs every ``test_*`` method below against your store.  The shipped stores
(``MemoryStore``, ``SqlStore`` on SQLite, PostgreSQL and MariaDB) and the example adapter
in ``examples/custom_store.py`` run exactly this kit, so passing it means behaving like
them: :class:`~jianyi_flow.storage.memory.MemoryStore` is the reference.

The tests only use the :class:`~jianyi_flow.storage.base.Store` protocol.  They make no
assumption about isolation levels beyond "a committed write is visible to the next call,
from any thread", never assume outbox ids start at 1, and observe the outbox without a
peek method: :meth:`StoreContract.drain` claims every unsent message at an instant far in
the future, later each time, so earlier leases have expired.

Two kinds of fixtures are used: suggestions driven through :class:`~jianyi_flow.Flow` with
a :class:`~jianyi_flow.FakeClock` (what production writes), and hand-made
:class:`~jianyi_flow.storage.base.Change` objects for edge values no command produces (every
field set at once, odd time-zone offsets, 10 000 characters of Chinese).  The builders
(:func:`make_suggestion`, :func:`create`, :func:`advance`) are public so adapter authors
can write further tests the same way.
"""

from __future__ import annotations

import abc
import datetime as dt
import enum
import itertools
import random
import threading
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, TypeVar
from zoneinfo import ZoneInfo

import attrs
import pytest

from ..domain.clock import SHANGHAI, FakeClock
from ..domain.history import seal, verify_events
from ..domain.model import (
    SUGGESTION_FIELDS,
    Actor,
    Channel,
    Event,
    Outcome,
    Proposer,
    ProposerKind,
    Rating,
    Role,
    State,
    Suggestion,
    SuggestionDraft,
    encode_changes,
    replay,
)
from ..errors import (
    ConcurrencyConflict,
    DuplicateSuggestion,
    IdempotencyKeyReused,
    InvalidTransition,
    NotFound,
    ValidationError,
)
from ..service.flow import OPEN_STATES, Flow
from ..storage.base import Change, IdempotencyRecord, OutboxMessage, Query, Store, matches, order

__all__ = [
    "OFFICE_ACTOR",
    "PROPOSER_ACTOR",
    "T0",
    "UNIT_ACTOR",
    "StoreContract",
    "advance",
    "assert_same_event",
    "assert_same_suggestion",
    "create",
    "make_maximal",
    "make_suggestion",
    "message",
]

T0 = dt.datetime(2024, 8, 21, 9, 0, tzinfo=SHANGHAI)
"""Wednesday 21 August 2024, 09:00 in Shanghai: a working day far from any holiday."""

OFFICE_ACTOR = Actor(id="office-1", role=Role.COLLECTION_OFFICE, unit="zjb", name="区征集办")
UNIT_ACTOR = Actor(id="unit-1", role=Role.HANDLING_UNIT, unit="u_traffic", name="交通局")
PROPOSER_ACTOR = Actor(id="proposer-1", role=Role.PROPOSER, name="张三")

_NOT_REPLAYED = frozenset({"id", "state", "version", "updated_at", "event_hash"})
_REPLAYED = tuple(name for name in SUGGESTION_FIELDS if name not in _NOT_REPLAYED)
_FAR_FUTURE = dt.datetime(2090, 1, 1, tzinfo=dt.UTC)
_TIMEOUT = 60.0

R = TypeVar("R")

# Offsets a Shanghai-only implementation would get wrong: half and three-quarter hours,
# negative, +14:00, a zone with daylight saving time.
ODD_ZONES: tuple[dt.tzinfo, ...] = (
    dt.timezone(dt.timedelta(hours=5, minutes=45)),
    dt.timezone(-dt.timedelta(hours=3, minutes=30)),
    dt.UTC,
    ZoneInfo("America/New_York"),
    dt.timezone(dt.timedelta(hours=14)),
    SHANGHAI,
    dt.timezone(-dt.timedelta(hours=9, minutes=30)),
)


# --- builders -------------------------------------------------------------------------------
def make_suggestion(suggestion_id: str, *, at: dt.datetime = T0, **fields: Any) -> Suggestion:
    """A plausible suggestion in state ``received`` at version 1; ``fields`` override anything."""
    values: dict[str, Any] = {
        "id": suggestion_id,
        "campaign": "jy2024",
        "title": "关于优化新桥公交线路的建议",
        "subject": "新桥片区公交线路调整",
        "problem": "早高峰 231 路班次间隔过长，乘客候车超过 20 分钟。",
        "measures": "建议早高峰加密班次至 8 分钟一班。",
        "area": "xinqiao",
        "topic": "transport",
        "channel": Channel.ONLINE_PORTAL,
        "proposer": Proposer(name="张三", phone="13812345678", address="重庆市沙坪坝区新桥正街12号"),
        "recommending_unit": None,
        "accused_units": (),
        "state": State.RECEIVED,
        "version": 1,
        "received_at": at,
        "updated_at": at,
    }
    values.update(fields)
    return Suggestion(**values)


def message(
    suggestion_id: str,
    version: int,
    recipient: str = "office",
    *,
    topic: str = "notice",
    at: dt.datetime = T0,
    payload: Mapping[str, Any] | None = None,
) -> OutboxMessage:
    """An outbox message about version ``version`` of a suggestion."""
    return OutboxMessage(
        topic=topic,
        suggestion_id=suggestion_id,
        version=version,
        recipient=recipient,
        created_at=at,
        payload=dict(payload) if payload is not None else {"state": "received"},
    )


def create(
    s: Suggestion,
    *,
    key: str | None = None,
    notify: Sequence[str] = (),
    messages: Sequence[OutboxMessage] = (),
    actor: Actor = OFFICE_ACTOR,
    kind: str = "receive",
) -> Change:
    """The Change that creates ``s`` (as version 1), with a sealed event recording every field.

    The event's ``changes`` hold every replayed field, so ``replay(history) == row``
    holds as it does for Flow's commands.  ``notify`` adds one message per recipient.
    """
    changes = encode_changes({name: getattr(s, name) for name in _REPLAYED})
    event = seal(Event(s.id, 1, kind, None, s.state, actor, s.updated_at, changes=changes))
    row = attrs.evolve(s, version=1, event_hash=event.hash)
    notices = tuple(message(s.id, 1, r, topic=kind, at=s.updated_at) for r in notify)
    return Change(row, event, 0, (*notices, *messages), key)


def advance(
    prev: Suggestion,
    *,
    at: dt.datetime | None = None,
    kind: str = "edit",
    state: State | None = None,
    actor: Actor = OFFICE_ACTOR,
    reason: str | None = None,
    payload: Mapping[str, Any] | None = None,
    key: str | None = None,
    notify: Sequence[str] = (),
    messages: Sequence[OutboxMessage] = (),
    recorded: Mapping[str, Any] | None = None,
    **fields: Any,
) -> Change:
    """The Change that moves ``prev`` one version on, setting ``fields`` (and ``state``).

    ``at`` defaults to a minute after ``prev.updated_at``.  The event records ``fields``
    unless ``recorded`` says otherwise (to build a Change whose event under-reports what
    changed: a store must still write the row it is given).
    """
    when = at if at is not None else prev.updated_at + dt.timedelta(minutes=1)
    to_state = state if state is not None else prev.state
    version = prev.version + 1
    event = seal(
        Event(
            prev.id,
            version,
            kind,
            prev.state,
            to_state,
            actor,
            when,
            reason=reason,
            changes=encode_changes(fields if recorded is None else recorded),
            payload=dict(payload or {}),
            prev_hash=prev.event_hash,
        )
    )
    row = attrs.evolve(prev, state=to_state, version=version, updated_at=when, event_hash=event.hash, **fields)
    notices = tuple(message(prev.id, version, r, topic=kind, at=when) for r in notify)
    return Change(row, event, prev.version, (*notices, *messages), key)


def _sample(tp: Any, name: str, i: int, default: Any) -> Any:
    """A value of type ``tp`` different from ``default`` (for :func:`make_maximal`)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _sample(args[0], name, i, default)
    if origin is tuple:
        item = typing.get_args(tp)[0]
        return tuple(dict.fromkeys(_sample(item, name, i + k, None) for k in range(2)))
    if origin is frozenset:
        item = typing.get_args(tp)[0]
        return frozenset(_sample(item, name, i + k, None) for k in range(2))
    if tp is dt.datetime:
        zone = ODD_ZONES[i % len(ODD_ZONES)]
        return (T0 + dt.timedelta(days=i, seconds=i * 37, microseconds=(i * 104_729) % 1_000_000 or 1)).astimezone(
            zone
        )
    if tp is bool:
        return not default if isinstance(default, bool) else True
    if tp is int:
        return 3 + i
    if tp is str:
        return f"{name}：第{i}项 ✅"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        members = list(tp)
        pick = members[(len(members) - 1 - i) % len(members)]
        return pick if pick != default else members[(len(members) - 2 - i) % len(members)]
    if isinstance(tp, type) and attrs.has(tp):
        hints = typing.get_type_hints(tp)
        values = {}
        for k, a in enumerate(attrs.fields(typing.cast(Any, tp))):
            d = a.default if a.default is not attrs.NOTHING else None
            values[a.name] = _sample(hints[a.name], f"{name}.{a.name}", i + k, d)
        return tp(**values)
    raise TypeError(f"make_maximal cannot build a value for {name}: {tp!r}; extend jianyi_flow.testing.contract")


def make_maximal(suggestion_id: str) -> Suggestion:
    """A suggestion with every field set to a value other than its default.

    Built from the model's type hints, so a field added to
    :class:`~jianyi_flow.domain.model.Suggestion` is covered without editing the kit.  Codes
    (ids, units, area...) are ASCII like Flow's; text is Chinese with an emoji; each
    datetime has its own odd offset and microseconds.
    """
    hints = typing.get_type_hints(Suggestion)
    values: dict[str, Any] = {}
    fields: tuple[attrs.Attribute[Any], ...] = attrs.fields(Suggestion)
    for i, a in enumerate(fields):
        default = a.default if a.default is not attrs.NOTHING else None
        values[a.name] = _sample(hints[a.name], a.name, i, default)
    values.update(
        id=suggestion_id,
        campaign="jy2024",
        area="shapingba",
        topic="environment",
        lead_unit="u_env",
        recommending_unit="town-xinqiao",
        co_units=("u_traffic", "u_housing"),
        accused_units=("u_police",),
        state=State.REPLIED,
        version=1,
        due_step="rate",
        event_hash="",
        proposer=Proposer(
            name="欧阳娜娜",
            kind=ProposerKind.PEOPLES_CONGRESS_DEPUTY,
            phone="023-49299053",
            address="重庆市永川区人民大道 1 号 🏠",
            confidential=True,
            account="wx_ouyang",
        ),
    )
    return Suggestion(**values)


def _run_threads(count: int, work: Callable[[int], R]) -> list[R | BaseException]:
    """Run ``work(i)`` on ``count`` threads released together; each result or exception, by ``i``."""
    barrier = threading.Barrier(count)
    results: list[R | BaseException] = [AssertionError("thread did not finish")] * count

    def target(i: int) -> None:
        try:
            barrier.wait(_TIMEOUT)
            results[i] = work(i)
        except BaseException as exc:  # reported to the test, which decides
            results[i] = exc

    threads = [threading.Thread(target=target, args=(i,), daemon=True) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(_TIMEOUT)
    assert not any(t.is_alive() for t in threads), "a store call hung (deadlock or lock wait)"
    return results


def _assert_same(actual: Any, expected: Any, where: str) -> None:
    """Equal, of the same type (a StrEnum equals its str value, so ``==`` alone would not do), aware."""
    if isinstance(expected, dt.datetime):
        assert isinstance(actual, dt.datetime), f"{where}: {actual!r} is not a datetime"
        assert actual.tzinfo is not None and actual.utcoffset() is not None, f"{where}: {actual!r} is naive"
        # compare in UTC: Python never calls an ambiguous wall time (DST fold) equal to one in another zone
        assert actual.astimezone(dt.UTC) == expected.astimezone(dt.UTC), f"{where}: {actual!r} != {expected!r}"
        return
    assert type(actual) is type(expected), f"{where}: {type(actual).__name__} instead of {type(expected).__name__}"
    if isinstance(expected, (tuple, list)):
        assert len(actual) == len(expected), f"{where}: {actual!r} != {expected!r}"
        for k, (a, e) in enumerate(zip(actual, expected, strict=True)):
            _assert_same(a, e, f"{where}[{k}]")
    elif isinstance(expected, dict):
        assert actual.keys() == expected.keys(), f"{where}: keys {sorted(actual)} != {sorted(expected)}"
        for k in expected:
            _assert_same(actual[k], expected[k], f"{where}[{k!r}]")
    elif attrs.has(type(expected)):
        for a in attrs.fields(type(expected)):
            _assert_same(getattr(actual, a.name), getattr(expected, a.name), f"{where}.{a.name}")
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


def assert_same_suggestion(actual: Suggestion, expected: Suggestion) -> None:
    """Every field equal and of the same type; datetimes aware and the same instant."""
    _assert_same(actual, expected, f"suggestion {expected.id}")
    assert actual == expected


def assert_same_event(actual: Event, expected: Event) -> None:
    _assert_same(actual, expected, f"event {expected.suggestion_id} v{expected.version}")
    assert actual == expected


class StoreContract(abc.ABC):
    """The store contract as pytest tests; subclass it as ``Test<YourStore>`` and define :meth:`make_store`.

    ``threads`` is how many threads the concurrency tests run at once.
    """

    threads: ClassVar[int] = 4

    @abc.abstractmethod
    def make_store(self) -> Store:
        """A new, empty store (called once per test; the kit closes it afterwards)."""

    @pytest.fixture
    def store(self) -> Iterator[Store]:
        store = self.make_store()
        try:
            yield store
        finally:
            store.close()

    # --- helpers for the tests ---------------------------------------------------------------
    _drains: ClassVar[itertools.count[int]] = itertools.count(1)

    def drain(self, store: Store) -> list[OutboxMessage]:
        """Every message not yet marked sent, oldest first (claimed at an instant after all earlier leases)."""
        now = _FAR_FUTURE + dt.timedelta(seconds=next(self._drains))
        found: list[OutboxMessage] = []
        while True:
            batch = store.claim(1000, now, dt.timedelta(microseconds=1))
            found.extend(batch)
            if len(batch) < 1000:
                return found

    def outbox_view(self, store: Store) -> list[tuple[Any, ...]]:
        """The unsent messages without their attempt counts (claiming bumps those)."""
        return [(m.id, m.topic, m.suggestion_id, m.version, m.recipient, dict(m.payload)) for m in self.drain(store)]

    def snapshot(self, store: Store, suggestion_id: str, key: str | None = None) -> tuple[Any, ...]:
        """What a failed commit must leave unchanged: the row, its history, the key, the outbox."""
        try:
            row: Suggestion | None = store.load(suggestion_id)
        except NotFound:
            row = None
        record = store.idempotency(key) if key is not None else None
        return row, store.history(suggestion_id), record, self.outbox_view(store)

    def flow(self, store: Store, clock: FakeClock | None = None) -> Flow:
        counter = itertools.count(1)
        return Flow(store, clock or FakeClock(T0), campaign="jy2024", ids=lambda: f"f{next(counter):04d}")

    @staticmethod
    def draft(**overrides: Any) -> SuggestionDraft:
        values: dict[str, Any] = {
            "title": "关于在新桥医院站增设公交站台的建议",
            "subject": "新桥片区公交线路调整",
            "problem": "早高峰 231 路班次间隔过长，乘客候车超过 20 分钟；医院门口无站台。",
            "measures": "建议早高峰加密班次至 8 分钟一班，并增设新桥医院站。",
            "area": "xinqiao",
            "proposer": Proposer(
                name="李四",
                kind=ProposerKind.INFORMATION_OFFICER,
                phone="13912345678",
                address="重庆市永川区中山路 8 号",
                confidential=True,
                account="wx_lisi",
            ),
            "channel": Channel.WECHAT,
            "topic": "transport",
            "recommending_unit": "town-xinqiao",
            "accused_units": ("u_police",),
        }
        values.update(overrides)
        return SuggestionDraft(**values)

    # --- the protocol ----------------------------------------------------------------------------
    def test_is_a_store(self, store: Store) -> None:
        assert isinstance(store, Store)

    def test_unknown_ids(self, store: Store) -> None:
        with pytest.raises(NotFound):
            store.load("nobody")
        assert store.history("nobody") == []
        assert store.idempotency("no-such-key") is None
        assert store.query(Query()) == []
        assert store.claim(10, T0, dt.timedelta(minutes=5)) == []
        store.mark_sent([1, 2, 3])  # unknown ids are ignored

    # --- round trips -------------------------------------------------------------------------------
    def test_flow_lifecycle_round_trips(self, store: Store) -> None:
        """Every command's result is what the store gives back, and the history replays to it."""
        clock = FakeClock(T0)
        flow = self.flow(store, clock)
        results: list[Suggestion] = []

        def step(result: Suggestion) -> None:
            assert_same_suggestion(store.load(result.id), result)
            results.append(result)
            clock.advance(hours=3, microseconds=1)

        s = flow.receive(self.draft(), OFFICE_ACTOR, idempotency_key="receive-1")
        sid = s.id
        step(s)
        step(flow.register(sid, OFFICE_ACTOR))
        step(flow.transfer(sid, OFFICE_ACTOR, lead_unit="u_traffic", co_units=("u_env", "u_housing"), note="请办理"))
        step(flow.return_transfer(sid, UNIT_ACTOR, reason="不属本单位职责"))
        step(flow.transfer(sid, OFFICE_ACTOR, lead_unit="u_env", co_units=("u_traffic",)))
        step(flow.research(sid, UNIT_ACTOR, findings="实地调研三次，召开座谈会一次。"))
        step(flow.decide(sid, UNIT_ACTOR, outcome=Outcome.PARTIALLY_ADOPTED, reason="站台用地不足",
                         adopted_part="加密早高峰班次"))
        step(flow.extend(sid, OFFICE_ACTOR, days=10, approver="王主任", reason="需征求公交公司意见"))
        step(flow.reply(sid, UNIT_ACTOR, text="感谢您的建议，已加密班次。"))
        step(flow.rate(sid, PROPOSER_ACTOR, rating=Rating.DISSATISFIED, comment="站台仍未增设"))
        step(flow.reopen(sid, OFFICE_ACTOR, reason="建议人不满意，重新办理"))
        step(flow.research(sid, UNIT_ACTOR, findings="与规划部门协调，找到站台用地。"))
        step(flow.decide(sid, UNIT_ACTOR, outcome=Outcome.ADOPTED))
        step(flow.reply(sid, UNIT_ACTOR, text="站台已于本月建成。"))
        step(flow.rate(sid, PROPOSER_ACTOR, rating=Rating.SATISFIED, comment="满意 👍"))
        final = results[-1]
        assert final.state is State.RATED and final.reopen_count == 1 and final.return_count == 1
        history = store.history(sid)
        assert [e.version for e in history] == list(range(1, final.version + 1))
        assert [e.kind for e in history][:4] == ["receive", "register", "transfer", "return_transfer"]
        assert verify_events(sid, history, store.load(sid)) == []
        for event, result in zip(history, results, strict=True):
            assert event.hash == result.event_hash
            assert_same_suggestion(replay(history[: event.version]) or final, result)

        closed = flow.not_accept(flow.receive(self.draft(), OFFICE_ACTOR).id, OFFICE_ACTOR, reason="属个人诉求")
        assert_same_suggestion(store.load(closed.id), closed)
        withdrawn_id = flow.register(flow.receive(self.draft(topic=None), PROPOSER_ACTOR).id, OFFICE_ACTOR).id
        withdrawn = flow.withdraw(withdrawn_id, PROPOSER_ACTOR, reason="问题已自行解决")
        assert_same_suggestion(store.load(withdrawn.id), withdrawn)
        assert withdrawn.closed_at is not None and withdrawn.due_at is None

    def test_tick_round_trips(self, store: Store) -> None:
        """Time-driven events (overdue flag, unrated close) are stored like commands."""
        clock = FakeClock(T0)
        flow = self.flow(store, clock)
        late = flow.receive(self.draft(), OFFICE_ACTOR)
        assert late.due_at is not None
        clock.set(late.due_at + dt.timedelta(microseconds=1))
        written = flow.tick()
        assert [e.kind for e in written] == ["flag_overdue"]
        flagged = store.load(late.id)
        assert flagged.overdue_flagged_at == late.due_at and flagged.version == 2
        assert_same_event(store.history(late.id)[-1], written[0])
        assert flow.tick() == []  # the same due time is flagged once
        assert verify_events(late.id, store.history(late.id), flagged) == []

    def test_every_field_round_trips(self, store: Store) -> None:
        s = make_maximal("max-1")
        for a in attrs.fields(Suggestion):
            if a.default is not attrs.NOTHING and a.name not in ("version", "event_hash"):
                assert getattr(s, a.name) != a.default, f"make_maximal left {a.name} at its default"
        change = create(
            s,
            key="max-key",
            actor=Actor(id="unit-9", role=Role.HANDLING_UNIT, unit="u_env", name="生态环境局"),
            messages=(message(s.id, 1, "unit:u_env", payload={"备注": "请尽快办理", "n": [1, 2.5, None, True]}),),
        )
        store.commit(change)
        assert_same_suggestion(store.load(s.id), change.suggestion)
        [event] = store.history(s.id)
        assert_same_event(event, change.event)
        assert replay([event]) == change.suggestion
        assert store.idempotency("max-key") == IdempotencyRecord("max-key", s.id, 1, "receive")

        # and back to the defaults, by a second change
        defaults: dict[str, Any] = {
            a.name: a.default
            for a in attrs.fields(Suggestion)
            if a.default is not attrs.NOTHING and a.name not in ("version", "event_hash")
        }
        nullable: dict[str, Any] = {"campaign": None, "topic": None, "recommending_unit": None, "accused_units": ()}
        second = advance(change.suggestion, kind="reset", state=State.RECEIVED, reason=None, **defaults, **nullable)
        store.commit(second)
        assert_same_suggestion(store.load(s.id), second.suggestion)
        history = store.history(s.id)
        assert_same_event(history[1], second.event)
        assert verify_events(s.id, history, store.load(s.id)) == []

    def test_minimal_suggestion_round_trips(self, store: Store) -> None:
        s = make_suggestion("min-1", campaign=None, topic=None, title="", subject="", problem="", measures="",
                            proposer=Proposer(name="匿名"))
        change = create(s, actor=Actor(id="sys", role=Role.SYSTEM))
        store.commit(change)
        assert_same_suggestion(store.load("min-1"), change.suggestion)
        assert_same_event(store.history("min-1")[0], change.event)

    def test_aware_datetimes_round_trip_exactly(self, store: Store) -> None:
        nepal, newfoundland = ODD_ZONES[0], ODD_ZONES[1]
        new_york = ZoneInfo("America/New_York")
        due = dt.datetime(2024, 11, 3, 3, 30, 0, 999_999, tzinfo=new_york)  # DST ended two hours before
        s = make_suggestion(
            "tz-1",
            received_at=dt.datetime(2024, 8, 21, 6, 45, 0, 1, tzinfo=nepal),
            updated_at=dt.datetime(2024, 8, 20, 22, 0, 0, 999_999, tzinfo=newfoundland),
            due_at=due,
            objection_due_at=dt.datetime(2024, 12, 31, 23, 59, 59, 999_999, tzinfo=dt.timezone(dt.timedelta(hours=14))),
            closed_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
        )
        change = create(s, messages=(message("tz-1", 1, at=dt.datetime(2024, 8, 21, 1, 2, 3, 456_789, tzinfo=nepal)),))
        store.commit(change)
        loaded = store.load("tz-1")
        assert_same_suggestion(loaded, change.suggestion)
        for name in ("received_at", "updated_at", "due_at", "objection_due_at", "closed_at"):
            value = getattr(loaded, name)
            assert value.astimezone(dt.UTC) == getattr(s, name).astimezone(dt.UTC)
            assert value.astimezone(dt.UTC).microsecond == getattr(s, name).astimezone(dt.UTC).microsecond
        assert_same_event(store.history("tz-1")[0], change.event)
        [claimed] = store.claim(5, T0, dt.timedelta(minutes=1))
        _assert_same(claimed.created_at, change.messages[0].created_at, "message.created_at")

        # due bounds compare instants, to the microsecond, whatever zone the bound is in
        in_utc = due.astimezone(dt.UTC)
        assert store.query(Query(due_before=in_utc)) == []
        assert [r.id for r in store.query(Query(due_before=in_utc + dt.timedelta(microseconds=1)))] == ["tz-1"]
        assert [r.id for r in store.query(Query(due_after=due.astimezone(nepal)))] == ["tz-1"]
        assert store.query(Query(due_after=in_utc + dt.timedelta(microseconds=1))) == []

        # The second 01:30 of the night DST ends.  Python never calls an ambiguous wall time
        # equal to a time in another zone, so only the instant can be compared.
        ambiguous = dt.datetime(2024, 11, 3, 1, 30, 0, 5, tzinfo=new_york, fold=1)
        later = advance(change.suggestion, due_at=ambiguous, closed_at=ambiguous.replace(fold=0))
        store.commit(later)
        again = store.load("tz-1")
        _assert_same(again.due_at, ambiguous, "due_at (fold=1)")
        _assert_same(again.closed_at, ambiguous.replace(fold=0), "closed_at (fold=0)")
        assert again.due_at is not None and again.closed_at is not None
        assert again.due_at.timestamp() - again.closed_at.timestamp() == 3600

    def test_chinese_text_and_emoji_round_trip(self, store: Store) -> None:
        long_text = ("人民建议征集工作是践行全过程人民民主的重要举措。" * 400)[:10_000]
        s = make_suggestion(
            "zh-1",
            title="关于🚌公交“最后一公里”的建议 — 𠀀𪚥 (扩展B区汉字)",
            subject="引号 ' \" 反斜杠 \\ 百分号 % 下划线 _ 分号 ; -- 注释 /* */ ${x} {{y}}",
            problem=long_text,
            measures="第一行\n第二行\t制表符\r\n第三行\u3000全角空格 😀😃🎉👨‍👩‍👧",
            research_notes=long_text,
            reply=long_text,
            topic="交通出行",
            proposer=Proposer(name="欧阳娜娜", address="重庆市永川区 🏠 人民大道1号", account="微信_娜娜"),
        )
        change = create(
            s,
            actor=Actor(id="办公室-1", role=Role.COLLECTION_OFFICE, unit="zjb", name="区人民建议征集办公室 🏛"),
            messages=(
                message("zh-1", 1, "unit:交通局", payload={"备注": "请于十五日内办理 ⏰", "列表": ["一", "二"]}),
            ),
        )
        store.commit(change)
        assert_same_suggestion(store.load("zh-1"), change.suggestion)
        assert_same_event(store.history("zh-1")[0], change.event)
        assert [r.id for r in store.query(Query(topic="交通出行"))] == ["zh-1"]
        second = advance(change.suggestion, kind="comment", reason="理由：😀 超过一百字的理由" * 50,
                         payload={"附言": "“引号”与『括号』"}, rating_comment="很满意 👍🏻")
        store.commit(second)
        assert_same_suggestion(store.load("zh-1"), second.suggestion)
        assert_same_event(store.history("zh-1")[1], second.event)
        [claimed] = self.drain(store)
        assert dict(claimed.payload) == {"备注": "请于十五日内办理 ⏰", "列表": ["一", "二"]}
        assert claimed.recipient == "unit:交通局"

    def test_history_is_in_version_order(self, store: Store) -> None:
        change = create(make_suggestion("h-1"))
        store.commit(change)
        expected = [change.event]
        current = change.suggestion
        for n in range(12):
            nxt = advance(current, kind=f"step{n}", reason=f"第{n}步", payload={"n": n}, reply=f"答复{n}")
            store.commit(nxt)
            expected.append(nxt.event)
            current = nxt.suggestion
        history = store.history("h-1")
        assert [e.version for e in history] == list(range(1, 14))
        for got, want in zip(history, expected, strict=True):
            assert_same_event(got, want)
        assert verify_events("h-1", history, store.load("h-1")) == []

    # --- refusing bad writes, atomically ------------------------------------------------------
    def test_duplicate_create_is_refused_and_writes_nothing(self, store: Store) -> None:
        first = create(make_suggestion("dup-1"), notify=["office"], key="dup-key-1")
        store.commit(first)
        before = self.snapshot(store, "dup-1", "dup-key-2")
        again = create(make_suggestion("dup-1", title="另一条"), notify=["office", "unit:x"], key="dup-key-2")
        with pytest.raises(DuplicateSuggestion):
            store.commit(again)
        assert self.snapshot(store, "dup-1", "dup-key-2") == before
        assert before[2] is None  # the second key was not recorded
        assert_same_suggestion(store.load("dup-1"), first.suggestion)

    def test_stale_version_conflicts_and_writes_nothing(self, store: Store) -> None:
        first = create(make_suggestion("stale-1"))
        store.commit(first)
        second = advance(first.suggestion, kind="register", state=State.REGISTERED, registration_number="R-1")
        store.commit(second)
        before = self.snapshot(store, "stale-1", "stale-key")
        late = advance(first.suggestion, kind="withdraw", state=State.WITHDRAWN, notify=["office"], key="stale-key")
        with pytest.raises(ConcurrencyConflict) as caught:
            store.commit(late)
        assert caught.value.suggestion_id == "stale-1"
        assert caught.value.expected_version == 1
        assert caught.value.actual_version in (None, 2)
        assert self.snapshot(store, "stale-1", "stale-key") == before
        ahead = advance(advance(second.suggestion).suggestion, key="stale-key")  # expects version 3: not there yet
        with pytest.raises(ConcurrencyConflict):
            store.commit(ahead)
        assert self.snapshot(store, "stale-1", "stale-key") == before
        assert store.load("stale-1") == second.suggestion

    def test_update_of_unknown_suggestion_is_not_found(self, store: Store) -> None:
        ghost = make_suggestion("ghost-1")
        change = advance(attrs.evolve(ghost, event_hash="x" * 64), notify=["office"], key="ghost-key")
        with pytest.raises(NotFound):
            store.commit(change)
        assert self.snapshot(store, "ghost-1", "ghost-key") == (None, [], None, [])

    def test_inconsistent_change_is_refused(self, store: Store) -> None:
        first = create(make_suggestion("bad-1"))
        store.commit(first)
        before = self.snapshot(store, "bad-1", "bad-key")
        good = advance(first.suggestion, notify=["office"], key="bad-key")
        wrong = [
            attrs.evolve(good, event=attrs.evolve(good.event, version=3)),
            attrs.evolve(good, event=attrs.evolve(good.event, suggestion_id="bad-2")),
            attrs.evolve(good, expected_version=2),
            attrs.evolve(good, suggestion=attrs.evolve(good.suggestion, version=5)),
        ]
        for change in wrong:
            with pytest.raises(ValidationError):
                store.commit(change)
            assert self.snapshot(store, "bad-1", "bad-key") == before

    def test_reused_key_fails_the_whole_change(self, store: Store) -> None:
        """The key is the last thing written: its failure must undo the row, event and messages before it."""
        a = create(make_suggestion("key-a"), key="shared-key")
        b = create(make_suggestion("key-b"))
        store.commit(a)
        store.commit(b)
        before = self.snapshot(store, "key-b", "shared-key")
        reuse = advance(b.suggestion, kind="register", state=State.REGISTERED, registration_number="R-9",
                        notify=["office", "proposer:key-b"], key="shared-key")
        with pytest.raises(IdempotencyKeyReused):
            store.commit(reuse)
        assert self.snapshot(store, "key-b", "shared-key") == before
        assert store.idempotency("shared-key") == IdempotencyRecord("shared-key", "key-a", 1, "receive")
        created = create(make_suggestion("key-c"), notify=["office"], key="shared-key")
        with pytest.raises(IdempotencyKeyReused):
            store.commit(created)
        assert self.snapshot(store, "key-c") == (None, [], None, before[3])
        store.commit(attrs.evolve(reuse, idempotency_key="fresh-key"))  # the same change, a new key: fine
        assert store.load("key-b").version == 2

    # --- idempotency ------------------------------------------------------------------------
    def test_idempotency_records_what_the_command_did(self, store: Store) -> None:
        first = create(make_suggestion("idem-1"), key="k-receive")
        store.commit(first)
        second = advance(first.suggestion, kind="register", state=State.REGISTERED, key="k-register")
        store.commit(second)
        assert store.idempotency("k-receive") == IdempotencyRecord("k-receive", "idem-1", 1, "receive")
        assert store.idempotency("k-register") == IdempotencyRecord("k-register", "idem-1", 2, "register")
        assert store.idempotency("k-other") is None

    def test_flow_retry_with_the_same_key_writes_nothing_new(self, store: Store) -> None:
        flow = self.flow(store)
        first = flow.receive(self.draft(), OFFICE_ACTOR, suggestion_id="retry-1", idempotency_key="portal-1")
        assert flow.receive(self.draft(), OFFICE_ACTOR, suggestion_id="retry-1", idempotency_key="portal-1") == first
        registered = flow.register("retry-1", OFFICE_ACTOR, idempotency_key="portal-2")
        before = self.snapshot(store, "retry-1", "portal-2")
        assert flow.register("retry-1", OFFICE_ACTOR, idempotency_key="portal-2") == registered
        assert flow.receive(self.draft(), OFFICE_ACTOR, suggestion_id="retry-1", idempotency_key="portal-1") == first
        assert self.snapshot(store, "retry-1", "portal-2") == before
        assert len(before[1]) == 2
        with pytest.raises(IdempotencyKeyReused):
            flow.receive(self.draft(), OFFICE_ACTOR, suggestion_id="retry-2", idempotency_key="portal-1")
        with pytest.raises(NotFound):
            store.load("retry-2")

    # --- concurrency --------------------------------------------------------------------------
    def test_concurrent_writers_one_wins_per_version(self, store: Store) -> None:
        first = create(make_suggestion("race-1"))
        store.commit(first)
        for rnd in range(4):
            current = store.load("race-1")

            def attempt(i: int, current: Suggestion = current, rnd: int = rnd) -> Change:
                change = advance(current, kind=f"writer{i}", reason=f"round {rnd}", notify=[f"unit:w{i}"],
                                 key=f"race-{rnd}-{i}", reply=f"writer {i}")
                store.commit(change)
                return change

            results = _run_threads(self.threads, attempt)
            won = [r for r in results if isinstance(r, Change)]
            lost = [r for r in results if not isinstance(r, Change)]
            assert len(won) == 1, f"round {rnd}: {len(won)} writers won: {results}"
            for exc in lost:
                assert isinstance(exc, ConcurrencyConflict), repr(exc)
                assert exc.expected_version == current.version
                assert exc.actual_version in (None, current.version + 1)
            assert store.load("race-1") == won[0].suggestion
            for i in range(self.threads):
                record = store.idempotency(f"race-{rnd}-{i}")
                assert (record is not None) == (won[0].idempotency_key == f"race-{rnd}-{i}")
        history = store.history("race-1")
        assert [e.version for e in history] == [1, 2, 3, 4, 5]
        assert verify_events("race-1", history, store.load("race-1")) == []
        assert len(self.drain(store)) == 4  # one message per winning change

    def test_concurrent_writers_keep_a_gapless_history(self, store: Store) -> None:
        store.commit(create(make_suggestion("race-2")))
        target = 4 * self.threads + 1

        def writer(i: int) -> tuple[int, int]:
            wins = conflicts = 0
            for _ in range(50 * target):  # bounded: a broken store must fail the test, not hang it
                current = store.load("race-2")
                if current.version >= target:
                    return wins, conflicts
                try:
                    store.commit(advance(current, kind=f"w{i}", payload={"writer": i}))
                    wins += 1
                except ConcurrencyConflict:
                    conflicts += 1
            raise AssertionError(f"writer {i} never saw version {target}")

        results = _run_threads(self.threads, writer)
        for r in results:
            assert isinstance(r, tuple), repr(r)
        final = store.load("race-2")
        assert final.version == target
        assert sum(r[0] for r in results if isinstance(r, tuple)) == target - 1
        history = store.history("race-2")
        assert len(history) == final.version
        assert verify_events("race-2", history, final) == []

    def test_concurrent_creates_of_one_id(self, store: Store) -> None:
        def attempt(i: int) -> Change:
            change = create(make_suggestion("race-3", title=f"版本{i}"), notify=["office"], key=f"create-{i}")
            store.commit(change)
            return change

        results = _run_threads(self.threads, attempt)
        won = [r for r in results if isinstance(r, Change)]
        assert len(won) == 1, results
        assert all(isinstance(r, DuplicateSuggestion) for r in results if not isinstance(r, Change)), results
        assert store.load("race-3") == won[0].suggestion
        assert len(store.history("race-3")) == 1
        assert len(self.drain(store)) == 1
        assert [store.idempotency(f"create-{i}") is not None for i in range(self.threads)].count(True) == 1

    def test_concurrent_uses_of_one_key(self, store: Store) -> None:
        """One key, different suggestions at once: one change is written whole, the others not at all."""

        def attempt(i: int) -> Change:
            change = create(make_suggestion(f"race-4-{i}"), notify=["office"], key="one-key")
            store.commit(change)
            return change

        results = _run_threads(self.threads, attempt)
        won = [r for r in results if isinstance(r, Change)]
        assert len(won) == 1, results
        assert all(isinstance(r, IdempotencyKeyReused) for r in results if not isinstance(r, Change)), results
        for i in range(self.threads):
            sid = f"race-4-{i}"
            if won[0].suggestion.id == sid:
                assert store.load(sid) == won[0].suggestion
            else:
                assert self.snapshot(store, sid)[:3] == (None, [], None)
        assert [m.suggestion_id for m in self.drain(store)] == [won[0].suggestion.id]
        assert store.idempotency("one-key") == IdempotencyRecord("one-key", won[0].suggestion.id, 1, "receive")

    def test_concurrent_flow_retries_of_one_command(self, store: Store) -> None:
        """A portal retrying the same command at once: one event; every answer is that command's result.

        A retry that starts after the winner finished may find the command no longer
        allowed (``InvalidTransition``): Flow reads the key before loading the row.
        Either way nothing is written twice.
        """
        flow = self.flow(store)
        sid = flow.receive(self.draft(), OFFICE_ACTOR).id
        results = _run_threads(self.threads, lambda i: flow.register(sid, OFFICE_ACTOR, idempotency_key="reg-1"))
        done = [r for r in results if isinstance(r, Suggestion)]
        assert done, results
        assert all(isinstance(r, InvalidTransition) for r in results if not isinstance(r, Suggestion)), results
        row = store.load(sid)
        assert all(r == row for r in done)
        assert row.version == 2 and [e.kind for e in store.history(sid)] == ["receive", "register"]
        assert [m.topic for m in self.drain(store)] == ["receive", "register"]

    # --- queries ---------------------------------------------------------------------------------
    def _query_rows(self, store: Store) -> list[Suggestion]:
        """Forty suggestions with varied filters, ids ordered by code point, shared due times; a third moved on."""
        rng = random.Random(20240821)
        ids = ["A1", "B2", "Z9", "_u", "a1", "b-2", "b.3", "z9"] + [f"q{n:03d}" for n in range(32)]
        rng.shuffle(ids)
        units = ["u1", "u2", "u3", "u4", "U1"]
        shared = T0 + dt.timedelta(days=3, hours=5)
        rows: list[Suggestion] = []
        changes: list[Change] = []
        for n, sid in enumerate(ids):
            due_choice = rng.random()
            if due_choice < 0.25:
                due: dt.datetime | None = None
            elif due_choice < 0.45:
                due = shared.astimezone(ODD_ZONES[n % len(ODD_ZONES)])
            else:
                due = (T0 + dt.timedelta(minutes=rng.randrange(-20_000, 20_000), microseconds=rng.randrange(10**6))
                       ).astimezone(ODD_ZONES[n % len(ODD_ZONES)])
            co = tuple(u for u in units if rng.random() < 0.3)
            lead = rng.choice([None, *units])
            flag_choice = rng.random()  # flagged for this due time (the instant in another zone), another, or not
            flagged = None if flag_choice < 0.4 else T0 if flag_choice < 0.5 else (
                None if due is None else due.astimezone(ODD_ZONES[(n + 1) % len(ODD_ZONES)])
                + (dt.timedelta(microseconds=1) if flag_choice < 0.6 else dt.timedelta(0)))
            s = make_suggestion(
                sid,
                state=rng.choice(list(State)),
                campaign=rng.choice([None, "c1", "c2"]),
                area=rng.choice(["a1", "a2", "a3"]),
                topic=rng.choice([None, "t1", "t2"]),
                lead_unit=lead,
                co_units=tuple(u for u in co if u != lead),
                recommending_unit=rng.choice([None, "r1", "u2"]),
                due_at=due,
                overdue_flagged_at=flagged,
            )
            changes.append(create(s))
        # a DST fold (New York, 2024-11-03 01:30 happens twice): one instant in two zones is
        # flagged for its due time; the fold's two wall times, equal in one zone, are not
        york = ZoneInfo("America/New_York")
        second = dt.datetime(2024, 11, 3, 1, 30, tzinfo=york, fold=1)
        changes.append(create(make_suggestion("fold-1", area="a1", due_at=second,
                                              overdue_flagged_at=second.astimezone(dt.UTC))))
        changes.append(create(make_suggestion("fold-2", area="a1", due_at=second.replace(fold=0),
                                              overdue_flagged_at=second)))
        for c in changes:
            store.commit(c)
        for n, c in enumerate(changes):
            s = c.suggestion
            if n % 3 == 0:
                moved = advance(
                    s,
                    state=rng.choice(list(State)),
                    lead_unit=rng.choice([None, *units]),
                    co_units=tuple(u for u in units if rng.random() < 0.3 and u != s.lead_unit),
                    due_at=None if n % 2 else shared,
                    area="a1",
                )
                if moved.suggestion.lead_unit in moved.suggestion.co_units:
                    moved = advance(s, lead_unit=None, co_units=moved.suggestion.co_units, area="a1")
                store.commit(moved)
                s = moved.suggestion
            rows.append(s)
        return rows

    def test_query_filters_match_the_reference(self, store: Store) -> None:
        rows = self._query_rows(store)
        rng = random.Random(7)
        shared = T0 + dt.timedelta(days=3, hours=5)
        # and in New York around the DST fold of the rows fold-1/fold-2: 01:45 the first time
        # (05:45Z) comes before 01:30 the second time (06:30Z), though its wall time is later
        york = ZoneInfo("America/New_York")
        first_0145 = dt.datetime(2024, 11, 3, 1, 45, tzinfo=york, fold=0)
        bounds = [None, T0, shared, shared + dt.timedelta(microseconds=1), T0 + dt.timedelta(days=10),
                  T0 - dt.timedelta(days=5), first_0145, first_0145.replace(fold=1)]
        queries = [
            Query(),
            Query(states=frozenset()),
            Query(states=OPEN_STATES),
            Query(unit="u1"),
            Query(unit="U1"),
            Query(unit="r1"),
            Query(unit="nobody"),
            Query(area="a1", limit=5),
            Query(campaign="c1"),
            Query(topic="t2"),
            Query(after_id="Z9"),
            Query(after_id="_u", limit=3),
            Query(due_before=shared),
            Query(due_after=shared),
            Query(due_after=shared, due_before=shared + dt.timedelta(microseconds=1)),
            Query(states=OPEN_STATES, due_before=T0 + dt.timedelta(days=4), limit=10),
            Query(overdue_unflagged=True),
            Query(due_before=first_0145),  # fold-2 (05:30Z) only: fold-1 is 06:30Z
            Query(due_after=first_0145),  # fold-1, not fold-2
            Query(due_before=first_0145.replace(fold=1)),  # both: 06:45Z
            Query(due_before=shared + dt.timedelta(microseconds=1), overdue_unflagged=True),
            Query(states=OPEN_STATES, due_before=T0 + dt.timedelta(days=4), limit=10, overdue_unflagged=True),
        ]
        for _ in range(70):
            queries.append(
                Query(
                    states=rng.choice([None, OPEN_STATES, frozenset(rng.sample(list(State), 3))]),
                    unit=rng.choice([None, None, "u1", "u2", "u3", "r1"]),
                    area=rng.choice([None, None, "a1", "a2"]),
                    topic=rng.choice([None, None, "t1"]),
                    campaign=rng.choice([None, None, "c1", "c2"]),
                    due_before=rng.choice(bounds),
                    due_after=rng.choice(bounds),
                    after_id=rng.choice([None, None, "B2", "b-2", "q010"]),
                    limit=rng.choice([None, None, 1, 4, 9]),
                    overdue_unflagged=rng.choice([False, True]),
                )
            )
        flagged = [r for r in rows if r.overdue_flagged_at is not None and r.overdue_flagged_at == r.due_at]
        assert flagged and len(flagged) < len(rows)  # the unflagged filter has something to leave out, and to keep
        for q in queries:
            expected = list(order(q, [r for r in rows if matches(q, r)]))
            got = store.query(q)
            assert [r.id for r in got] == [r.id for r in expected], q
            for g, e in zip(got, expected, strict=True):
                _assert_same(g, e, f"{q}: {e.id}")  # datetimes as instants (a DST fold is never == across zones)

    def test_overdue_order_and_limit(self, store: Store) -> None:
        """The supervision query: open, due before now, by due time then id, cut at the limit."""
        now = T0 + dt.timedelta(days=20)
        rows: list[Suggestion] = []
        for n in range(30):
            due = T0 + dt.timedelta(days=n % 7, hours=n % 3) if n % 5 else None
            state = State.RATED if n % 11 == 0 else State.TRANSFERRED
            s = make_suggestion(f"od{29 - n:02d}", state=state, due_at=due, lead_unit=f"u{n % 2}")
            store.commit(create(s))
            rows.append(s)
        expected = sorted(
            (r for r in rows if r.state in OPEN_STATES and r.due_at is not None and r.due_at < now),
            key=lambda r: (r.due_at, r.id),
        )
        overdue = Query(states=OPEN_STATES, due_before=now, limit=10)
        assert [r.id for r in store.query(overdue)] == [r.id for r in expected[:10]]
        assert [r.id for r in store.query(attrs.evolve(overdue, limit=None))] == [r.id for r in expected]
        unit0 = [r.id for r in expected if r.lead_unit == "u0"][:4]
        assert [r.id for r in store.query(attrs.evolve(overdue, unit="u0", limit=4))] == unit0
        # Flow.overdue is this query
        flow = self.flow(store, FakeClock(now))
        assert [r.id for r in flow.overdue(limit=10)] == [r.id for r in expected[:10]]

    def test_due_order_holds_between_commits_to_one_due_time(self, store: Store) -> None:
        """Queries between commits that add to and take from one shared due time stay in id order.

        A store may keep an order it worked out for one query (MemoryStore sorts each due
        time's ids when a query first reads them): a later commit to that due time must
        show in the next query, in its place.
        """
        shared = T0 + dt.timedelta(days=2)
        later = T0 + dt.timedelta(days=9)
        now = T0 + dt.timedelta(days=5)
        overdue = Query(due_before=now)
        both = Query(due_before=later + dt.timedelta(days=1))  # the shared and the later due time
        # a dozen ids, committed out of order: a store that forgot to sort would show it
        others = ["dq-m", "dq-k", "dq-t", "dq-e", "dq-r", "dq-g", "dq-p", "dq-b", "dq-w", "dq-h", "dq-n"]
        rows: dict[str, Suggestion] = {}
        for sid in ["dq-c", *others]:
            rows[sid] = make_suggestion(sid, state=State.TRANSFERRED, due_at=shared)
            store.commit(create(rows[sid]))
        assert [r.id for r in store.query(overdue)] == sorted(["dq-c", *others])
        rows["dq-a"] = make_suggestion("dq-a", state=State.TRANSFERRED, due_at=shared)
        store.commit(create(rows["dq-a"]))  # joins the due time the query just read
        assert [r.id for r in store.query(overdue)] == sorted(["dq-a", "dq-c", *others])
        moved = advance(rows["dq-c"], due_at=later)  # leaves it, for a due time a wider query reads too
        store.commit(moved)
        assert [r.id for r in store.query(overdue)] == sorted(["dq-a", *others])
        assert [r.id for r in store.query(both)] == [*sorted(["dq-a", *others]), "dq-c"]
        assert [r.id for r in store.query(Query(due_after=now))] == ["dq-c"]
        back = advance(moved.suggestion, due_at=shared)  # and comes back
        store.commit(back)
        assert [r.id for r in store.query(both)] == sorted(["dq-a", "dq-c", *others])
        for sid in ["dq-a", *others]:  # all but one leave: the due time is still read right
            store.commit(advance(store.load(sid), due_at=None))
        assert [r.id for r in store.query(overdue)] == ["dq-c"]
        store.commit(advance(back.suggestion, due_at=None))
        assert store.query(overdue) == []
        rows["dq-z"] = make_suggestion("dq-z", state=State.TRANSFERRED, due_at=shared)
        store.commit(create(rows["dq-z"]))  # a new one at the due time that emptied
        assert [r.id for r in store.query(overdue)] == ["dq-z"]

    def test_paging_by_id(self, store: Store) -> None:
        rows = self._query_rows(store)
        seen: list[str] = []
        after: str | None = None
        while True:
            page = store.query(Query(after_id=after, limit=7))
            seen.extend(r.id for r in page)
            if len(page) < 7:
                break
            after = page[-1].id
        assert seen == sorted(r.id for r in rows)

    def test_unit_query_follows_unit_changes(self, store: Store) -> None:
        def units_of(unit: str) -> list[str]:
            return [r.id for r in store.query(Query(unit=unit))]

        first = create(make_suggestion("units-1", recommending_unit="r1"))
        store.commit(first)
        store.commit(create(make_suggestion("units-2", lead_unit="b")))
        assert units_of("r1") == ["units-1"] and units_of("b") == ["units-2"]
        moved = advance(first.suggestion, kind="transfer", lead_unit="a", co_units=("b", "c"))
        store.commit(moved)
        assert (units_of("a"), units_of("b"), units_of("c")) == (["units-1"], ["units-1", "units-2"], ["units-1"])
        again = advance(moved.suggestion, kind="transfer", lead_unit="d", co_units=("b",))
        store.commit(again)
        assert (units_of("a"), units_of("c"), units_of("d")) == ([], [], ["units-1"])
        assert units_of("r1") == ["units-1"]
        # a change whose event does not mention the units still moves them
        quiet = advance(again.suggestion, kind="edit", recorded={}, co_units=(), recommending_unit="r2")
        store.commit(quiet)
        assert (units_of("b"), units_of("r1"), units_of("r2"), units_of("d")) == (
            ["units-2"], [], ["units-1"], ["units-1"])
        # and one that says the units changed when they did not
        loud = advance(quiet.suggestion, kind="transfer", recorded={"lead_unit": "d"}, reply="x")
        store.commit(loud)
        assert units_of("d") == ["units-1"] and store.load("units-1") == loud.suggestion

    # --- outbox ------------------------------------------------------------------------------------
    def test_outbox_claims_oldest_first_under_a_lease(self, store: Store) -> None:
        a = create(make_suggestion("ob-1"), notify=["office", "proposer:ob-1"])
        b = create(make_suggestion("ob-2"), notify=["unit:u1"])
        c = advance(a.suggestion, kind="register", state=State.REGISTERED, notify=["proposer:ob-1"])
        for change in (a, b, c):
            store.commit(change)
        sent = [*a.messages, *b.messages, *c.messages]
        lease = dt.timedelta(minutes=10)

        first = store.claim(2, T0, lease)
        rest = store.claim(10, T0, lease)
        claimed = first + rest
        assert len(first) == 2 and len(rest) == 2
        ids = [m.id for m in claimed if isinstance(m.id, int)]
        assert len(ids) == 4 and ids == sorted(ids) and len(set(ids)) == 4
        for got, want in zip(claimed, sent, strict=True):
            assert got == attrs.evolve(want, id=got.id, attempts=1)
            _assert_same(got.created_at, want.created_at, "created_at")

        assert store.claim(10, T0 + lease - dt.timedelta(microseconds=1), lease) == []  # still leased
        again = store.claim(10, T0 + lease, lease)  # the lease ran out: delivered at least once
        assert [m.id for m in again] == ids and [m.attempts for m in again] == [2, 2, 2, 2]

        store.mark_sent([ids[0], ids[2], 10**12])
        later = store.claim(10, T0 + 3 * lease, lease)
        assert [m.id for m in later] == [ids[1], ids[3]] and [m.attempts for m in later] == [3, 3]
        store.mark_sent([ids[1], ids[3]])
        store.mark_sent([ids[1]])  # twice is fine
        assert store.claim(10, _FAR_FUTURE, lease) == []

        d = advance(c.suggestion, kind="transfer", notify=["unit:u9"])
        store.commit(d)
        [newest] = store.claim(10, T0, lease)
        assert isinstance(newest.id, int) and newest.id > max(ids) and newest.recipient == "unit:u9"

    def test_outbox_claim_is_exclusive_across_threads(self, store: Store) -> None:
        for n in range(15):
            store.commit(create(make_suggestion(f"ex-{n:02d}"), notify=["office", "proposer", "unit:u1", "unit:u2"]))
        total = 60
        lease = dt.timedelta(hours=1)

        def relay(i: int) -> list[int]:
            got: list[int] = []
            while len(got) <= total:  # more than every message: some were claimed twice, stop
                batch = store.claim(4, T0, lease)
                if not batch:
                    break
                got.extend(m.id for m in batch if m.id is not None)
            return got

        results = _run_threads(self.threads, relay)
        claimed: list[int] = []
        for r in results:
            assert isinstance(r, list), repr(r)
            claimed.extend(r)
        assert len(claimed) == len(set(claimed)) == total, "a message was claimed twice while leased"
        assert store.claim(10, T0 + lease - dt.timedelta(seconds=1), lease) == []
        # after the lease, unsent messages come back; sent ones never do
        store.mark_sent(claimed[: total // 2])
        back = store.claim(total, T0 + lease, lease)
        assert sorted(m.id for m in back if m.id is not None) == sorted(claimed[total // 2:])
        assert all(m.attempts == 2 for m in back)
