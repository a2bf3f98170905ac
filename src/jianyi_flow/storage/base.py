"""The storage boundary: the one interface every backend implements, and the records it keeps.

A store keeps the current row of each suggestion, its append-only history, an outbox of
messages to deliver, and the idempotency keys of commands already done.  It has one write
method, :meth:`Store.commit`, which applies a :class:`Change` — the new row, its event, its
outbox messages and its idempotency record — all together or not at all, and gives the
event its place in the store's log (``seq``: 1, 2, 3... without gaps).  Everything else
reads.

Optional capabilities are declared as protocols beside :class:`Store`
(:class:`BatchingStore`, :class:`HistoryScanner`, :class:`MetadataStore`...); code that can use
one checks ``isinstance(store, HistoryScanner)`` and falls back to the plain interface
otherwise.  Both shipped stores implement all of them but :class:`TransactingStore`, which
only :class:`~jianyi_flow.sql.SqlStore` has.

Writing an adapter: implement :class:`Store` (and whichever capabilities you can), then
subclass :class:`jianyi_flow.testing.StoreContract` in your tests (see docs/storage.md).
"""

from __future__ import annotations

import datetime as dt
import enum
import operator
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol, TypeVar, runtime_checkable

import attrs

from ..domain.clock import to_utc
from ..domain.model import Event, State, Suggestion
from ..domain.personal import PersonalRecord
from ..errors import ValidationError

__all__ = [
    "LIMIT_MAX",
    "BatchingStore",
    "Change",
    "HistoryScanner",
    "IdempotencyRecord",
    "MetadataStore",
    "Order",
    "OutboxBacklog",
    "OutboxMessage",
    "PersonalDataVault",
    "Query",
    "Store",
    "StoredHistory",
    "TransactingStore",
    "check_change",
    "check_limit",
    "flagged_for_due",
    "iter_events",
    "iter_suggestions",
    "matcher",
    "matches",
    "message_ids",
    "order",
    "sort_key",
]


T = TypeVar("T")


@attrs.frozen
class OutboxMessage:
    """A notice someone must hear about (proposer, unit, office), delivered at least once.

    ``id`` is assigned by the store; it is ``None`` on a message not yet committed.
    ``sent_at`` is set once the message was marked delivered.
    """

    topic: str
    suggestion_id: str
    version: int
    recipient: str
    created_at: dt.datetime
    payload: Mapping[str, Any] = attrs.field(factory=dict)
    id: int | None = None
    attempts: int = 0
    sent_at: dt.datetime | None = None


@attrs.frozen
class IdempotencyRecord:
    """What a command done under an idempotency key produced.

    A key belongs to whoever used it: ``scope`` is the actor (``Actor.key``), so two actors
    never share a key.  ``fingerprint`` is a digest of the request (command, suggestion and
    arguments): the same key with a different request is refused.
    """

    scope: str
    key: str
    suggestion_id: str
    version: int
    command: str
    fingerprint: str


@attrs.frozen
class Change:
    """One command's effect: written by :meth:`Store.commit` atomically.

    ``expected_version`` is the version the command read (``0`` creates the suggestion);
    the new row carries ``expected_version + 1``, as does ``event``.
    """

    suggestion: Suggestion
    event: Event
    expected_version: int
    messages: tuple[OutboxMessage, ...] = ()
    idempotency: IdempotencyRecord | None = None
    personal_data: PersonalRecord | None = None
    """The suggestion's vault record to write with the change (it replaces the one stored):
    its data on receipt, a tombstone on erasure.  Only a :class:`PersonalDataVault` accepts it."""
    forget_keys: bool = False
    """Delete the suggestion's idempotency records of earlier versions: an erasure forgets them, because
    a record's scope may be the proposer's account and a receive's fingerprint is a digest of the draft
    with the personal data in it.  Only a :class:`PersonalDataVault` accepts it."""
    redacted: tuple[Event, ...] = ()
    """Earlier events of the suggestion whose ``changes`` this change rewrites without their personal
    data (only the vault migration does, and its event records each one's hash before and after;
    see :meth:`jianyi_flow.Flow.vault_personal_data`).  Only a :class:`PersonalDataVault` accepts it."""


class Order(enum.StrEnum):
    """What a :class:`Query` sorts by (always then by id, so the order is total)."""

    ID = "id"
    RECEIVED = "received_at"
    """Time of receipt: every row has one."""
    DUE = "due_at"
    """The current due time: only rows that have one (open suggestions) are listed."""
    REGISTRATION = "registration_number"
    """The registration number: only registered rows are listed."""


def _optional_states(states: Iterable[State] | None) -> frozenset[State] | None:
    return None if states is None else frozenset(State(s) for s in states)


def _optional_after(value: Sequence[Any] | None) -> tuple[Any, str] | None:
    return None if value is None else (value[0], value[1])


@attrs.frozen
class Query:
    """A filter over current suggestion rows, with an order and keyset paging.

    Every field set narrows the result:

    * ``states``, ``campaign``, ``area``, ``topic`` — equality (``states``: any of them);
    * ``unit`` — the lead, a co-handling or the recommending unit; ``lead_unit``,
      ``co_unit``, ``recommending_unit`` — that one relation only;
    * ``proposer_account`` — the proposer's portal account; ``received_by`` — the actor
      who took it in (``Actor.key``);
    * ``received_after`` <= received_at < ``received_before``;
      ``due_after`` <= due_at < ``due_before`` (only rows with a due time);
    * ``provisional`` — whether the current deadline is provisional (``due_provisional``);
    * ``reported_upward`` — whether it was reported upward (呈报) in some form;
      ``forwarded_to_city`` — whether it was forwarded to the municipal office;
    * ``overdue_unflagged`` — only rows not yet flagged overdue for their current due time
      (see :func:`flagged_for_due`): what ``Flow.tick`` still has to look at.

    Rows come sorted by ``order`` then id (``descending`` reverses both).  ``after`` is the
    keyset cursor: the ``(sort value, id)`` of the last row of the previous page — rows
    after it in this order follow, so a page never repeats or skips a row whose sort value
    did not change meanwhile.  With :attr:`Order.ID` the sort value is the id itself;
    ``after_id`` is a short form of that (ignored in other orders).  ``limit`` cuts the page.
    """

    states: frozenset[State] | None = attrs.field(default=None, converter=_optional_states)
    campaign: str | None = None
    unit: str | None = None
    lead_unit: str | None = None
    co_unit: str | None = None
    recommending_unit: str | None = None
    proposer_account: str | None = None
    received_by: str | None = None
    area: str | None = None
    topic: str | None = None
    received_after: dt.datetime | None = None
    received_before: dt.datetime | None = None
    due_after: dt.datetime | None = None
    due_before: dt.datetime | None = None
    provisional: bool | None = None
    reported_upward: bool | None = None
    forwarded_to_city: bool | None = None
    overdue_unflagged: bool = False
    order: Order = attrs.field(default=Order.ID, converter=Order)
    descending: bool = False
    after: tuple[Any, str] | None = attrs.field(default=None, converter=_optional_after)
    after_id: str | None = None
    limit: int | None = None

    @property
    def by_due(self) -> bool:
        """Whether the query selects by due time (only rows with a due time match)."""
        return self.due_before is not None or self.due_after is not None or self.order is Order.DUE

    def cursor_of(self, s: Suggestion) -> tuple[Any, str]:
        """The ``after`` value that continues this query after row ``s``."""
        return (sort_key(self.order, s), s.id)

    def cursor(self) -> tuple[Any, str] | None:
        """The keyset cursor in effect: ``after``, or ``after_id`` read as ``(id, id)`` in id order."""
        if self.after is not None:
            return self.after
        if self.after_id is not None:
            return (self.after_id, self.after_id) if self.order is Order.ID else None
        return None

    def unpaged(self) -> Query:
        """The same filter without cursor and limit (what :meth:`Store.count` counts)."""
        return attrs.evolve(self, after=None, after_id=None, limit=None)


@runtime_checkable
class Store(Protocol):
    """Persistence for suggestions.  All methods are thread-safe in every shipped store.

    Errors: :class:`~jianyi_flow.errors.DuplicateSuggestion` (create of an existing id),
    :class:`~jianyi_flow.errors.ConcurrencyConflict` (stale ``expected_version``),
    :class:`~jianyi_flow.errors.IdempotencyKeyReused` (key already stored for that scope),
    :class:`~jianyi_flow.errors.NotFound`, :class:`~jianyi_flow.errors.StoreError`.
    """

    def commit(self, change: Change) -> Event:
        """Write the row, the event, the messages and the key, all or nothing.

        ``expected_version == 0`` inserts a new suggestion; otherwise the stored row must
        have exactly ``expected_version`` or nothing is written.  Returns the event as
        stored: with ``seq``, its place in the store's log (the previous event's + 1).
        """
        ...

    def load(self, suggestion_id: str) -> Suggestion:
        """The current row; :class:`NotFound` if there is none."""
        ...

    def history(self, suggestion_id: str) -> list[Event]:
        """Every event of the suggestion in version order (empty if unknown)."""
        ...

    def query(self, query: Query) -> list[Suggestion]:
        """Current rows matching ``query``, in its order, after its cursor, cut at its limit."""
        ...

    def count(self, query: Query) -> int:
        """How many rows match ``query``'s filters (its order, cursor and limit aside)."""
        ...

    def idempotency(self, scope: str, key: str) -> IdempotencyRecord | None:
        """What the command done by ``scope`` under ``key`` produced, or ``None``."""
        ...

    def claim(self, limit: int, now: dt.datetime, lease: dt.timedelta) -> list[OutboxMessage]:
        """Take up to ``limit`` unsent messages not leased to another worker, oldest first.

        A claimed message is leased until ``now + lease``; if it is not marked sent by
        then it can be claimed again (at-least-once delivery).
        """
        ...

    def mark_sent(self, ids: Iterable[int], at: dt.datetime) -> None:
        """Mark messages delivered at ``at``; they are never claimed again (they stay as a log).

        Unknown ids are ignored; a message already marked keeps its first ``sent_at``.
        """
        ...

    def close(self) -> None:
        """Release connections (a no-op for stores that hold none)."""
        ...


@runtime_checkable
class BatchingStore(Protocol):
    """A store that can run many commits as one transaction (bulk loads, simulations).

    Inside ``with store.batch():`` reads see the batch's own commits, and every commit is
    its own savepoint: a commit that fails raises at once and leaves the batch's earlier
    commits in place.  When the block ends the batch is committed — also when an exception
    leaves it, for the commits that succeeded before it — so a batch changes how many
    transactions a run takes, never what is stored.
    """

    def batch(self) -> AbstractContextManager[None]: ...


@runtime_checkable
class TransactingStore(Protocol):
    """A store that can run one command's reads and its commit in one transaction.

    ``transaction(work)`` calls ``work()`` with this thread's calls on the store joined in
    one transaction: reads see it, and a :meth:`Store.commit` writes in it.  The transaction
    commits when ``work`` returns and rolls back if it raises; a commit that fails inside it
    fails the whole transaction (its error is raised from ``transaction`` even if ``work``
    caught it).  ``work`` may be called again after the database broke a deadlock, so it
    must be safe to repeat.  Inside :meth:`BatchingStore.batch` it joins the batch.
    Flow runs each command on one suggestion this way: its read and its commit cost one
    transaction instead of two, and the store may use what it read to write less.
    """

    def transaction(self, work: Callable[[], T]) -> T: ...


@attrs.frozen
class StoredHistory:
    """One suggestion as stored: its row, its events and its outbox messages.

    ``problem`` says why the row or the events could not be read (the others are then
    empty); an audit reports it and goes on with the next suggestion.
    """

    suggestion_id: str
    row: Suggestion | None
    events: tuple[Event, ...]
    messages: tuple[OutboxMessage, ...] = ()
    problem: str | None = None
    personal: PersonalRecord | None = None
    """The suggestion's vault record (a :class:`PersonalDataVault` fills it in)."""


@runtime_checkable
class HistoryScanner(Protocol):
    """A store that can read every suggestion's row, events and messages in one ordered pass."""

    def scan_histories(self, after_id: str | None, limit: int) -> list[StoredHistory]:
        """The next ``limit`` suggestions with ids greater than ``after_id``, in id order.

        Suggestions whose events exist but whose row is gone are included (``row`` is
        ``None``): a deleted row must show in an audit.
        """
        ...

    def last_seq(self) -> int:
        """The ``seq`` of the newest event (0 for an empty store)."""
        ...


@runtime_checkable
class PersonalDataVault(Protocol):
    """A store that keeps proposers' personal data apart from the history (:mod:`jianyi_flow.domain.personal`).

    * :meth:`Store.commit` writes ``Change.personal_data`` (replacing the suggestion's record),
      rewrites the ``changes`` and actor of the events in ``Change.redacted`` (same version and
      hash) and, with ``Change.forget_keys``, deletes the suggestion's idempotency records of
      earlier versions, in the change's transaction;
    * a row reads back (``load``, ``query``, ``scan_histories``) as it was committed, and the
      vault is the one place the data lives: a store that writes rows out (a database) writes
      them without the vaulted fields of their proposer (``Proposer.pseudonymous``) and fills
      them in from the record on every read; an in-memory store may keep the committed row,
      whose data is the record's own text (an erasure replaces both in one commit);
    * ``scan_histories`` gives each suggestion's record in ``StoredHistory.personal``.
    """

    def personal_data(self, suggestion_id: str) -> PersonalRecord | None:
        """The suggestion's vault record (a tombstone once erased), or ``None``."""
        ...


@runtime_checkable
class MetadataStore(Protocol):
    """A store that keeps a few named values beside the suggestions (a simulation's identity...)."""

    def get_meta(self, name: str) -> str | None: ...

    def set_meta(self, name: str, value: str) -> None: ...


@runtime_checkable
class OutboxBacklog(Protocol):
    """A store that can say how many outbox messages wait for delivery (for health checks)."""

    def outbox_pending(self) -> int: ...


LIMIT_MAX = 1_000_000
"""The largest ``limit`` a store accepts in one query or claim."""


def check_change(change: Change) -> None:
    """Refuse a change of the wrong shape: what every store checks first, before it reads or writes anything.

    In this order, each a :class:`~jianyi_flow.errors.ValidationError`: not a :class:`Change`;
    no :class:`Suggestion` or :class:`Event`; an expected version that is not a whole number
    from 0; a row, event and expected version that do not agree; a message that is not an
    :class:`OutboxMessage` of the suggestion; a redacted event that is not an earlier
    :class:`Event` of it (version 1 to the expected version).  The contract kit holds every
    store to these refusals (``StoreContract``); a store of your own can call this first.
    """
    if not isinstance(change, Change):
        raise ValidationError("change", "must be a Change")
    s, e = change.suggestion, change.event
    if not isinstance(s, Suggestion) or not isinstance(e, Event):
        raise ValidationError("change", "needs a Suggestion and an Event")
    expected = change.expected_version
    if not isinstance(expected, int) or isinstance(expected, bool) or expected < 0:
        raise ValidationError("change.expected_version", "must be a whole number from 0", code="out_of_range",
                              details={"min": 0})
    if e.suggestion_id != s.id or e.version != s.version or s.version != expected + 1:
        raise ValidationError("change", "the row, its event and the expected version do not agree")
    for m in change.messages:
        if not isinstance(m, OutboxMessage) or m.suggestion_id != s.id:
            raise ValidationError("change.messages", "a message of another suggestion")
    for earlier in change.redacted:  # an earlier event of the suggestion, never the one committed now
        if not isinstance(earlier, Event) or not isinstance(earlier.version, int) \
                or not 1 <= earlier.version <= expected:
            raise ValidationError("change.redacted", "a redacted event must keep the version and hash it had")


def check_limit(limit: object) -> None:
    """A store's ``limit`` argument: ``None``, or a whole number from 0 to :data:`LIMIT_MAX`."""
    if limit is None:
        return
    if not isinstance(limit, int) or isinstance(limit, bool) or not 0 <= limit <= LIMIT_MAX:
        raise ValidationError("limit", f"must be a whole number from 0 to {LIMIT_MAX}", code="out_of_range",
                              details={"min": 0, "max": LIMIT_MAX})


def message_ids(ids: Iterable[int]) -> list[int]:
    """``mark_sent``'s ids argument: a list of whole numbers (not a single string or number)."""
    if isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
        raise ValidationError("ids", "must be a list of message ids", code="not_a_list")
    out = list(ids)
    for mid in out:
        if not isinstance(mid, int) or isinstance(mid, bool):
            raise ValidationError("ids", "message ids are whole numbers", code="not_an_integer")
    return out


def _utc(value: dt.datetime | None, field: str) -> dt.datetime | None:
    return None if value is None else to_utc(value, field)


def sort_key(order: Order, s: Suggestion) -> Any:
    """The value ``s`` is sorted by under ``order`` (datetimes in UTC, compared by instant)."""
    if order is Order.ID:
        return s.id
    if order is Order.RECEIVED:
        return s.received_at.astimezone(dt.UTC)
    if order is Order.DUE:
        return None if s.due_at is None else s.due_at.astimezone(dt.UTC)
    return s.registration_number


def matches(query: Query, s: Suggestion) -> bool:
    """Whether ``s`` passes ``query``'s filters (its cursor included; for stores that filter in Python).

    To filter many rows, build :func:`matcher` once and call it per row.
    """
    return matcher(query)(s)


def matcher(query: Query) -> Callable[[Suggestion], bool]:
    """The filter of ``query`` (its cursor included), with its bounds and cursor worked out once.

    A bound or cursor that is not a valid instant is a :class:`ValidationError` here, before
    any row is looked at, as a SQL store refuses it when it builds its statement.
    """
    received_after = _utc(query.received_after, "query.received_after")
    received_before = _utc(query.received_before, "query.received_before")
    due_after = _utc(query.due_after, "query.due_after")
    due_before = _utc(query.due_before, "query.due_before")
    cursor = query.cursor()
    theirs = None if cursor is None else (_cursor_value(query.order, cursor[0]), cursor[1])
    states = query.states
    equal = tuple((value, operator.attrgetter(name)) for value, name in (
        (query.campaign, "campaign"),
        (query.area, "area"),
        (query.topic, "topic"),
        (query.lead_unit, "lead_unit"),
        (query.recommending_unit, "recommending_unit"),
        (query.proposer_account, "proposer.account"),
        (query.received_by, "received_by"),
    ) if value is not None)
    unit, co_unit, provisional = query.unit, query.co_unit, query.provisional
    reported, forwarded = query.reported_upward, query.forwarded_to_city
    by_received = received_after is not None or received_before is not None
    by_due, by_due_bounds = query.by_due, due_after is not None or due_before is not None
    registered_only = query.order is Order.REGISTRATION
    unflagged, sort, descending = query.overdue_unflagged, query.order, query.descending

    def keep(s: Suggestion) -> bool:
        if states is not None and s.state not in states:
            return False
        for value, actual in equal:
            if value != actual(s):
                return False
        if unit is not None and unit not in s.units():
            return False
        if co_unit is not None and co_unit not in s.co_units:
            return False
        if provisional is not None and s.due_provisional != provisional:
            return False
        if reported is not None and bool(s.upward_reports) != reported:
            return False
        if forwarded is not None and (s.forwarded_to_city_at is not None) != forwarded:
            return False
        if by_received:
            received = s.received_at.astimezone(dt.UTC)
            if (received_after is not None and received < received_after) or (
                    received_before is not None and not received < received_before):
                return False
        if by_due:
            if s.due_at is None:
                return False
            if by_due_bounds:
                due = s.due_at.astimezone(dt.UTC)
                if (due_after is not None and due < due_after) or (due_before is not None and not due < due_before):
                    return False
        if registered_only and s.registration_number is None:
            return False
        if unflagged and flagged_for_due(s):
            return False
        if theirs is not None:
            mine = (sort_key(sort, s), s.id)
            if not (mine < theirs if descending else mine > theirs):
                return False
        return True

    return keep


def _cursor_value(order: Order, value: Any) -> Any:
    if order in (Order.RECEIVED, Order.DUE) and isinstance(value, dt.datetime):
        return to_utc(value, "query.after")
    return value


def flagged_for_due(s: Suggestion) -> bool:
    """Whether ``s`` was flagged overdue for its current due time: the two are the same instant."""
    flagged, due = s.overdue_flagged_at, s.due_at
    if flagged is None or due is None:
        return False
    return flagged.astimezone(dt.UTC) == due.astimezone(dt.UTC)


def order(query: Query, rows: Iterable[Suggestion]) -> list[Suggestion]:
    """Sort and cut ``rows`` (already filtered) as :class:`Query` documents."""
    ordered = sorted(rows, key=lambda s: (sort_key(query.order, s), s.id), reverse=query.descending)
    return ordered if query.limit is None else ordered[: query.limit]


def iter_suggestions(store: Store, query: Query | None = None, page: int = 1000) -> Iterator[Suggestion]:
    """Every suggestion matching ``query``, fetched ``page`` rows at a time in its order."""
    base = attrs.evolve(query or Query(), limit=page, after_id=None)
    while True:
        rows = store.query(base)
        yield from rows
        if len(rows) < page:
            return
        base = attrs.evolve(base, after=base.cursor_of(rows[-1]))


def iter_events(store: Store, query: Query | None = None, page: int = 1000) -> Iterator[Event]:
    """Every event of every suggestion matching ``query``, by suggestion id then version."""
    if isinstance(store, HistoryScanner) and (query is None or query == Query()):
        after: str | None = None
        while True:
            histories = store.scan_histories(after, page)
            for h in histories:
                yield from h.events
            if len(histories) < page:
                return
            after = histories[-1].suggestion_id
    else:
        for s in iter_suggestions(store, attrs.evolve(query or Query(), order=Order.ID), page):
            yield from store.history(s.id)
