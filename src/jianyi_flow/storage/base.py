"""The storage boundary: the one interface every backend implements.

A store keeps the current row of each suggestion, its append-only history, an outbox
of messages to deliver, and the idempotency keys of commands already done.  It has one
write method, :meth:`Store.commit`, which applies a :class:`Change` — the new suggestion
row, its event, its outbox messages and its idempotency key — all together or not at
all.  Everything else reads.

Writing an adapter: implement these methods, then subclass
:class:`jianyi_flow.testing.StoreContract` in your tests (see docs/storage.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import attrs

from ..domain.clock import to_utc
from ..domain.frozen import Weakrefable, builder
from ..domain.model import Event, State, Suggestion


@attrs.frozen
class OutboxMessage(Weakrefable):
    """A notice someone must hear about (proposer or unit), delivered at least once.

    ``id`` is assigned by the store; it is ``None`` on a message not yet committed.
    """

    topic: str
    suggestion_id: str
    version: int
    recipient: str
    created_at: dt.datetime
    payload: Mapping[str, Any] = attrs.field(factory=dict)
    id: int | None = None
    attempts: int = 0


@attrs.frozen
class Change(Weakrefable):
    """One command's effect: written by :meth:`Store.commit` atomically.

    ``expected_version`` is the version the command read (``0`` creates the suggestion);
    the new row carries ``expected_version + 1``, as does ``event``.
    """

    suggestion: Suggestion
    event: Event
    expected_version: int
    messages: tuple[OutboxMessage, ...] = ()
    idempotency_key: str | None = None


build_message: Callable[..., OutboxMessage] = builder(OutboxMessage)
"""``OutboxMessage(...)`` for the hot path (see :mod:`jianyi_flow.domain.frozen`)."""
build_change: Callable[..., Change] = builder(Change)
"""``Change(...)`` for the hot path (see :mod:`jianyi_flow.domain.frozen`)."""


@attrs.frozen
class IdempotencyRecord:
    """What a command done under an idempotency key produced."""

    key: str
    suggestion_id: str
    version: int
    command: str


def _optional_states(states: Iterable[State] | None) -> frozenset[State] | None:
    return None if states is None else frozenset(State(s) for s in states)


@attrs.frozen
class Query:
    """A filter over current suggestion rows.  Every field set narrows the result.

    ``unit`` matches the lead handling unit, a co-handling unit or the recommending unit.
    ``due_before``/``due_after`` select by the current due time (only rows with one);
    results are ordered by due time then id when a due bound is set, else by id.
    ``after_id`` pages by keyset (ids greater than it) for bulk export.
    ``overdue_unflagged`` keeps only rows not yet flagged overdue for their current due
    time (``overdue_flagged_at`` unset, or not the same instant as ``due_at``; see
    :func:`flagged_for_due`): what ``Flow.tick``
    still has to look at, so that a daily tick does not read back every row it flagged
    on an earlier day.
    """

    states: frozenset[State] | None = attrs.field(default=None, converter=_optional_states)
    unit: str | None = None
    area: str | None = None
    topic: str | None = None
    campaign: str | None = None
    due_before: dt.datetime | None = None
    due_after: dt.datetime | None = None
    after_id: str | None = None
    limit: int | None = None
    overdue_unflagged: bool = False

    @property
    def by_due(self) -> bool:
        return self.due_before is not None or self.due_after is not None


@runtime_checkable
class Store(Protocol):
    """Persistence for suggestions.  All methods are thread-safe in every shipped store.

    Errors: :class:`~jianyi_flow.errors.DuplicateSuggestion` (create of an existing id),
    :class:`~jianyi_flow.errors.ConcurrencyConflict` (stale ``expected_version``),
    :class:`~jianyi_flow.errors.IdempotencyKeyReused` (key already stored),
    :class:`~jianyi_flow.errors.NotFound`, :class:`~jianyi_flow.errors.StoreError`.
    """

    def commit(self, change: Change) -> None:
        """Write the row, the event, the messages and the key, all or nothing.

        ``expected_version == 0`` inserts a new suggestion; otherwise the stored row must
        have exactly ``expected_version`` or nothing is written.
        """
        ...

    def load(self, suggestion_id: str) -> Suggestion:
        """The current row; :class:`NotFound` if there is none."""
        ...

    def history(self, suggestion_id: str) -> list[Event]:
        """Every event of the suggestion in version order (empty if unknown)."""
        ...

    def query(self, query: Query) -> list[Suggestion]:
        """Current rows matching ``query`` (see :class:`Query` for order and paging)."""
        ...

    def idempotency(self, key: str) -> IdempotencyRecord | None:
        """What the command done under ``key`` produced, or ``None``."""
        ...

    def claim(self, limit: int, now: dt.datetime, lease: dt.timedelta) -> list[OutboxMessage]:
        """Take up to ``limit`` unsent messages not leased to another worker, oldest first.

        A claimed message is leased until ``now + lease``; if it is not marked sent by
        then it can be claimed again (at-least-once delivery).
        """
        ...

    def mark_sent(self, ids: Iterable[int]) -> None:
        """Mark messages delivered; they are never claimed again."""
        ...

    def close(self) -> None:
        """Release connections (a no-op for stores that hold none)."""
        ...


def matches(query: Query, s: Suggestion) -> bool:
    """Whether ``s`` passes ``query``'s filters (for stores that filter in Python)."""
    if query.states is not None and s.state not in query.states:
        return False
    if query.unit is not None and query.unit not in s.units():
        return False
    if query.area is not None and s.area != query.area:
        return False
    if query.topic is not None and s.topic != query.topic:
        return False
    if query.campaign is not None and s.campaign != query.campaign:
        return False
    if query.by_due:
        due = s.due_at
        if due is None:
            return False
        # by instant, as a database compares them (at a DST fold, 01:30 the second time is
        # later than 01:45 the first time)
        if query.due_before is not None or query.due_after is not None:
            due = to_utc(due, "due_at")
            if query.due_before is not None and not due < to_utc(query.due_before, "query.due_before"):
                return False
            if query.due_after is not None and not due >= to_utc(query.due_after, "query.due_after"):
                return False
    if query.after_id is not None and not s.id > query.after_id:
        return False
    if query.overdue_unflagged and flagged_for_due(s):
        return False
    return True


def flagged_for_due(s: Suggestion) -> bool:
    """Whether ``s`` was flagged overdue for its current due time: the two are the same instant.

    Compared in UTC, as a database compares them: ``==`` on aware datetimes compares wall
    times when both share one zone (ignoring ``fold``) and refuses a DST fold across zones.
    """
    flagged, due = s.overdue_flagged_at, s.due_at
    if flagged is None or due is None:
        return False
    return flagged is due or flagged.astimezone(dt.UTC) == due.astimezone(dt.UTC)


_NO_TIME = dt.datetime.min.replace(tzinfo=dt.UTC)


def order(query: Query, rows: Iterable[Suggestion]) -> Sequence[Suggestion]:
    """Sort and cut ``rows`` as :class:`Query` documents."""
    if query.by_due:  # by instant, as a database orders them (``<`` ignores ``fold`` within one zone)
        ordered = sorted(rows, key=lambda s: (s.due_at.astimezone(dt.UTC) if s.due_at is not None else _NO_TIME, s.id))
    else:
        ordered = sorted(rows, key=lambda s: s.id)
    return ordered if query.limit is None else ordered[: query.limit]


def iter_suggestions(store: Store, query: Query | None = None, page: int = 1000) -> Iterator[Suggestion]:
    """Every suggestion matching ``query`` (by id), fetched ``page`` rows at a time (bulk export)."""
    base = query or Query()
    if base.by_due:
        raise ValueError("iter_suggestions pages by id; due-time queries page with Query.due_after")
    after = base.after_id
    while True:
        rows = store.query(attrs.evolve(base, after_id=after, limit=page))
        yield from rows
        if len(rows) < page:
            return
        after = rows[-1].id


def iter_events(store: Store, query: Query | None = None, page: int = 1000) -> Iterator[Event]:
    """Every event of every suggestion matching ``query``, by suggestion id then version.

    Stores that can export events in bulk provide ``export_events(after_id, limit)``
    (events of the next ``limit`` suggestions with ids greater than ``after_id``); the
    others are read one history at a time.
    """
    export = getattr(store, "export_events", None)
    if export is not None and (query is None or query == Query()):
        after: str | None = None
        while True:
            events: list[Event] = export(after, page)
            yield from events
            if not events:
                return
            after = events[-1].suggestion_id
    else:
        for s in iter_suggestions(store, query, page):
            yield from store.history(s.id)
