"""Builders for store tests: suggestions, outbox messages and the :class:`Change` objects that write them.

:func:`create` and :func:`advance` make a valid next step of a suggestion's history by
hand — a sealed event whose ``changes`` record what the row sets, with ``notices`` for its
outbox messages and, when asked, an idempotency record — so a store can be given values
no command produces (every field set at once, odd time zones, long Chinese text).
:func:`make_maximal` sets every field of :class:`Suggestion` to a value other than its
default, from the model's type hints, so a field added later is covered without editing
the kit.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import threading
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import attrs

from ..domain.clock import SHANGHAI
from ..domain.codec import SUGGESTION_FIELDS, encode_changes
from ..domain.history import mac_of, seal
from ..domain.model import Actor, Channel, Event, Proposer, ProposerKind, State, Step, Suggestion
from ..storage.base import Change, IdempotencyRecord, OutboxMessage
from .drive import OFFICE_ACTOR, PROPOSER_ACCOUNT, T0

__all__ = [
    "ODD_ZONES",
    "REPLAYED_FIELDS",
    "advance",
    "assert_same",
    "assert_same_event",
    "assert_same_suggestion",
    "create",
    "fingerprint_of",
    "make_maximal",
    "make_suggestion",
    "message",
    "run_threads",
]

REPLAYED_FIELDS: tuple[str, ...] = tuple(
    name for name in SUGGESTION_FIELDS if name not in ("id", "state", "version", "updated_at", "event_hash")
)
"""The fields an event's ``changes`` may set (the others follow from the event itself)."""

MAC_KEY = b"jianyi-flow contract kit key"
"""The anchor key the builders seal events with when asked for a ``mac``."""

ODD_ZONES: tuple[dt.tzinfo, ...] = (
    dt.timezone(dt.timedelta(hours=5, minutes=45)),
    dt.timezone(-dt.timedelta(hours=3, minutes=30)),
    dt.UTC,
    ZoneInfo("America/New_York"),
    dt.timezone(dt.timedelta(hours=14)),
    SHANGHAI,
    dt.timezone(-dt.timedelta(hours=9, minutes=30)),
)
"""Offsets a Shanghai-only implementation would get wrong: half and three-quarter hours,
negative, +14:00, a zone with daylight saving time."""

R = TypeVar("R")
_TIMEOUT = 60.0


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
        "proposer": Proposer(name="张三", phone="13812345678", address="重庆市沙坪坝区新桥正街12号",
                             account=PROPOSER_ACCOUNT),
        "recommending_unit": None,
        "accused_units": (),
        "state": State.RECEIVED,
        "version": 1,
        "received_at": at,
        "updated_at": at,
        "received_by": OFFICE_ACTOR.ref,
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


def fingerprint_of(command: str, suggestion_id: str, key: str) -> str:
    """A stand-in request fingerprint (Flow's is a digest of the command and its arguments)."""
    return hashlib.sha256(f"{command}\x00{suggestion_id}\x00{key}".encode("utf-8", "surrogatepass")).hexdigest()


def _record(key: str | None, scope: str, sid: str, version: int, kind: str,
            fingerprint: str | None) -> IdempotencyRecord | None:
    if key is None:
        return None
    return IdempotencyRecord(scope, key, sid, version, kind,
                             fingerprint if fingerprint is not None else fingerprint_of(kind, sid, key))


def create(
    s: Suggestion,
    *,
    key: str | None = None,
    scope: str = OFFICE_ACTOR.key,
    fingerprint: str | None = None,
    notify: Sequence[str] = (),
    messages: Sequence[OutboxMessage] = (),
    actor: Actor = OFFICE_ACTOR,
    kind: str = "receive",
    policy: str | None = None,
    sealed: bool = False,
) -> Change:
    """The Change that creates ``s`` (as version 1), with a sealed event recording every field.

    The event's ``changes`` hold every replayed field, so ``replay(history) == row`` holds
    as it does for Flow's commands; its ``workflow`` is the row's.  ``notify`` adds one
    message per recipient (and names them in the event's ``notices``); ``key`` adds an
    idempotency record in ``scope``; ``sealed`` adds a keyed ``mac``.
    """
    # the workflow version travels on the event itself (as Flow writes it), not in its changes
    changes = encode_changes({name: getattr(s, name) for name in REPLAYED_FIELDS if name != "workflow"})
    event = seal(Event(s.id, 1, kind, None, s.state, actor, s.updated_at, changes=changes, notices=tuple(notify),
                       workflow=s.workflow, policy=policy))
    if sealed:
        event = attrs.evolve(event, mac=mac_of(MAC_KEY, event.hash))
    row = attrs.evolve(s, version=1, event_hash=event.hash)
    notices = tuple(message(s.id, 1, r, topic=kind, at=s.updated_at) for r in notify)
    return Change(row, event, 0, (*notices, *messages), _record(key, scope, s.id, 1, kind, fingerprint))


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
    scope: str = OFFICE_ACTOR.key,
    fingerprint: str | None = None,
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
            notices=tuple(notify),
        )
    )
    row = attrs.evolve(prev, state=to_state, version=version, updated_at=when, event_hash=event.hash, **fields)
    notices = tuple(message(prev.id, version, r, topic=kind, at=when) for r in notify)
    return Change(row, event, prev.version, (*notices, *messages),
                  _record(key, scope, prev.id, version, kind, fingerprint))


def _sample(tp: Any, name: str, i: int, default: Any) -> Any:
    """A value of type ``tp`` different from ``default`` (for :func:`make_maximal`)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _sample(args[0], name, i, default)
    if origin is tuple:
        item = typing.get_args(tp)[0]
        return tuple(dict.fromkeys(_sample(item, name, i + k, None) for k in range(2)))
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
    raise TypeError(f"make_maximal cannot build a value for {name}: {tp!r}; extend jianyi_flow.testing.builders")


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
        due_step=Step.RATE,
        event_hash="",
        received_by="information_officer:io-7",
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


def run_threads(count: int, work: Callable[[int], R]) -> list[R | BaseException]:
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


def assert_same(actual: Any, expected: Any, where: str) -> None:
    """Equal and of the same type (a StrEnum equals its str value, so ``==`` alone would not do).

    Datetimes must be aware and the same instant (Python never calls an ambiguous wall
    time at a DST fold equal to a time in another zone, so instants are compared in UTC).
    """
    if isinstance(expected, dt.datetime):
        assert isinstance(actual, dt.datetime), f"{where}: {actual!r} is not a datetime"
        assert actual.tzinfo is not None and actual.utcoffset() is not None, f"{where}: {actual!r} is naive"
        assert actual.astimezone(dt.UTC) == expected.astimezone(dt.UTC), f"{where}: {actual!r} != {expected!r}"
        return
    assert type(actual) is type(expected), f"{where}: {type(actual).__name__} instead of {type(expected).__name__}"
    if isinstance(expected, (tuple, list)):
        assert len(actual) == len(expected), f"{where}: {actual!r} != {expected!r}"
        for k, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_same(a, e, f"{where}[{k}]")
    elif isinstance(expected, dict):
        assert actual.keys() == expected.keys(), f"{where}: keys {sorted(actual)} != {sorted(expected)}"
        for k in expected:
            assert_same(actual[k], expected[k], f"{where}[{k!r}]")
    elif attrs.has(type(expected)):
        for a in attrs.fields(type(expected)):
            assert_same(getattr(actual, a.name), getattr(expected, a.name), f"{where}.{a.name}")
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


def assert_same_suggestion(actual: Suggestion, expected: Suggestion) -> None:
    """Every field equal and of the same type; datetimes aware and the same instant."""
    assert_same(actual, expected, f"suggestion {expected.id}")
    assert actual == expected


def assert_same_event(actual: Event, expected: Event) -> None:
    """Every field of the event equal and of the same type (``seq`` included: give the stored one)."""
    assert_same(actual, expected, f"event {expected.suggestion_id} v{expected.version}")
    assert actual == expected
