"""``MemoryStore``: the in-process store, and the reference implementation of the store contract.

Plain dicts and lists behind one lock: the current row of each suggestion, its list of
events, the outbox (a list: a message's id is its place in it), the idempotency records
and a few named values.  Queries filter the rows in Python
(:func:`~jianyi_flow.storage.base.matcher`) and sort the matches; that is the behaviour
every other store is held to by :class:`jianyi_flow.testing.StoreContract`.  One index
keeps that fast enough for simulations of a whole campaign: the ids of the rows with a
due time, by its UTC day, so a query bounded by ``due_before`` (every ``Flow.tick`` runs
one) filters only the rows due on or before that day instead of every row.

Rows, events and outbox messages are immutable objects, so the store keeps the very
objects it is given and hands them back: nothing is copied.  A row whose proposer is
vaulted is kept as committed, its personal data being the same text objects as its vault
record's (the :class:`~jianyi_flow.storage.base.PersonalDataVault` capability): the
process's memory is the one place both live, and an erasure replaces the row and the
record in one commit.  A message gets its ``id`` (its place in the outbox) when it is
handed out.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Iterable, Iterator

import attrs

from ..domain.clock import require_aware
from ..domain.codec import with_seq
from ..domain.model import Event, Suggestion
from ..domain.personal import PersonalRecord
from ..errors import ConcurrencyConflict, DuplicateSuggestion, IdempotencyKeyReused, NotFound, ValidationError
from .base import (
    Change,
    IdempotencyRecord,
    OutboxMessage,
    Query,
    StoredHistory,
    check_change,
    check_limit,
    matcher,
    message_ids,
    order,
)

__all__ = ["MemoryStore"]

class MemoryStore:
    """Suggestions, histories, outbox and idempotency keys in memory; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._rows: dict[str, Suggestion] = {}
        self._events: dict[str, list[Event]] = {}
        self._outbox: list[OutboxMessage] = []  # message ``id`` is its place in the list + 1
        self._leases: dict[int, dt.datetime] = {}
        self._keys: dict[tuple[str, str], IdempotencyRecord] = {}
        self._meta: dict[str, str] = {}
        self._vault: dict[str, PersonalRecord] = {}
        self._due_days: dict[dt.date, set[str]] = {}  # ids by the UTC day of their due time (see _matching)
        self._seq = 0

    def __repr__(self) -> str:
        return f"MemoryStore({len(self._rows)} suggestions)"

    # --- writing ---------------------------------------------------------------------------
    def commit(self, change: Change) -> Event:
        check_change(change)
        s, event = change.suggestion, change.event
        with self._lock:
            current = self._rows.get(s.id)
            if change.expected_version == 0:
                if current is not None or s.id in self._events:
                    raise DuplicateSuggestion(s.id)
            elif current is None:
                raise NotFound("suggestion", s.id)
            elif current.version != change.expected_version:
                raise ConcurrencyConflict(s.id, change.expected_version, current.version)
            record = change.idempotency
            if record is not None and (record.scope, record.key) in self._keys:
                raise IdempotencyKeyReused(record.key, "another command")
            history = self._events.get(s.id)
            if history is None:
                history = []  # filed below, once every check has passed
            redacted = {e.version: e for e in change.redacted} if change.redacted else None
            if redacted and any(v > len(history) or history[v - 1].hash != e.hash for v, e in redacted.items()):
                raise ValidationError("change.redacted", "a redacted event must keep the version and hash it had")
            self._seq += 1
            stored = with_seq(event, self._seq)  # attrs.evolve(event, seq=...), built positionally for speed
            self._rows[s.id] = s
            before = None if current is None else current.due_at
            if s.due_at is not before:
                self._file_due(s.id, before, s.due_at)
            if redacted:
                history[:] = [attrs.evolve(e, changes=redacted[e.version].changes, actor=redacted[e.version].actor)
                              if e.version in redacted else e for e in history]
            history.append(stored)
            self._events[s.id] = history
            if change.personal_data is not None:
                self._vault[s.id] = change.personal_data
            if change.forget_keys:
                for k in [k for k, r in self._keys.items() if r.suggestion_id == s.id and r.version < s.version]:
                    del self._keys[k]
            for m in change.messages:  # kept as given when new (numbered when handed out), else made new
                self._outbox.append(m if m.id is None and m.attempts == 0 and m.sent_at is None else
                                    OutboxMessage(m.topic, m.suggestion_id, m.version, m.recipient, m.created_at,
                                                  m.payload))
            if record is not None:
                self._keys[(record.scope, record.key)] = record
            return stored

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Commits inside run as they come (each is atomic on its own); the lock is held throughout."""
        with self._lock:
            yield

    # --- reading ---------------------------------------------------------------------------
    def load(self, suggestion_id: str) -> Suggestion:
        with self._lock:
            row = self._rows.get(suggestion_id)
        if row is None:
            raise NotFound("suggestion", suggestion_id)
        return row

    def personal_data(self, suggestion_id: str) -> PersonalRecord | None:
        return self._vault.get(suggestion_id)

    def history(self, suggestion_id: str) -> list[Event]:
        with self._lock:
            return list(self._events.get(suggestion_id, ()))

    def _file_due(self, suggestion_id: str, before: dt.datetime | None, after: dt.datetime | None) -> None:
        """Move a row between the due-day sets when its due time changes."""
        if before is not None:
            day = _utc_day(before)
            ids = self._due_days.get(day)
            if ids is not None:
                ids.discard(suggestion_id)
                if not ids:
                    del self._due_days[day]
        if after is not None:
            self._due_days.setdefault(_utc_day(after), set()).add(suggestion_id)

    def _matching(self, query: Query) -> list[Suggestion]:
        keep = matcher(query)  # refuses a bad bound before any row is read
        with self._lock:
            if query.due_before is None:
                return [s for s in self._rows.values() if keep(s)]
            # a due-time bound (every tick has one) reads only the rows due on or before its day
            last = _utc_day(query.due_before)
            rows = self._rows
            return [s for day, ids in self._due_days.items() if day <= last
                    for s in map(rows.__getitem__, ids) if keep(s)]

    def query(self, query: Query) -> list[Suggestion]:
        check_limit(query.limit)
        return order(query, self._matching(query))

    def count(self, query: Query) -> int:
        return len(self._matching(query.unpaged()))

    def idempotency(self, scope: str, key: str) -> IdempotencyRecord | None:
        return self._keys.get((scope, key))

    def scan_histories(self, after_id: str | None, limit: int) -> list[StoredHistory]:
        check_limit(limit)
        with self._lock:
            ids = sorted(i for i in self._events.keys() | self._rows.keys() if after_id is None or i > after_id)
            ids = ids[:limit]
            by_suggestion: dict[str, list[OutboxMessage]] = {}
            wanted = set(ids)
            for place, m in enumerate(self._outbox):
                if m.suggestion_id in wanted:
                    by_suggestion.setdefault(m.suggestion_id, []).append(_numbered(m, place))
            return [StoredHistory(i, self._rows.get(i),
                                  tuple(self._events.get(i, ())), tuple(by_suggestion.get(i, ())),
                                  personal=self._vault.get(i)) for i in ids]

    def last_seq(self) -> int:
        return self._seq

    # --- outbox ------------------------------------------------------------------------------
    def claim(self, limit: int, now: dt.datetime, lease: dt.timedelta) -> list[OutboxMessage]:
        check_limit(limit)
        require_aware(now, "now")
        if not isinstance(lease, dt.timedelta) or lease <= dt.timedelta(0):
            raise ValidationError("lease", "must be a positive timedelta")
        out: list[OutboxMessage] = []
        with self._lock:
            for i, m in enumerate(self._outbox):  # oldest first
                if len(out) >= limit:
                    break
                if m.sent_at is not None:
                    continue
                mid = i + 1
                until = self._leases.get(mid)
                if until is not None and until > now:
                    continue
                self._leases[mid] = now + lease
                m = attrs.evolve(m, id=mid, attempts=m.attempts + 1)
                self._outbox[i] = m
                out.append(m)
        return out

    def mark_sent(self, ids: Iterable[int], at: dt.datetime) -> None:
        require_aware(at, "at")
        wanted = message_ids(ids)
        with self._lock:
            for mid in wanted:
                if not 1 <= mid <= len(self._outbox):
                    continue  # no such message
                m = self._outbox[mid - 1]
                if m.sent_at is None:
                    self._outbox[mid - 1] = attrs.evolve(m, id=mid, sent_at=at)
                    self._leases.pop(mid, None)

    def outbox_pending(self) -> int:
        """How many messages are not yet marked sent."""
        with self._lock:
            return sum(1 for m in self._outbox if m.sent_at is None)

    # --- named values ------------------------------------------------------------------------
    def get_meta(self, name: str) -> str | None:
        return self._meta.get(name)

    def set_meta(self, name: str, value: str) -> None:
        if not isinstance(name, str) or not isinstance(value, str):
            raise ValidationError("meta", "names and values are text")
        with self._lock:
            self._meta[name] = value

    def close(self) -> None:
        """Nothing to release."""


def _utc_day(at: dt.datetime) -> dt.date:
    return at.astimezone(dt.UTC).date()


def _numbered(message: OutboxMessage, place: int) -> OutboxMessage:
    """The message at ``place`` in the outbox with its id (kept messages get it when first handed out)."""
    return message if message.id is not None else attrs.evolve(message, id=place + 1)
