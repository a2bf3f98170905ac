"""Tamper-evident history: each event is hashed together with the hash before it.

``hash = sha256(canonical text of the event)``.  The canonical text is compact JSON
(``json.dumps`` with sorted object keys, no spaces, non-ASCII written as is, UTF-8) of a
list in a fixed order: suggestion id, version, kind, from-state, to-state, actor (id, role,
unit, name), time (UTC ISO), reason, changes, payload, prev_hash — and, only when the event
has any, a last object holding ``notices``, ``workflow`` and ``policy``.  Events written
before those fields existed therefore keep their hashes.  ``prev_hash`` is included, so
editing an event changes its hash, and deleting or reordering events breaks the chain;
:func:`verify_events` says which version is wrong.

Personal data is not in the events of suggestions received into a vault
(:mod:`jianyi_flow.domain.personal`).  For a suggestion received before, the vault
migration (``vault_personal_data``) rewrote the earlier events that held it without it, and
its own event — hashed in the chain after them — records each rewritten event's version,
its hash (kept, so the chain and every checkpoint still hold) and the hash of its new
content: such an event is checked against the latter (:func:`redactions`).

The hash alone is unkeyed: someone who can write the database can re-seal a consistent
rewrite with this very code.  :class:`Anchor` adds what a database writer cannot forge: a
keyed MAC of every event's hash (the key lives outside the database), and checkpoints of
every chain head written to an append-only file (see docs/security.md).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from .codec import DATETIME_FIELDS, FIELD_ENCODERS, encode_datetime, enum_value, replay
from .model import Actor, Event, State, Suggestion
from .personal import VAULT, PersonalRecord, pseudonymous_row, verify_personal_data
from .workflow import Workflow

__all__ = ["HistoryProblem", "canonical", "canonical_bytes", "event_hash", "seal", "sealed_event", "verify_events"]

_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))
"""The one writer of the canonical text (built once: stored hashes depend on its settings)."""


def canonical(event: Event) -> list[Any]:
    """The JSON-ready content of an event that its hash covers, as a fixed-order list."""
    return _content(event.suggestion_id, event.version, event.kind, event.from_state, event.to_state, event.actor,
                    encode_datetime(event.at), event.reason, event.changes, event.payload, event.prev_hash,
                    event.notices, event.workflow, event.policy)


def _content(
    suggestion_id: str, version: int, kind: str, from_state: State | None, to_state: State, actor: Actor, at: str,
    reason: str | None, changes: Mapping[str, Any], payload: Mapping[str, Any], prev_hash: str,
    notices: Sequence[str], workflow: str | None, policy: str | None,
) -> list[Any]:
    content: list[Any] = [
        suggestion_id,
        version,
        kind,
        None if from_state is None else enum_value(from_state),
        enum_value(to_state),
        actor.id,
        enum_value(actor.role),
        actor.unit,
        actor.name,
        at,
        reason,
        changes,
        payload,
        prev_hash,
    ]
    extra: dict[str, Any] = {}
    if notices:
        extra["notices"] = list(notices)
    if workflow is not None:
        extra["workflow"] = workflow
    if policy is not None:
        extra["policy"] = policy
    if extra:
        content.append(extra)
    return content


def _digest(content: list[Any]) -> str:
    return hashlib.sha256(_ENCODER.encode(content).encode("utf-8", "surrogatepass")).hexdigest()


def canonical_bytes(event: Event) -> bytes:
    """The canonical text of ``event``, UTF-8 encoded (lone surrogates passed through as stored)."""
    return _ENCODER.encode(canonical(event)).encode("utf-8", "surrogatepass")


def event_hash(event: Event) -> str:
    """The SHA-256 (hex) of the event's canonical content, which includes ``prev_hash``."""
    return hashlib.sha256(canonical_bytes(event)).hexdigest()


def seal(event: Event) -> Event:
    """The event with its ``hash`` filled in."""
    return attrs.evolve(event, hash=event_hash(event))


def sealed_event(
    suggestion_id: str, version: int, kind: str, from_state: State | None, to_state: State, actor: Actor,
    at: dt.datetime, reason: str | None, changes: Mapping[str, Any], payload: Mapping[str, Any], prev_hash: str,
    notices: tuple[str, ...], workflow: str | None, policy: str | None, *, key: bytes | None = None,
) -> Event:
    """A new event with its ``hash`` (and, with ``key``, its ``mac``): what :func:`seal` gives, built once.

    ``changes`` are raw :class:`Suggestion` field values: they are encoded here
    (:func:`~jianyi_flow.domain.codec.encode_changes`), the fields set to ``at`` sharing its encoded text.
    """
    at_text = encode_datetime(at)
    encoded: dict[str, Any] = {}
    for name, value in changes.items():  # encode_value, inlined for speed
        if value is None:
            encoded[name] = None
        elif value is at and name in DATETIME_FIELDS:
            encoded[name] = at_text  # the command's own time, encoded once
        else:
            convert = FIELD_ENCODERS.get(name)
            encoded[name] = value if convert is None else convert(value)
    digest = _digest(_content(suggestion_id, version, kind, from_state, to_state, actor, at_text, reason, encoded,
                              payload, prev_hash, notices, workflow, policy))
    return Event(suggestion_id, version, kind, from_state, to_state, actor, at, reason, encoded, payload, prev_hash,
                 digest, notices, workflow, policy, None, None if key is None else mac_of(key, digest))


def mac_of(key: bytes, event_hash_hex: str) -> str:
    """The keyed seal (HMAC-SHA256, hex) of an event hash."""
    return hmac.new(key, event_hash_hex.encode("ascii"), hashlib.sha256).hexdigest()


def redactions(events: Sequence[Event]) -> dict[int, tuple[str, str]]:
    """Version → (hash kept, hash of the content now) of each event a ``vault_personal_data`` event rewrote."""
    out: dict[int, tuple[str, str]] = {}
    for e in events:
        if e.kind != VAULT or not isinstance(e.payload, Mapping):
            continue
        for item in e.payload.get("redacted") or ():
            if isinstance(item, Mapping) and isinstance(item.get("version"), int) and item["version"] < e.version:
                out[item["version"]] = (str(item.get("hash")), str(item.get("redacted_hash")))
    return out


@attrs.frozen
class HistoryProblem:
    """One thing wrong with a stored history."""

    suggestion_id: str
    version: int
    problem: str

    def __str__(self) -> str:
        return f"{self.suggestion_id} v{self.version}: {self.problem}"


def verify_events(
    suggestion_id: str, events: Sequence[Event], row: Suggestion | None, *, key: bytes | None = None,
    workflows: Mapping[str | None, Workflow] | None = None, vault: bool = False,
    personal: PersonalRecord | None = None,
) -> list[HistoryProblem]:
    """Check a history: gap-free versions, an unbroken hash chain, a row equal to its replay.

    With ``key`` (an :class:`Anchor`'s), every event must also carry a valid ``mac``.  With
    ``workflows`` (workflow version → definition), every event that records a version must be
    a step the definition it was written under allows; events written before events carried
    a version are checked by their hashes and their replay only.  With ``vault`` (the store
    keeps personal data apart), ``personal`` — the suggestion's vault record — must agree with
    the history (:func:`~jianyi_flow.domain.personal.verify_personal_data`).
    """
    problems: list[HistoryProblem] = []
    prev = ""
    rewritten = redactions(events) if any(e.kind == VAULT for e in events) else {}
    for expected, event in enumerate(events, start=1):
        if event.suggestion_id != suggestion_id:
            problems.append(HistoryProblem(suggestion_id, event.version, "event of another suggestion"))
        if event.version != expected:
            problems.append(HistoryProblem(suggestion_id, event.version, f"version out of order, expected {expected}"))
        if event.prev_hash != prev:
            problems.append(HistoryProblem(suggestion_id, event.version, "prev_hash does not match the event before"))
        actual = event_hash(event)
        if actual != event.hash and rewritten.get(event.version) != (event.hash, actual):
            problems.append(HistoryProblem(suggestion_id, event.version, "content does not match its hash"))
        if key is not None and (event.mac is None or not hmac.compare_digest(event.mac, mac_of(key, event.hash))):
            problems.append(HistoryProblem(suggestion_id, event.version, "keyed seal (mac) missing or wrong"))
        if workflows is not None and event.workflow is not None:
            definition = workflows.get(event.workflow)
            if definition is None:
                problems.append(HistoryProblem(suggestion_id, event.version,
                                               f"written under workflow {event.workflow}, which is not known here"))
            else:
                wrong = definition.explain(event)
                if wrong is not None:
                    problems.append(HistoryProblem(suggestion_id, event.version, wrong))
        prev = event.hash
    if vault:
        problems.extend(HistoryProblem(suggestion_id, version, problem)
                        for version, problem in verify_personal_data(suggestion_id, events, personal))
        if row is not None and row.proposer.vaulted and personal is not None \
                and personal.erased == bool(row.proposer.erased):  # (an erasure half done is reported above)
            # the account a store reads with the row (an SQL store: the index of the proposer's own list)
            account = None if personal.erased else personal.account
            if row.proposer.account != account:
                problems.append(HistoryProblem(suggestion_id, row.version,
                                               "the row's proposer account does not match the personal data "
                                               "in the vault"))
    if row is not None:
        if not events:
            problems.append(HistoryProblem(suggestion_id, row.version, "row has no history"))
        else:
            try:
                replayed = replay(events)
            except (TypeError, ValueError, KeyError) as e:
                problems.append(HistoryProblem(suggestion_id, row.version, f"history cannot be replayed: {e}"))
            else:
                if replayed != pseudonymous_row(row):
                    problems.append(
                        HistoryProblem(suggestion_id, row.version, "row differs from the replay of its history")
                    )
    return problems


def first_problem(problems: Iterable[HistoryProblem]) -> HistoryProblem | None:
    return next(iter(problems), None)
