"""How field values of a :class:`~jianyi_flow.domain.model.Suggestion` are written inside events.

An event's ``changes`` hold JSON-ready values, because they are hashed
(:mod:`jianyi_flow.domain.history`) and stored as JSON: datetimes as ISO text in UTC,
enums as their values, tuples as lists, the proposer, an evaluation and an extension
request as objects.  They name the fields a command changes (:func:`changed_fields`).
:func:`apply_event` decodes them again and :func:`replay` rebuilds a suggestion from its
events.  Stores use the same encoding for the fields they keep as JSON.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import operator
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from .clock import SHANGHAI
from .model import (
    AdoptionForm,
    Channel,
    Evaluation,
    Event,
    ExtensionRequest,
    Outcome,
    Proposer,
    ProposerKind,
    Rating,
    ReplyForm,
    ReportForm,
    ResearchMethod,
    RewardTier,
    Role,
    State,
    Step,
    Suggestion,
)

__all__ = [
    "ALWAYS_RECORDED",
    "DATETIME_FIELDS",
    "ENUM_FIELDS",
    "FIELD_DECODERS",
    "FIELD_ENCODERS",
    "SUGGESTION_FIELDS",
    "apply_event",
    "changed_fields",
    "decode_datetime",
    "decode_proposer",
    "decode_value",
    "encode_changes",
    "encode_datetime",
    "encode_proposer",
    "encode_value",
    "enum_value",
    "replace",
    "replay",
    "suggestion_of",
    "with_seq",
]

SUGGESTION_FIELDS: tuple[str, ...] = tuple(a.name for a in attrs.fields(Suggestion))
"""Every field of :class:`Suggestion`, in declaration order."""

_FIELD_INDEX: Mapping[str, int] = {name: i for i, name in enumerate(SUGGESTION_FIELDS)}
_ROW_VALUES = operator.attrgetter(*SUGGESTION_FIELDS)
"""Every field value of a row, in declaration order (what :func:`replace` builds the new row from)."""

DATETIME_FIELDS = frozenset(
    {"received_at", "updated_at", "transferred_at", "replied_at", "due_at", "due_from", "objection_due_at",
     "overdue_flagged_at", "closed_at", "forwarded_to_city_at"}
)
"""Fields holding an aware datetime."""

ENUM_FIELDS: Mapping[str, type[enum.Enum]] = {
    "channel": Channel,
    "state": State,
    "outcome": Outcome,
    "rating": Rating,
    "reward_tier": RewardTier,
    "due_step": Step,
    "research_method": ResearchMethod,
    "reply_form": ReplyForm,
    "adoption_form": AdoptionForm,
}
"""Fields holding an enum member, stored as its value."""

_ERASURE_LABELS: Mapping[str, str] = {"erased": "已删除", "pseudonymised": "已脱敏"}
"""Kept equal to :data:`jianyi_flow.domain.personal.ERASURE_LABELS` (a test checks it)."""

_TUPLE_FIELDS = frozenset({"accused_units", "co_units"})
_REPLAYED_FIELDS = frozenset(SUGGESTION_FIELDS) - {"id", "state", "version", "updated_at", "event_hash"}


def encode_datetime(value: dt.datetime) -> str:
    """Aware datetime → ISO text in UTC: equal instants encode equally."""
    return value.astimezone(dt.UTC).isoformat()


@functools.lru_cache(maxsize=1024, typed=True)
def _encoded_instant(value: dt.datetime, fold: int) -> str:
    return encode_datetime(value)


def _encode_field_datetime(value: dt.datetime) -> str:
    """:func:`encode_datetime` through a small cache, so that equal instants set in many rows
    (the end of a working day many deadlines share) are one string in memory.

    Keyed by the value and its ``fold`` too: datetimes of one zone that differ by ``fold``
    alone compare equal, yet may be different instants.
    """
    return _encoded_instant(value, value.fold)


def decode_datetime(text: str) -> dt.datetime:
    """ISO text → aware datetime shown in Asia/Shanghai."""
    return dt.datetime.fromisoformat(text).astimezone(SHANGHAI)


@functools.lru_cache(maxsize=1024)
def _decode_field_datetime(text: str) -> dt.datetime:
    """:func:`decode_datetime` through a small cache: the texts many rows and events share (the
    end of a working day many deadlines share) are parsed once, into one datetime."""
    return decode_datetime(text)


def encode_proposer(p: Proposer) -> dict[str, Any]:
    """The proposer as JSON-ready data; a vaulted proposer without its personal data (it lives in the vault)."""
    if p.vaulted:
        out: dict[str, Any] = {"kind": p.kind.value, "confidential": p.confidential, "vaulted": True}
        if p.erased:
            out["erased"] = p.erased
        return out
    return {
        "name": p.name,
        "kind": p.kind.value,
        "phone": p.phone,
        "address": p.address,
        "confidential": p.confidential,
        "account": p.account,
    }


def decode_proposer(data: Mapping[str, Any]) -> Proposer:
    """Inverse of :func:`encode_proposer`: a vaulted proposer comes back without its data (name
    ``""``), or named by its erasure (已删除, 已脱敏) once erased; a store fills the data in."""
    if data.get("vaulted"):
        erased = data.get("erased")
        if erased is not None and erased not in _ERASURE_LABELS:
            raise ValueError(f"unknown erasure {erased!r}")
        return Proposer(name=_ERASURE_LABELS[erased] if erased else "", kind=ProposerKind(data["kind"]),
                        confidential=bool(data.get("confidential", False)), vaulted=True, erased=erased)
    return Proposer(
        name=data["name"],
        kind=ProposerKind(data["kind"]),
        phone=data.get("phone"),
        address=data.get("address"),
        confidential=bool(data.get("confidential", False)),
        account=data.get("account"),
    )


def _encode_evaluation(value: Evaluation) -> dict[str, Any]:
    return {"quality": value.quality, "value": value.value, "effect": value.effect, "evaluator": value.evaluator}


def _decode_evaluation(data: Mapping[str, Any]) -> Evaluation:
    return Evaluation(data["quality"], data["value"], data["effect"], data["evaluator"])


def _encode_extension_request(value: ExtensionRequest) -> dict[str, Any]:
    return {"days": value.days, "reason": value.reason, "requested_by": value.requested_by,
            "requested_at": encode_datetime(value.requested_at)}


def _decode_extension_request(data: Mapping[str, Any]) -> ExtensionRequest:
    return ExtensionRequest(data["days"], data["reason"], data["requested_by"], decode_datetime(data["requested_at"]))


_ENUM_KINDS: tuple[type[enum.Enum], ...] = (*ENUM_FIELDS.values(), Role)
_ENUM_VALUES: Mapping[enum.Enum, Any] = {member: member.value for kind in _ENUM_KINDS for member in kind}
"""Each member's value, read once at import (``.value`` is a slow property on every enum member)."""


def enum_value(member: enum.Enum) -> Any:
    """``member.value``, read from a table built at import for the enums of rows and events."""
    value = _ENUM_VALUES.get(member)
    return member.value if value is None else value


FIELD_ENCODERS: Mapping[str, Callable[[Any], Any]] = {
    **dict.fromkeys(DATETIME_FIELDS, _encode_field_datetime),
    **dict.fromkeys(ENUM_FIELDS, enum_value),
    **dict.fromkeys(_TUPLE_FIELDS, list),
    "upward_reports": lambda forms: [form.value for form in forms],
    "evaluation": _encode_evaluation,
    "extension_request": _encode_extension_request,
    "proposer": encode_proposer,
}
"""How each field that is not stored as it is gets encoded (one lookup per value)."""

def _member_of(kind: type[enum.Enum]) -> Callable[[Any], Any]:
    """``kind(value)``, looked up in a table of ``kind``'s values built at import (calling an enum
    class is a slow path through its metaclass); a value not in the table goes to ``kind`` to refuse."""
    members = {member.value: member for member in kind}

    def member_of(value: Any) -> Any:
        member = members.get(value) if isinstance(value, str) else None
        return kind(value) if member is None else member

    return member_of


FIELD_DECODERS: Mapping[str, Callable[[Any], Any]] = {
    **dict.fromkeys(DATETIME_FIELDS, _decode_field_datetime),
    **{name: _member_of(kind) for name, kind in ENUM_FIELDS.items()},
    **dict.fromkeys(_TUPLE_FIELDS, tuple),
    "upward_reports": lambda forms: tuple(ReportForm(form) for form in forms),
    "evaluation": _decode_evaluation,
    "extension_request": _decode_extension_request,
    "proposer": decode_proposer,
}
"""The inverse of :data:`FIELD_ENCODERS`: how each field that is not stored as it is gets decoded."""


def encode_value(name: str, value: Any) -> Any:
    """One :class:`Suggestion` field value as JSON-ready data."""
    if value is None:
        return None
    convert = FIELD_ENCODERS.get(name)
    return value if convert is None else convert(value)


def decode_value(name: str, value: Any) -> Any:
    """Inverse of :func:`encode_value`."""
    if value is None:
        return None
    convert = FIELD_DECODERS.get(name)
    return value if convert is None else convert(value)


def encode_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    """``changes`` with every value through :func:`encode_value`."""
    return {name: encode_value(name, value) for name, value in changes.items()}


_DEFAULT_VALUES: tuple[Any, ...] = tuple(a.default for a in attrs.fields(Suggestion))
"""Each field's default in declaration order (``attrs.NOTHING`` if it has none; every other is a plain
immutable value, a test checks it)."""
_REQUIRED = frozenset(name for name, d in zip(SUGGESTION_FIELDS, _DEFAULT_VALUES, strict=True) if d is attrs.NOTHING)

ALWAYS_RECORDED = frozenset({"due_step"})
"""Fields an event records whenever its command sets them, even to the value they had:
a ``due_step`` entry says the command started a step (the campaign report judges the step
it ended there)."""


def _same(new: Any, old: Any) -> bool:
    """``new`` is ``old`` again: equal, of the same type, and a datetime also at the same UTC offset
    (equal datetimes of one zone may be different instants that differ by ``fold`` alone)."""
    if type(new) is not type(old) or new != old:
        return False
    return not isinstance(new, dt.datetime) or new.utcoffset() == old.utcoffset()


def changed_fields(changes: Mapping[str, Any], before: Suggestion | None) -> dict[str, Any]:
    """The entries of ``changes`` (raw field values) that an event records: those that change ``before``.

    An entry that sets a field to the value it already holds in ``before`` — for a new
    suggestion (``before`` ``None``), to the field's default — is left out, except for the
    fields in :data:`ALWAYS_RECORDED`; fields without a default are always kept, as the first
    event must give them.  Replay (:func:`apply_event`) starts from the same defaults and
    keeps what an event does not name, so it rebuilds the same row either way.
    """
    kept: dict[str, Any] = {}
    for name, value in changes.items():
        if name in ALWAYS_RECORDED:
            kept[name] = value
            continue
        i = _FIELD_INDEX.get(name)
        if i is None:
            kept[name] = value  # not a field: kept, for replace to refuse
        elif before is None:
            default = _DEFAULT_VALUES[i]
            if default is attrs.NOTHING or not _same(value, default):
                kept[name] = value
        else:
            old = getattr(before, name)
            if value is not old and not _same(value, old):  # the identity test first: most entries are unchanged
                kept[name] = value
    return kept




def suggestion_of(fields: Mapping[str, Any]) -> Suggestion:
    """The :class:`Suggestion` with these field values by name (a field left out takes its default).

    Raises :class:`TypeError` for a required field left out or a name that is no field.
    """
    # built positionally: matching ~60 keyword arguments by name cost more than decoding a stored row
    missing = _REQUIRED - fields.keys()
    if missing:
        raise TypeError(f"Suggestion needs the fields {sorted(missing)}")
    return _built(list(_DEFAULT_VALUES), fields)


def replace(s: Suggestion, changes: Mapping[str, Any]) -> Suggestion:
    """A copy of ``s`` with ``changes`` applied (like ``attrs.evolve``, refusing unknown fields by name)."""
    # built positionally from one read of every field: a third of what attrs.evolve costs on 60 fields
    return _built(list(_ROW_VALUES(s)), changes)


def _built(values: list[Any], fields: Mapping[str, Any]) -> Suggestion:
    """The :class:`Suggestion` of ``values`` (every field, in declaration order) with ``fields`` set by name."""
    index = _FIELD_INDEX
    try:
        for name, value in fields.items():
            values[index[name]] = value
    except KeyError:
        raise TypeError(f"Suggestion has no fields {sorted(fields.keys() - index.keys())}") from None
    return Suggestion(*values)


_EVENT_FIELDS: tuple[str, ...] = tuple(a.name for a in attrs.fields(Event))
_EVENT_VALUES = operator.attrgetter(*_EVENT_FIELDS)
_SEQ = _EVENT_FIELDS.index("seq")


def with_seq(event: Event, seq: int) -> Event:
    """``event`` as its store numbers it (``attrs.evolve(event, seq=seq)``, built positionally for speed)."""
    values = list(_EVENT_VALUES(event))
    values[_SEQ] = seq
    return Event(*values)


def _event_fields(event: Event) -> dict[str, Any]:
    """The field values ``event`` sets: its decoded changes, then its own state, version, time and hash."""
    decoded = {name: decode_value(name, value) for name, value in event.changes.items()}
    unknown = decoded.keys() - _REPLAYED_FIELDS
    if unknown:
        raise ValueError(f"event {event.kind!r} changes unknown fields {sorted(unknown)}")
    decoded.update(state=event.to_state, version=event.version, updated_at=event.at, event_hash=event.hash)
    if event.workflow is not None:
        decoded["workflow"] = event.workflow  # the event's own record of its version and workflow wins
    return decoded


def apply_event(previous: Suggestion | None, event: Event) -> Suggestion:
    """Fold one event into the suggestion it follows (``None`` before the first event)."""
    fields = _event_fields(event)
    if previous is None:
        return Suggestion(id=event.suggestion_id, **fields)
    return replace(previous, fields)


def replay(events: Iterable[Event]) -> Suggestion | None:
    """Rebuild a suggestion from its history; ``None`` for an empty history.

    The same row as :func:`apply_event` folded over the events, built once at the end
    rather than once per event.
    """
    fields: dict[str, Any] | None = None
    for event in events:
        sets = _event_fields(event)
        if fields is None:  # the first event must give every field without a default, as apply_event's
            fields = {"id": event.suggestion_id}
            missing = _REQUIRED - fields.keys() - sets.keys()
            if missing:
                raise TypeError(f"Suggestion needs the fields {sorted(missing)}")
        fields.update(sets)
    return None if fields is None else suggestion_of(fields)
