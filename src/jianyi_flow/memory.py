"""``MemoryStore``: the in-process store, for tests, simulations and small tools.

It keeps everything in dicts behind one lock and is the reference implementation of the
:class:`~jianyi_flow.store.Store` contract.  Due times are kept in a sorted index so the
supervision queries (overdue, due soon) do not scan every suggestion.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import threading
from collections.abc import Iterable

import attrs

from .clock import require_aware
from .errors import ConcurrencyConflict, DuplicateSuggestion, IdempotencyKeyReused, NotFound, ValidationError
from .model import Event, Suggestion
from .store import Change, IdempotencyRecord, OutboxMessage, Query, matches


@attrs.define
class _Lease:
    message: OutboxMessage
    attempts: int = 0
    leased_until: dt.datetime | None = None
    sent: bool = False


class MemoryStore:
    """A thread-safe in-memory :class:`~jianyi_flow.store.Store`."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._rows: dict[str, Suggestion] = {}
        self._events: dict[str, list[Event]] = {}
        self._ids: list[str] = []  # sorted: keyset paging and bulk export without sorting per page
        self._due: list[tuple[float, str]] = []  # (UTC timestamp, id): floats compare fast
        self._outbox: dict[int, _Lease] = {}
        self._next_message = 1
        self._keys: dict[str, IdempotencyRecord] = {}

    # --- writing -------------------------------------------------------------------------
    def commit(self, change: Change) -> None:
        s = change.suggestion
        event = change.event
        if event.suggestion_id != s.id or event.version != s.version or s.version != change.expected_version + 1:
            raise ValidationError("change", "row, event and expected version must agree")
        with self._lock:
            current = self._rows.get(s.id)
            if change.expected_version == 0:
                if current is not None:
                    raise DuplicateSuggestion(s.id)
            elif current is None:
                raise NotFound("suggestion", s.id)
            elif current.version != change.expected_version:
                raise ConcurrencyConflict(s.id, change.expected_version, current.version)
            key = change.idempotency_key
            if key is not None and key in self._keys:
                raise IdempotencyKeyReused(key, f"suggestion {self._keys[key].suggestion_id}")
            # nothing below can fail: every check is done
            if current is not None and current.due_at is not None:
                self._drop_due(current)
            if current is None:
                bisect.insort(self._ids, s.id)
            self._rows[s.id] = s
            if s.due_at is not None:
                bisect.insort(self._due, (s.due_at.timestamp(), s.id))
            self._events.setdefault(s.id, []).append(event)
            for message in change.messages:
                self._outbox[self._next_message] = _Lease(message)
                self._next_message += 1
            if key is not None:
                self._keys[key] = IdempotencyRecord(key, s.id, s.version, event.kind)

    def _drop_due(self, row: Suggestion) -> None:
        assert row.due_at is not None
        key = (row.due_at.timestamp(), row.id)
        i = bisect.bisect_left(self._due, key)
        if i < len(self._due) and self._due[i] == key:
            del self._due[i]

    # --- reading -------------------------------------------------------------------------
    def load(self, suggestion_id: str) -> Suggestion:
        try:
            return self._rows[suggestion_id]
        except KeyError:
            raise NotFound("suggestion", suggestion_id) from None

    def history(self, suggestion_id: str) -> list[Event]:
        with self._lock:
            return list(self._events.get(suggestion_id, ()))

    def query(self, query: Query) -> list[Suggestion]:
        for field in ("due_before", "due_after"):
            value = getattr(query, field)
            if value is not None:
                require_aware(value, f"query.{field}")
        if query.limit is not None and query.limit <= 0:
            return []
        with self._lock:
            if query.by_due:
                lo = 0 if query.due_after is None else bisect.bisect_left(self._due, (query.due_after.timestamp(), ""))
                hi = len(self._due) if query.due_before is None else bisect.bisect_left(
                    self._due, (query.due_before.timestamp(), "")
                )
                out: list[Suggestion] = []
                for _, sid in self._due[lo:hi]:
                    row = self._rows[sid]
                    if matches(query, row):
                        out.append(row)
                        if query.limit is not None and len(out) >= query.limit:
                            break
                return out
            start = 0 if query.after_id is None else bisect.bisect_right(self._ids, query.after_id)
            found: list[Suggestion] = []
            for sid in itertools.islice(self._ids, start, None):
                row = self._rows[sid]
                if matches(query, row):
                    found.append(row)
                    if query.limit is not None and len(found) >= query.limit:
                        break
            return found

    def export_events(self, after_id: str | None, limit: int) -> list[Event]:
        """The events of the next ``limit`` suggestions with ids after ``after_id`` (bulk export)."""
        with self._lock:
            start = 0 if after_id is None else bisect.bisect_right(self._ids, after_id)
            out: list[Event] = []
            for sid in self._ids[start:start + limit]:
                out.extend(self._events[sid])
            return out

    def idempotency(self, key: str) -> IdempotencyRecord | None:
        return self._keys.get(key)

    # --- outbox --------------------------------------------------------------------------
    def claim(self, limit: int, now: dt.datetime, lease: dt.timedelta) -> list[OutboxMessage]:
        require_aware(now, "now")
        out: list[OutboxMessage] = []
        if limit <= 0:
            return out
        with self._lock:
            for mid in sorted(self._outbox):
                entry = self._outbox[mid]
                if entry.sent or (entry.leased_until is not None and entry.leased_until > now):
                    continue
                entry.leased_until = now + lease
                entry.attempts += 1
                out.append(attrs.evolve(entry.message, id=mid, attempts=entry.attempts))
                if len(out) >= limit:
                    break
        return out

    def mark_sent(self, ids: Iterable[int]) -> None:
        with self._lock:
            for mid in ids:
                entry = self._outbox.get(mid)
                if entry is not None:
                    entry.sent = True

    def close(self) -> None:
        """Nothing to release."""

    def __len__(self) -> int:
        return len(self._rows)
