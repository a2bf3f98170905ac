"""Tamper-evident history: each event is hashed together with the hash before it.

``hash = sha256(canonical(event))``, where ``canonical`` is compact JSON (objects with sorted
keys) of every field except ``hash`` itself — including ``prev_hash`` — with times in UTC.  Editing an event
changes its hash; deleting or reordering events breaks the chain of ``prev_hash``
links; either way :func:`verify_history` says which version is wrong.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs
import orjson

from .jsontext import NOT_PLAIN, prepare
from .model import Event, Suggestion, encode_datetime, replay


def canonical(event: Event) -> list[Any]:
    """The JSON-ready content of an event that its hash covers, as a fixed-order list.

    Order: suggestion id, version, kind, from-state, to-state, actor (id, role, unit,
    name), time (UTC ISO), reason, changes, payload, prev_hash.  A list rather than an
    object: the field order is part of the format, and encoding it is faster.  The enums'
    values are read as ``_value_`` (what ``.value`` returns, without Enum's property: a
    third of the cost, and this runs on every command).
    """
    actor = event.actor
    return [
        event.suggestion_id,
        event.version,
        event.kind,
        None if event.from_state is None else event.from_state._value_,
        event.to_state._value_,
        actor.id,
        actor.role._value_,
        actor.unit,
        actor.name,
        encode_datetime(event.at),
        event.reason,
        event.changes,
        event.payload,
        event.prev_hash,
    ]


_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _fast_encoder() -> Callable[[Any], str] | None:
    """``_ENCODER.encode`` minus its per-call set-up, when the C accelerator is there.

    ``JSONEncoder.encode`` builds a new C encoder on every call (about a quarter of the
    cost of hashing an event); this one is built once with ``_ENCODER``'s exact settings
    (``allow_nan`` included), so the text is the same byte for byte.  It keeps no
    circular-reference markers: on any error :func:`_canonical_bytes` re-encodes with
    ``_ENCODER``, which raises the usual error.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return None
    encode = make(None, _ENCODER.default, json.encoder.encode_basestring, None, ":", ",", True, False, True)
    join = "".join

    def fast(value: Any) -> str:
        return join(encode(value, 0))

    return fast


_FAST = _fast_encoder()
_SORTED = orjson.OPT_SORT_KEYS


def _canonical_bytes(content: Any) -> bytes:
    """The canonical text of ``content`` (``canonical(event)``), UTF-8 encoded, lone surrogates passed through.

    Three writers, one text: orjson when :func:`~jianyi_flow.domain.jsontext.prepare` lets it and it
    accepts the value (it refuses integers beyond 64 bits and lone surrogates), else json's
    C encoder built once, else ``_ENCODER`` itself, which raises the usual error for a value
    JSON cannot hold.  See :mod:`jianyi_flow.domain.jsontext` for why the texts are equal and what
    orjson saves.
    """
    ready = prepare(content)
    if ready is not NOT_PLAIN:
        try:
            return orjson.dumps(ready, option=_SORTED)
        except TypeError:  # orjson.JSONEncodeError is a TypeError
            pass
    text: str | None = None
    if _FAST is not None:
        try:
            text = _FAST(content)
        except (TypeError, ValueError, RecursionError):
            text = None
    if text is None:
        text = _ENCODER.encode(content)
    return text.encode("utf-8", "surrogatepass")


def event_hash(event: Event) -> str:
    """The SHA-256 (hex) of the event's canonical content, which includes ``prev_hash``."""
    return hashlib.sha256(_canonical_bytes(canonical(event))).hexdigest()


def seal(event: Event) -> Event:
    """The event with its ``hash`` filled in."""
    return attrs.evolve(event, hash=event_hash(event))


def seal_new(event: Event) -> Event:
    """Fill in the ``hash`` of an event just built and not yet shared (no copy: hot path)."""
    object.__setattr__(event, "hash", event_hash(event))
    return event


@attrs.frozen
class HistoryProblem:
    """One thing wrong with a stored history."""

    suggestion_id: str
    version: int
    problem: str

    def __str__(self) -> str:
        return f"{self.suggestion_id} v{self.version}: {self.problem}"


def verify_events(suggestion_id: str, events: Sequence[Event], row: Suggestion | None) -> list[HistoryProblem]:
    """Check a history: gap-free versions, an unbroken hash chain, and a row equal to its replay."""
    problems: list[HistoryProblem] = []
    prev = ""
    for expected, event in enumerate(events, start=1):
        if event.version != expected:
            problems.append(HistoryProblem(suggestion_id, event.version, f"version out of order, expected {expected}"))
        if event.prev_hash != prev:
            problems.append(HistoryProblem(suggestion_id, event.version, "prev_hash does not match the event before"))
        if event_hash(event) != event.hash:
            problems.append(HistoryProblem(suggestion_id, event.version, "content does not match its hash"))
        prev = event.hash
    if row is not None:
        if not events:
            problems.append(HistoryProblem(suggestion_id, row.version, "row has no history"))
        else:
            try:
                replayed = replay(events)
            except (TypeError, ValueError, KeyError) as e:
                problems.append(HistoryProblem(suggestion_id, row.version, f"history cannot be replayed: {e}"))
            else:
                if replayed != row:
                    problems.append(
                        HistoryProblem(suggestion_id, row.version, "row differs from the replay of its history")
                    )
    return problems


def first_problem(problems: Iterable[HistoryProblem]) -> HistoryProblem | None:
    return next(iter(problems), None)
