"""``jianyi_flow.domain.frozen``: the hot path's builders give exactly what the classes' own constructors give.

Flow builds every Event, OutboxMessage, Change and CommandContext through them, so each is
held here to ``cls(**fields)`` field by field (identity), in equality, hash, repr, pickling,
weak references and frozenness, both ways (the twin and the descriptor fallback); and the
builder refuses, by name, any class it cannot build without running that class's code.
"""

from __future__ import annotations

import datetime as dt
import pickle
import platform
import weakref
from collections.abc import Callable
from typing import Any

import attrs
import pytest

from helpers import START, drive_to, make_flow
from jianyi_flow import frozen
from jianyi_flow.domain.frozen import Weakrefable, becomes, builder, field_names, mutable_twin
from jianyi_flow.domain.model import Actor, Event, Role, State, Suggestion, build_event, build_suggestion
from jianyi_flow.service.guards import CommandContext, build_context
from jianyi_flow.storage.base import Change, OutboxMessage, build_change, build_message

ACTOR = Actor("clerk-1", Role.COLLECTION_OFFICE, unit="XFB", name="区征集办")
EVENT_FIELDS: dict[str, Any] = {
    "suggestion_id": "S0000042",
    "version": 3,
    "kind": "transfer",
    "from_state": State.REGISTERED,
    "to_state": State.TRANSFERRED,
    "actor": ACTOR,
    "at": START,
    "reason": "理由",
    "changes": {"lead_unit": "GHZY"},
    "payload": {"note": 1},
    "prev_hash": "0" * 64,
    "hash": "f" * 64,
}
EVENT = Event(**EVENT_FIELDS)
MESSAGE_FIELDS: dict[str, Any] = {
    "topic": "transfer",
    "suggestion_id": "S0000042",
    "version": 3,
    "recipient": "unit:GHZY",
    "created_at": START + dt.timedelta(hours=1),
    "payload": {"state": "transferred"},
    "id": 17,
    "attempts": 2,
}
CHANGE_FIELDS: dict[str, Any] = {
    "suggestion": None,
    "event": EVENT,
    "expected_version": 2,
    "messages": (OutboxMessage(**MESSAGE_FIELDS),),
    "idempotency_key": "key-1",
}
CONTEXT_FIELDS: dict[str, Any] = {
    "command": "transfer",
    "actor": ACTOR,
    "now": START,
    "suggestion": None,
    "draft": None,
    "args": {"lead_unit": "GHZY"},
}
CASES = [
    (Event, EVENT_FIELDS, build_event),
    (OutboxMessage, MESSAGE_FIELDS, build_message),
    (Change, CHANGE_FIELDS, build_change),
    (CommandContext, CONTEXT_FIELDS, build_context),
]
IDS = [cls.__name__ for cls, _, _ in CASES]


def _hash(value: object) -> object:
    try:
        return hash(value)
    except TypeError as e:
        return str(e)


def _ways(cls: type) -> list[Callable[..., Any]]:
    return [builder(cls), builder(cls, via_twin=False)]


def test_every_field_is_given_in_the_cases() -> None:
    for cls, fields, _ in CASES:
        assert tuple(fields) == field_names(cls)


@pytest.mark.parametrize(("cls", "fields", "hot"), CASES, ids=IDS)
def test_built_equals_constructed_both_ways(cls: type, fields: dict[str, Any], hot: Callable[..., Any]) -> None:
    expected = cls(**fields)
    for build in [hot, *_ways(cls)]:
        got = build(**fields)
        assert type(got) is cls
        for name, value in fields.items():
            assert getattr(got, name) is value, name
        assert got == expected and repr(got) == repr(expected)
        assert _hash(got) == _hash(expected)  # the same hash, or the same refusal (a dict field)
        assert attrs.asdict(got, recurse=False) == attrs.asdict(expected, recurse=False)
        assert pickle.loads(pickle.dumps(got)) == expected
        assert attrs.evolve(got) == expected


@pytest.mark.parametrize(("cls", "fields", "hot"), CASES, ids=IDS)
def test_built_objects_are_frozen_and_take_weak_references(
    cls: type, fields: dict[str, Any], hot: Callable[..., Any]
) -> None:
    for build in [hot, *_ways(cls)]:
        got = build(**fields)
        name = next(iter(fields))
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            setattr(got, name, "other")
        with pytest.raises(AttributeError):
            got.not_a_field = 1
        assert weakref.ref(got)() is got


@pytest.mark.parametrize(("cls", "fields", "hot"), CASES, ids=IDS)
def test_positional_and_keyword_calls_agree_and_a_field_without_default_is_required(
    cls: type, fields: dict[str, Any], hot: Callable[..., Any]
) -> None:
    assert hot(*fields.values()) == hot(**fields)
    partial = dict(fields)
    first = next(iter(fields))
    del partial[first]
    with pytest.raises(TypeError, match=f"missing 1 required positional argument: '{first}'"):
        hot(**partial)


@pytest.mark.skipif(platform.python_implementation() != "CPython", reason="the layout check is CPython's")
@pytest.mark.parametrize(("cls", "fields", "hot"), CASES, ids=IDS)
def test_on_cpython_the_hot_builders_use_the_twin(cls: type, fields: dict[str, Any], hot: Callable[..., Any]) -> None:
    assert issubclass(cls, Weakrefable) and "__weakref__" not in cls.__dict__.get("__slots__", ())
    assert becomes(mutable_twin(cls), cls)
    assert "_twin" in hot.__code__.co_names


@pytest.fixture(scope="module")
def row() -> Suggestion:
    """A suggestion that has been through several commands (most fields set)."""
    return drive_to(make_flow(), State.REPLIED)


def test_a_suggestion_with_every_field_given_is_built_as_constructed(row: Suggestion) -> None:
    fields = attrs.asdict(row, recurse=False)
    assert tuple(fields) == field_names(Suggestion)
    for build in [build_suggestion, *_ways(Suggestion)]:
        got = build(**fields)
        assert type(got) is Suggestion and got == row and got is not row
        assert all(getattr(got, name) is value for name, value in fields.items())
        assert weakref.ref(got)() is got and pickle.loads(pickle.dumps(got)) == row


def test_omitted_trailing_fields_take_the_classs_own_defaults(row: Suggestion) -> None:
    required = {f.name: getattr(row, f.name) for f in attrs.fields(Suggestion) if f.default is attrs.NOTHING}
    assert "registration_number" not in required and "event_hash" not in required
    expected = Suggestion(**required)
    for build in [build_suggestion, *_ways(Suggestion)]:
        got = build(**required)
        assert got == expected
        for f in attrs.fields(Suggestion):
            if f.default is not attrs.NOTHING:
                assert getattr(got, f.name) is f.default, f.name


def test_only_the_trailing_plain_defaults_are_defaults() -> None:
    """Event's ``changes`` and ``payload`` default by factory, so ``reason`` before them is required too."""
    fields = dict(EVENT_FIELDS)
    del fields["prev_hash"], fields["hash"]
    assert build_event(**fields) == Event(**fields)
    for name in ("reason", "changes", "payload"):
        partial = dict(fields)
        del partial[name]
        with pytest.raises(TypeError, match=name):
            build_event(**partial)


@attrs.frozen
class _AttrsWeakref:
    """attrs puts ``__weakref__`` after the fields: CPython refuses to turn a twin into this."""

    a: int
    b: str


def test_a_class_the_twin_cannot_become_is_built_the_descriptor_way() -> None:
    assert "__weakref__" in _AttrsWeakref.__slots__
    assert not becomes(mutable_twin(_AttrsWeakref), _AttrsWeakref)
    build = builder(_AttrsWeakref)
    assert "_twin" not in build.__code__.co_names
    got = build(a=1, b="x")
    assert type(got) is _AttrsWeakref and got == _AttrsWeakref(1, "x") and hash(got) == hash(_AttrsWeakref(1, "x"))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        got.a = 2  # type: ignore[misc]


@attrs.frozen
class _Hashable(Weakrefable):
    a: int
    b: tuple[str, ...]


def test_a_hashable_class_built_the_twin_way_hashes_as_constructed() -> None:
    build = builder(_Hashable)
    assert "_twin" in build.__code__.co_names or platform.python_implementation() != "CPython"
    got, expected = build(a=1, b=("x",)), _Hashable(1, ("x",))
    assert got == expected and hash(got) == hash(expected) and {got: 1}[expected] == 1


def test_when_the_assignment_is_refused_the_builder_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(frozen, "becomes", lambda twin, cls: False)
    build = builder(Event)
    assert "_twin" not in build.__code__.co_names
    assert build(**EVENT_FIELDS) == EVENT


class _NotAttrs:
    __slots__ = ("a",)


@attrs.define(frozen=True, slots=False)
class _NotSlotted:
    a: int


@attrs.define
class _NotFrozen(Weakrefable):
    a: int


@attrs.frozen
class _Validated(Weakrefable):
    a: int = attrs.field(validator=attrs.validators.instance_of(int))


@attrs.frozen
class _Converted(Weakrefable):
    a: int = attrs.field(converter=int)


@attrs.frozen
class _NoInit(Weakrefable):
    a: int = attrs.field(init=False, default=0)


@attrs.frozen
class _PostInit(Weakrefable):
    a: int

    def __attrs_post_init__(self) -> None:
        pass


@pytest.mark.parametrize(
    ("cls", "rule"),
    [
        (_NotAttrs, "not an attrs class"),
        (_NotSlotted, "must be slotted"),
        (_NotFrozen, "must be frozen"),
        (_Validated, "_Validated.a has a validator"),
        (_Converted, "_Converted.a has a validator, a converter"),
        (_NoInit, "init=False"),
        (_PostInit, "__attrs_post_init__"),
    ],
)
def test_a_class_the_builder_cannot_build_faithfully_is_refused_by_name(cls: type, rule: str) -> None:
    with pytest.raises(TypeError, match=rule) as caught:
        builder(cls)
    assert cls.__name__ in str(caught.value)
