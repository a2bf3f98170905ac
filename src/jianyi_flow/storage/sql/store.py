"""``SqlStore``: the :class:`~jianyi_flow.storage.base.Store` on SQLite, PostgreSQL and MariaDB.

One command is one transaction.  :meth:`SqlStore.commit` writes the suggestion row, its
event, its outbox messages and its idempotency key together; if any statement fails the
transaction is rolled back and the caller gets one of the library's errors — never a
SQLAlchemy or driver exception.

Concurrency control is optimistic, as in :class:`~jianyi_flow.storage.memory.MemoryStore`: an
update is ``UPDATE … WHERE id = :id AND version = :expected``; if no row matched, someone
else committed first and the store raises
:class:`~jianyi_flow.errors.ConcurrencyConflict` (or
:class:`~jianyi_flow.errors.NotFound`).  The database's row lock makes the check and the
write one step, so of two writers holding the same version exactly one wins.  On SQLite
every write transaction starts with ``BEGIN IMMEDIATE``, which takes the database's single
write lock up front (waiting up to the busy timeout) instead of failing with "database is
locked" when a reader tries to become a writer halfway through.

Deadlocks and serialization failures that the database resolves by killing one
transaction are retried (the change is data, so retrying it is safe) before they are
reported.

Statements are built once, in the constructor: building SQLAlchemy statements costs more
than executing them.  On SQLite the commit's statements and ``load``'s read go further and
run straight on the driver, compiled once (see :mod:`jianyi_flow.storage.sql.prepared`): a
command then costs less than raw Core doing the same writes.

Inside :meth:`SqlStore.batch` the store remembers, for the batch only, each row it loaded
or committed: as :meth:`~SqlStore.load` returns it, with the encoded values of its
``data`` document.  A commit that starts from a remembered row (the usual load, change,
commit of a command) is a *partial* update: it sets only the columns whose value changed
and re-encodes only the fields that are not the very objects the remembered row holds —
setting an unchanged indexed column would rewrite its index entries, and re-encoding the
bodies and the proposer is most of a command's Python.  It is still the whole new row that
ends up stored: ``WHERE version = :expected`` matches only the row the batch remembered
(versions are never reused), and fields are compared, never taken from the event's
``changes``.  On SQLite, where the batch holds the database's only write lock, a
``load`` of a remembered row reads nothing; on PostgreSQL and MariaDB another writer may
commit meanwhile, so ``load`` always reads (and a stale remembered row can only ever make
a commit fail with :class:`~jianyi_flow.errors.ConcurrencyConflict`, as it would have
anyway).  A command that fails forgets its row (under SQLite's write-behind, below, a
failed command has written nothing and the held row stays as it was).  On PostgreSQL and MariaDB the batch
forgets everything when it ends.  On SQLite the rows outlive the batch that committed them
and serve the next batch, but only if nothing else has written to the database since: the
next batch, holding the write lock, checks that it runs on the same connection, that
``PRAGMA data_version`` is unchanged (no other connection or process committed) and that
the connection's ``total_changes`` is unchanged (nothing was written on it outside a
batch); otherwise it starts afresh.  At most ``cache_rows`` rows are kept (by default
``_CACHE_ROWS``), least recently used first out.

On SQLite a batch also *writes behind*: a commit is checked against the rows the batch
holds (which, under the write lock, are the database's) and queued, and the queued rows,
events and messages go out together as a few ``executemany`` statements before the
batch's next read and when it ends (:meth:`SqlStore._defer`).  A row the batch changes
several times is written once.  A row not yet written is never evicted from the cache.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import bindparam
from sqlalchemy.engine import URL, Connection, Engine, Row
from sqlalchemy.pool import StaticPool

from ...domain.clock import SHANGHAI, Clock, SystemClock, to_utc
from ...domain.model import (
    _DATETIME_FIELDS,
    _ENUM_FIELDS,
    _SPECIAL_FIELDS,
    SUGGESTION_FIELDS,
    Actor,
    Event,
    Role,
    State,
    Suggestion,
    decode_value,
    encode_datetime,
    encode_value,
    replace,
)
from ...errors import (
    ConcurrencyConflict,
    DuplicateSuggestion,
    IdempotencyKeyReused,
    JianyiFlowError,
    NotFound,
    StoreError,
    ValidationError,
)
from ..base import Change, IdempotencyRecord, OutboxMessage, Query
from .engine import create_engine, is_memory_sqlite, mark_pragmas_done, pragmas_done, prepare_sqlite_connection
from .prepared import Prepared, Tx
from .schema import events, idempotency, outbox, suggestion_units, suggestions
from .types import EncodedJson, JsonText, UtcDateTime, dumps, dumps_spaced

__all__ = ["COLUMN_FIELDS", "DATA_FIELDS", "SqlStore"]

T = TypeVar("T")
V = TypeVar("V")

COLUMN_FIELDS: tuple[str, ...] = (
    "id",
    "campaign",
    "state",
    "version",
    "area",
    "topic",
    "lead_unit",
    "recommending_unit",
    "registration_number",
    "due_at",
    "received_at",
    "updated_at",
    "overdue_flagged_at",
)
"""Suggestion fields stored in their own column (queried, sorted on, or useful to a SQL reader)."""

DATA_FIELDS: tuple[str, ...] = tuple(name for name in SUGGESTION_FIELDS if name not in COLUMN_FIELDS)
"""Suggestion fields stored in the ``data`` JSON document (new model fields land here)."""

ROW_KEYS: tuple[str, ...] = (*(name for name in COLUMN_FIELDS if name != "id"), "data")
"""The columns an update sets (every column but ``id`` and ``units_key``)."""
_EVENT_KEYS = tuple(events.c.keys())
_OUTBOX_KEYS = ("topic", "suggestion_id", "version", "recipient", "payload", "created_at", "attempts")
_KEY_KEYS = tuple(idempotency.c.keys())
_UNIT_KEYS = tuple(suggestion_units.c.keys())

_UNIT_FIELDS = frozenset({"lead_unit", "co_units", "recommending_unit"})
_RETRIES = 3
_CACHE_ROWS = 100_000
"""Most rows a batch keeps for its loads and commits by default (``SqlStore(cache_rows=...)``; see :class:`_Cached`).

The least recently used quarter (at least one row) goes when it is full.  A kept row costs 5–6 KB (the
row, its encoded document and that document's pieces, the pieces of common values shared),
so a full cache is 500–600 MB; a batch that touches fewer rows keeps fewer.  Measured on
the 100,000-suggestion simulation on SQLite (a row evicted is read and decoded again when
the suggestion next moves): with 7 KB rows, 20,000 rows 211 s and 395 MiB peak, 45,000 rows
201 s and 661 MiB, 60,000 rows 189 s and 817 MiB (an older, faster source, on the AMD
machine); on the Xeon on 2026-11-26, six alternating runs each, 50,000 rows 246.4 s on
average and 692 MiB, 100,000 rows (no row evicted) 233.8 s and 830 MiB with the shared
pieces (docs/performance.md has every run).  Reproduce with
JIANYI_BENCH_CACHE_ROWS=N python -m benchmarks.simulation --child sqlite 100000 DB."""
_CONNECTION_TOKEN = "jianyi_flow_connection_token"
_CHUNK = 500
"""Values per ``IN (...)``: well below every backend's limit on bound parameters."""


# --- failures noticed inside a transaction, explained after its rollback -------------------
class _RowExists(Exception):
    def __init__(self, ids: Sequence[str], error: sa.exc.DBAPIError) -> None:
        self.ids = ids
        self.error = error


class _KeyTaken(Exception):
    def __init__(self, keys: Sequence[str], error: sa.exc.DBAPIError) -> None:
        self.keys = keys
        self.error = error


class _Cached:
    """A row of the open batch as :meth:`SqlStore.load` would return it, with its ``data`` and units.

    ``data`` holds the encoded value of each data field as stored (the decoded ``data``
    document), so a commit that starts from this row re-encodes only the fields it changed.
    """

    __slots__ = ("data", "ordered", "pieces", "row", "units")

    def __init__(
        self, row: Suggestion, data: dict[str, Any], units: tuple[str, ...], ordered: bool,
        pieces: dict[str, str] | None = None,
    ) -> None:
        self.row = row
        self.data = data
        self.units = units
        self.ordered = ordered
        """Whether ``data`` holds exactly ``DATA_FIELDS``, in that order (as the store writes it)."""
        self.pieces = pieces
        """``'"name":<json>'`` of each data field, when known: the document is their join (see :func:`_document`)."""


class _Uncacheable(Exception):
    """A committed value the database would hand back as another type: read it back instead."""


class _Plan:
    """One Change turned into statement parameters (pure Python, before any I/O).

    Given ``prev``, the row as stored at ``expected_version`` (from the open batch's cache),
    the plan is a *partial* update: it sets only the columns whose value differs and
    re-encodes only the data fields whose value is not the very object ``prev`` holds
    (``set_keys`` lists the columns set).  The row written is still the whole of
    ``change.suggestion``: ``UPDATE … WHERE version = :expected`` only matches the row
    ``prev`` describes, and fields are compared, never taken from the event's ``changes``
    (which may under-report).  Without ``prev`` every column is set (``set_keys`` is
    ``None``).  ``cached`` is the new row as ``load`` would return it, for the batch cache
    (``None`` when it cannot be derived without a read).
    """

    __slots__ = (
        "cached",
        "event",
        "expected",
        "key",
        "messages",
        "row",
        "set_keys",
        "sid",
        "unit_codes",
        "units_changed",
        "units_hinted",
    )

    def __init__(self, change: Change, prev: _Cached | None = None, *, fresh: bool = False) -> None:
        s = change.suggestion
        e = change.event
        if e.suggestion_id != s.id or e.version != s.version or s.version != change.expected_version + 1:
            raise ValidationError("change", "row, event and expected version must agree")
        _check_aware(e.at, "event.at")
        if prev is not None and prev.row.lead_unit is s.lead_unit and prev.row.co_units is s.co_units \
                and prev.row.recommending_unit is s.recommending_unit:
            units = prev.units  # the very fields the cached units were computed from
        else:
            units = s.units()
        self.unit_codes = units
        self.sid = s.id
        self.expected = change.expected_version
        self.cached: _Cached | None = None
        self.set_keys: tuple[str, ...] | None = None
        self.units_changed = True
        if fresh and change.expected_version == 0:
            # a new row, compared with a row of nothing: every field is set, and ``cached``
            # is the row as ``load`` will return it (write-behind needs it; see SqlStore._defer)
            self._diff(s, _NOTHING, units)
            self.units_hinted = True
        elif prev is not None and change.expected_version > 0 and prev.row.version == change.expected_version \
                and prev.row.id == s.id:
            self._diff(s, prev, units)
            self.units_hinted = self.units_changed
        else:
            self._whole(s)
            self.units_hinted = change.expected_version == 0 or not _UNIT_FIELDS.isdisjoint(e.changes)
        self.event: dict[str, Any] = {
            "suggestion_id": e.suggestion_id,
            "version": e.version,
            "kind": e.kind,
            "from_state": None if e.from_state is None else _value(e.from_state),
            "to_state": _value(e.to_state),
            "actor_id": e.actor.id,
            "actor_role": _value(e.actor.role),
            "actor_unit": e.actor.unit,
            "actor_name": e.actor.name,
            "at": e.at,
            "reason": e.reason,
            "changes": _plain(e.changes),
            "payload": _plain(e.payload),
            "prev_hash": e.prev_hash,
            "hash": e.hash,
        }
        self.messages: list[dict[str, Any]] = []
        for m in change.messages:
            _check_aware(m.created_at, "message.created_at")  # bound as UTC by the column's type
            self.messages.append(
                {
                    "topic": m.topic,
                    "suggestion_id": m.suggestion_id,
                    "version": m.version,
                    "recipient": m.recipient,
                    "payload": _plain(m.payload),
                    "created_at": m.created_at,
                    "attempts": 0,
                }
            )
        self.key: dict[str, Any] | None = None
        if change.idempotency_key is not None:
            self.key = {
                "key": change.idempotency_key,
                "suggestion_id": s.id,
                "version": s.version,
                "command": e.kind,
            }

    @property
    def units(self) -> list[dict[str, Any]]:
        """The suggestion's rows in the units table."""
        return [{"suggestion_id": self.sid, "unit": u} for u in self.unit_codes]

    @property
    def units_key(self) -> str:
        """The units as the ``units_key`` column holds them."""
        return _units_key(self.unit_codes)

    def _whole(self, s: Suggestion) -> None:
        """Every column but id and units_key: the SET of an update, plus those two for an insert."""
        for name in _DATETIME_FIELDS:
            value = getattr(s, name)
            if value is not None:
                _check_aware(value, name)
        row: dict[str, Any] = {name: getattr(s, name) for name in _UPDATE_COLUMNS}
        row["state"] = _value(s.state)
        row["data"] = {name: encode_value(name, getattr(s, name)) for name in DATA_FIELDS}
        self.row = row

    def _diff(self, s: Suggestion, prev: _Cached, units: tuple[str, ...]) -> None:
        """The partial update from ``prev`` to ``s``, and the row ``load`` would give after it."""
        row: dict[str, Any] = {}
        canon: dict[str, Any] = {}  # fields of s whose loaded value would be another object
        touched: list[str] = []  # the data fields set
        if prev.ordered:
            data = prev.data.copy()
            _diff_fields(s, prev.row, row, data, canon, touched)
        else:  # a document written otherwise (fields missing, or in another order): write it as the store does
            data = {name: prev.data.get(name, _MISSING) for name in DATA_FIELDS}
            _diff_fields(s, prev.row, row, data, canon, touched)
            for name in DATA_FIELDS:
                if data[name] is _MISSING:
                    _changed_field(name, getattr(s, name), row, data, canon)
            row["data"] = data
        self.units_changed = units != prev.units
        if self.units_changed:
            row["units_key"] = self.units_key
        self.set_keys = tuple(row)
        row["w_id"] = s.id
        row["w_version"] = self.expected
        self.row = row
        if _UNCACHEABLE not in canon:
            pieces = prev.pieces
            if pieces is not None and prev.ordered:  # re-encode only the fields whose encoding is new
                pieces = pieces.copy()
                for name in touched:  # re-encoding an unchanged encoding gives the same text: harmless
                    pieces[name] = _piece(name, data[name])
            else:
                pieces = None
            self.cached = _Cached(replace(s, canon) if canon else s, data, units, True, pieces)


_MISSING: Any = object()


def _nothing() -> _Cached:
    """A row with no value in any field (not even ``None``): every field of a row compared with it differs."""
    row = object.__new__(Suggestion)
    for name in SUGGESTION_FIELDS:
        object.__setattr__(row, name, _MISSING)
    return _Cached(row, dict.fromkeys(DATA_FIELDS, _MISSING), (_MISSING,), True)


_NOTHING = _nothing()
"""One for all (a diff only reads the row it starts from)."""


class _Dirty:
    """A row written by the open batch and not yet sent to the database (see :meth:`SqlStore._defer`)."""

    __slots__ = ("base", "columns", "insert", "units")

    def __init__(self, base: int) -> None:
        self.base = base  # the version the database holds (0: not there yet)
        self.insert = base == 0
        self.columns: set[str] = set()  # what the batch changed since (for an UPDATE)
        self.units = False  # whether the unit links must be rewritten


class _Pending:
    """What an SQLite batch has committed but not yet written: rows (kept whole in the cache), events, messages."""

    __slots__ = ("events", "messages", "rows")

    def __init__(self) -> None:
        self.rows: dict[str, _Dirty] = {}
        self.events: list[dict[str, Any]] = []
        self.messages: list[dict[str, Any]] = []
_UNCACHEABLE = ""
"""Key set in a diff's ``canon`` when the new row cannot be cached (no field has this name)."""


def _changed_column(name: str, value: Any, before: Any, row: dict[str, Any], canon: dict[str, Any]) -> None:
    """Column ``name`` is not the object the stored row holds: set it, unless it is equal."""
    if value == before:  # e.g. the same instant in another zone: the stored value stands
        canon[name] = before
        return
    if name in _DATETIME_COLUMNS and value is not None:
        _check_aware(value, name)
    row[name] = _value(value) if name == "state" else value
    if _UNCACHEABLE not in canon:
        try:
            loaded = _column_as_loaded(name, value)
        except _Uncacheable:
            canon[_UNCACHEABLE] = True
        else:
            if loaded is not value:
                canon[name] = loaded


def _changed_field(name: str, value: Any, row: dict[str, Any], data: dict[str, Any], canon: dict[str, Any]) -> None:
    """Data field ``name`` is not the object the stored row holds: encode it, and the document is set."""
    if name in _DATETIME_FIELDS and value is not None:
        _check_aware(value, name)
    encoded = data[name] = encode_value(name, value)
    row["data"] = data
    if _UNCACHEABLE not in canon:
        try:
            loaded = _data_as_loaded(name, value, encoded)
        except _Uncacheable:
            canon[_UNCACHEABLE] = True
        else:
            if loaded is not value:
                canon[name] = loaded


_Diff = Callable[[Suggestion, Suggestion, dict[str, Any], dict[str, Any], dict[str, Any], list[str]], None]
"""``diff(new, old, row, data, canon, touched)``: fills the three dicts, names the data fields it set in ``touched``."""


def _compile_diff() -> _Diff:
    """Generate the field-by-field comparison of a new row with the stored one, once.

    One identity test per field, no loop: most commands change three or four of the 45
    fields, and only those are looked at.  A changed value of the common kinds — ``None``,
    a plain ``str``/``int``/``bool`` where the field stores it as is, a member of the
    field's enum, a datetime in Asia/Shanghai (``fold=0``) — is handled inline: its
    encoding is known and it loads back as the very same object, so nothing goes in
    ``canon``.  Any other value goes to ``_changed_column`` / ``_changed_field``, which
    decide the general case (the inline code is their fast path, not a second rule).
    """
    lines = ["def diff(s, old, row, data, canon, touched):"]
    namespace: dict[str, Any] = {
        "_column": _changed_column, "_field": _changed_field, "_DT": dt.datetime, "_SH": SHANGHAI,
        "_SCALARS": (str, int, bool), "_enc_dt": encode_datetime,
    }
    for name in _UPDATE_COLUMNS:
        lines.append(f"    v = s.{name}")
        lines.append(f"    if v is not old.{name}:")
        lines.append(f"        b = old.{name}")
        if name == "state":
            namespace["_STATE"] = State
            fast, store = "type(v) is _STATE", "v.value"
        elif name == "version":
            fast, store = "type(v) is int", "v"
        elif name in _DATETIME_COLUMNS:
            fast, store = "v is None or (type(v) is _DT and v.tzinfo is _SH and not v.fold)", "v"
        else:
            fast, store = "v is None or type(v) is str", "v"
        lines.append(f"        if {fast}:")
        lines.append(f"            if v == b: canon[{name!r}] = b")  # equal, not identical: the stored value stands
        lines.append(f"            else: row[{name!r}] = {store}")
        lines.append(f"        else: _column({name!r}, v, b, row, canon)")
    for i, name in enumerate(DATA_FIELDS):
        lines.append(f"    v = s.{name}")
        lines.append(f"    if v is not old.{name}:")
        if name in _DATETIME_FIELDS:
            fast, encoded = "v is None or (type(v) is _DT and v.tzinfo is _SH and not v.fold)", \
                "None if v is None else _enc_dt(v)"
        elif name in _ENUM_FIELDS:
            namespace[f"_E{i}"] = _ENUM_FIELDS[name]
            fast, encoded = f"v is None or type(v) is _E{i}", "None if v is None else v.value"
        elif name in _AS_IS_FIELDS:
            fast, encoded = "v is None or type(v) in _SCALARS", "v"
        else:
            lines.append(f"        _field({name!r}, v, row, data, canon)")
            lines.append(f"        touched.append({name!r})")
            continue
        lines.append(f"        if {fast}:")
        lines.append(f"            data[{name!r}] = {encoded}")
        lines.append("            row['data'] = data")
        lines.append(f"        else: _field({name!r}, v, row, data, canon)")
        lines.append(f"        touched.append({name!r})")
    exec("\n".join(lines), namespace)  # generated from the model's field names only
    fn: _Diff = namespace["diff"]
    return fn




_UPDATE_COLUMNS: tuple[str, ...] = tuple(name for name in COLUMN_FIELDS if name != "id")
_DATETIME_COLUMNS = frozenset(name for name in _UPDATE_COLUMNS if name in _DATETIME_FIELDS)
_AS_IS_FIELDS = frozenset(SUGGESTION_FIELDS) - _DATETIME_FIELDS - frozenset(_ENUM_FIELDS) - _SPECIAL_FIELDS
"""Fields ``encode_value`` / ``decode_value`` pass through unchanged (bodies, codes, numbers, flags)."""
_JSON_SCALARS = frozenset({str, int, bool, type(None)})
"""Types ``json.loads(json.dumps(x))`` gives back as the very same value and type."""
_diff_fields = _compile_diff()


def _loaded_datetime(value: Any) -> dt.datetime:
    """An aware datetime as the store reads it back: the same instant, in Asia/Shanghai."""
    if type(value) is not dt.datetime:
        raise _Uncacheable
    if value.tzinfo is SHANGHAI and not value.fold:
        return value
    loaded: dt.datetime = value.astimezone(SHANGHAI)
    return loaded


def _column_as_loaded(name: str, value: Any) -> Any:
    """``value`` of column ``name`` as :meth:`SqlStore.load` would return it once stored."""
    if value is None:
        return None
    if name in _DATETIME_COLUMNS:
        return _loaded_datetime(value)
    if name == "state":
        try:
            return State(value)
        except ValueError:
            raise _Uncacheable from None
    if name == "version":
        if type(value) is not int:
            raise _Uncacheable
        return value
    if type(value) is not str:
        raise _Uncacheable
    return value


def _data_as_loaded(name: str, value: Any, encoded: Any) -> Any:
    """Data field ``name`` (``value``, encoded as ``encoded``) as :meth:`SqlStore.load` would return it."""
    if value is None:
        return None
    if name in _DATETIME_FIELDS:
        return _loaded_datetime(value)
    if type(encoded) not in _JSON_SCALARS:
        try:
            encoded = json.loads(dumps(encoded))
        except JianyiFlowError:
            raise _Uncacheable from None
    try:
        return decode_value(name, encoded)
    except (ValueError, TypeError, KeyError):
        raise _Uncacheable from None


def _chunks(values: Sequence[V]) -> Iterator[list[V]]:
    for i in range(0, len(values), _CHUNK):
        yield list(values[i : i + _CHUNK])


def _check_aware(value: Any, name: str) -> None:
    """:func:`to_utc`'s check, without its conversion when the value is in the library's own zone."""
    if type(value) is dt.datetime and value.tzinfo is SHANGHAI:
        return  # a ZoneInfo always has an offset: aware
    to_utc(value, name)


def _column_spec(table: sa.Table) -> tuple[tuple[str, tuple[type, ...] | None, bool], ...]:
    """(name, the Python types the column takes or None for any, nullable) of each column but an autoincrement id."""
    out: list[tuple[str, tuple[type, ...] | None, bool]] = []
    for column in table.columns:
        if column.autoincrement is True:
            continue
        kind = column.type
        types: tuple[type, ...] | None = None
        if isinstance(kind, UtcDateTime):
            types = (dt.datetime,)
        elif isinstance(kind, sa.Integer):
            types = (int,)
        elif isinstance(kind, (sa.String, sa.Text)) or (
            isinstance(kind, sa.types.TypeDecorator) and isinstance(kind.impl_instance, (sa.String, sa.Text))
            and not isinstance(kind, JsonText)
        ):
            types = (str,)
        out.append((column.name, types, bool(column.nullable) or column.server_default is not None))
    return tuple(out)


_EVENT_SPEC = _column_spec(events)
_OUTBOX_SPEC = _column_spec(outbox)
_ROW_REQUIRED = tuple(name for name in COLUMN_FIELDS if not suggestions.c[name].nullable)


def _compile_fits(spec: Sequence[tuple[str, tuple[type, ...] | None, bool]]) -> Callable[[Mapping[str, Any]], bool]:
    """``fits(values)``: whether each column of ``spec`` gets a value it takes (straight-line code, built once)."""
    lines = ["def fits(p):", "    get = p.get"]
    namespace: dict[str, Any] = {}
    for i, (name, types, nullable) in enumerate(spec):
        lines.append(f"    v = get({name!r})")
        if types is None:
            if not nullable:
                lines.append("    if v is None: return False")
            continue
        namespace[f"T{i}"] = types
        allowed = f"type(v) in T{i}"
        lines.append(f"    if not ({'v is None or ' if nullable else ''}{allowed}): return False")
    lines.append("    return True")
    exec("\n".join(lines), namespace)  # generated from the schema's column names only
    fits: Callable[[Mapping[str, Any]], bool] = namespace["fits"]
    return fits


_event_fits = _compile_fits(_EVENT_SPEC)
_message_fits = _compile_fits(_OUTBOX_SPEC)


def _storable(plan: _Plan) -> bool:
    """Whether the database will take the plan's row, event and messages as they are.

    Write-behind sends them later, with the rest of the batch: a value only the database
    checks (an empty required column, a type the driver cannot bind) is sent at once
    instead, so that it fails its own command, as outside a batch.
    """
    assert plan.cached is not None
    return (
        _row_complete(plan.cached.row)
        and _event_fits(plan.event)
        and all(_message_fits(m) for m in plan.messages)
    )


def _compile_complete() -> Callable[[Suggestion], bool]:
    """``complete(row)``: whether every required column of ``row`` has a value (straight-line code, built once)."""
    test = " and ".join(f"s.{name} is not None" for name in _ROW_REQUIRED) or "True"
    namespace: dict[str, Any] = {}
    exec(f"def complete(s):\n    return {test}", namespace)  # generated from the schema's column names only
    complete: Callable[[Suggestion], bool] = namespace["complete"]
    return complete


_row_complete = _compile_complete()


_INSERT_KEYS: tuple[str, ...] = (*ROW_KEYS, "units_key")
_WRITE_BEHIND = 2000
"""Most events an SQLite batch holds back before writing them (and their rows and messages)."""


def _piece(name: str, encoded: Any) -> str:
    """``'"name":<json>'``: one data field of the document (see :func:`_document`).

    The pieces of the few values most fields hold — ``None``, a flag, a count, an enum's
    value — are shared: every cached row keeps one piece per field, and most of a row's
    thirty-odd pieces are such values (about 1.3 KB a row of the batch cache, and no
    ``dumps``).  Keyed by type as well, since ``True == 1``; exact types only (an
    ``IntEnum`` or a ``str`` subclass is encoded each time).
    """
    kind = type(encoded)
    if encoded is None or kind is bool or kind is int or (kind is str and name in _ENUM_FIELDS):
        key = (name, kind, encoded)
        piece = _COMMON_PIECES.get(key)
        if piece is None:
            piece = f'"{name}":{dumps(encoded)}'  # data field names are identifiers: no escaping needed
            if len(_COMMON_PIECES) < _COMMON_PIECES_MAX:
                _COMMON_PIECES[key] = piece
        return piece
    return f'"{name}":{dumps(encoded)}'


_COMMON_PIECES: dict[tuple[str, type, Any], str] = {}
_COMMON_PIECES_MAX = 10_000
"""Bound on the shared pieces (large counts are rare, but nothing else bounds them)."""


def _document(entry: _Cached) -> EncodedJson:
    """The ``data`` document of ``entry`` as JSON text, the same as ``dumps(entry.data)``.

    Kept as one piece per field: a row is written after almost every command, and most
    commands change two or three of its thirty-odd data fields, so joining the pieces and
    re-encoding only the changed ones costs a third of encoding the whole document.
    """
    pieces = entry.pieces
    if pieces is None:
        pieces = entry.pieces = {name: _piece(name, value) for name, value in entry.data.items()}
    return EncodedJson("{" + ",".join(pieces.values()) + "}")


def _row_params(entry: _Cached, names: Sequence[str]) -> dict[str, Any]:
    """The values of columns ``names`` for the row ``entry`` holds (as :class:`_Plan` would set them)."""
    row = entry.row
    out: dict[str, Any] = {}
    for name in names:
        if name == "data":
            out[name] = _document(entry) if entry.ordered else entry.data
        elif name == "units_key":
            out[name] = _units_key(entry.units)
        elif name == "state":
            out[name] = _value(row.state)
        else:
            out[name] = getattr(row, name)
    return out


_RowBind = Callable[[_Cached, str, int], tuple[Any, ...]]


def _compile_row_bind(statement: Prepared) -> _RowBind:
    """``bind(entry, sid, base)``: the positional parameters of ``statement`` for the row ``entry`` holds.

    What :func:`_row_params` and then ``statement.bind`` give, in one step and without the
    dict between them (the write-behind flush binds every row a batch changed): the same
    values through the same bind processors.  ``sid`` fills ``id`` and ``w_id``, ``base``
    ``w_version``.
    """
    namespace: dict[str, Any] = {"DOC": _document, "KEY": _units_key, "VALUE": _value}
    items = []
    for i, (name, process) in enumerate(zip(statement.names, statement.processors, strict=True)):
        if name == "data":
            expr = "(DOC(e) if e.ordered else e.data)"
        elif name == "units_key":
            expr = "KEY(e.units)"
        elif name == "state":
            expr = "VALUE(r.state)"
        elif name in ("id", "w_id"):
            expr = "sid"
        elif name == "w_version":
            expr = "base"
        elif name in SUGGESTION_FIELDS:
            expr = f"r.{name}"
        else:  # pragma: no cover - the write-behind statements bind nothing else
            raise AssertionError(f"no value for parameter {name!r}")
        if process is not None:
            namespace[f"P{i}"] = process
            expr = f"P{i}({expr})"
        items.append(expr + ",")
    exec(f"def bind(e, sid, base):\n    r = e.row\n    return ({''.join(items)})", namespace)  # names from the schema
    fn: _RowBind = namespace["bind"]
    return fn


def _units_key(units: Sequence[str]) -> str:
    """The ``units_key`` column's text for these unit codes (compared to skip rewriting the link rows)."""
    return dumps_spaced(list(units))


def _value(member: Any) -> Any:
    """An enum member's value (drivers adapt ``str``, not every ``str`` subclass)."""
    return getattr(member, "value", member)


def _plain(mapping: Mapping[str, Any]) -> Any:
    return mapping if type(mapping) is dict else dict(mapping)


class SqlStore:
    """A thread-safe :class:`~jianyi_flow.storage.base.Store` over SQLAlchemy Core.

    ``url_or_engine`` is a database URL (``"sqlite:///jianyi.db"``,
    ``"postgresql+psycopg://user@host/db"``, ``"mysql+pymysql://user@host/db"``) or an
    :class:`~sqlalchemy.engine.Engine` you configured yourself (the store never disposes
    an engine it did not create).  ``engine_kwargs`` go to
    :func:`sqlalchemy.create_engine` when a URL is given.

    The tables must exist: run :func:`jianyi_flow.storage.sql.migrate.upgrade` (or ``jianyi-flow db
    upgrade URL``) when deploying, or open with :meth:`open` / ``create=True``, which run
    the migrations first.  The store never creates tables behind your back.

    ``cache_rows`` bounds the rows a :meth:`batch` keeps for its loads and commits (on
    SQLite also for the batches that follow; 5–6 KB each, see ``_CACHE_ROWS``, 100,000 by
    default): lower it where memory is tight, at the price of reading evicted rows again.

    ``clock`` says when :meth:`mark_sent` delivered a message when the relay does not pass
    ``at`` (the store's only own reading of time); by default the :class:`SystemClock`.
    Pass the clock your ``Flow`` uses so a simulated campaign records simulated times.
    """

    def __init__(
        self, url_or_engine: str | URL | Engine, *, create: bool = False, clock: Clock | None = None,
        cache_rows: int | None = None, **engine_kwargs: Any,
    ) -> None:
        if cache_rows is not None and (
            not isinstance(cache_rows, int) or isinstance(cache_rows, bool) or cache_rows < 4
        ):
            raise ValidationError(
                "cache_rows", f"must be a whole number, at least 4 (a quarter is evicted at a time), got {cache_rows!r}"
            )
        self._cache_rows = cache_rows
        if isinstance(url_or_engine, Engine):
            if engine_kwargs:
                raise ValidationError("engine_kwargs", "only apply when the store opens the engine from a URL")
            engine = url_or_engine
            self._owns_engine = False
        else:
            engine = create_engine(url_or_engine, **engine_kwargs)
            self._owns_engine = True
        self._engine = engine
        self._clock: Clock = SystemClock() if clock is None else clock
        self._closed = False
        self._backend = engine.dialect.name
        memory = self._backend == "sqlite" and is_memory_sqlite(engine.url)
        if memory and not isinstance(engine.pool, StaticPool):
            raise ValidationError(
                "engine",
                "an in-memory SQLite database exists once per connection: create the engine with "
                "poolclass=sqlalchemy.pool.StaticPool (or pass the URL and let the store do it)",
            )
        # One shared connection (in-memory SQLite) cannot run two transactions at once.
        self._mutex: contextlib.AbstractContextManager[Any] = threading.RLock() if memory else contextlib.nullcontext()
        self._writer = engine
        self._reader = engine
        self._sqlite = self._backend == "sqlite"
        self._memory = memory
        if self._backend in ("mysql", "mariadb") and not self._owns_engine:
            # engines the store creates connect at READ COMMITTED already (see .engine)
            self._writer = self._reader = engine.execution_options(isolation_level="READ COMMITTED")
        self._skip_locked: bool | None = None
        self._kept: tuple[tuple[Any, ...], dict[str, _Cached]] | None = None  # SQLite: rows the last batch left
        self._local = threading.local()  # .batch: the connection of this thread's open batch
        self._build_statements()
        if create:
            from .migrate import upgrade

            upgrade(engine)

    @classmethod
    def open(
        cls, url_or_engine: str | URL | Engine, *, migrate: bool = True, clock: Clock | None = None,
        cache_rows: int | None = None, **engine_kwargs: Any,
    ) -> SqlStore:
        """Open a store, first bringing the schema to the newest migration when ``migrate`` (the default).

        For tests, tools and single-process deployments.  Deployments where the schema
        is migrated as a release step open with ``SqlStore(url)`` instead.
        """
        return cls(url_or_engine, create=migrate, clock=clock, cache_rows=cache_rows, **engine_kwargs)

    @property
    def engine(self) -> Engine:
        """The engine the store uses (for maintenance, reports and tests)."""
        return self._engine

    def __repr__(self) -> str:
        return f"SqlStore({self._engine.url.render_as_string(hide_password=True)!r})"

    def __enter__(self) -> SqlStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- statements, built once ----------------------------------------------------------
    def _build_statements(self) -> None:
        s = suggestions
        su = suggestion_units
        ev = events
        ob = outbox
        d = self._engine.dialect
        w_id: sa.BindParameter[str] = bindparam("w_id")
        self._row_columns = [s.c[name] for name in COLUMN_FIELDS] + [s.c.data]
        self._raw_row_columns = [*self._row_columns[:-1], sa.type_coerce(s.c.data, sa.Text()).label("data")]
        # The commit's statements and load's read are Prepared: on SQLite they run straight
        # on the driver (see .prepared).  An update's SET comes from the parameter names;
        # WHERE binds are prefixed w_ so they never clash with a column.
        self._ins_row = Prepared(s.insert(), d, (*ROW_KEYS, "id", "units_key"))
        self._upd_row_same_units = Prepared(
            s.update().where(
                s.c.id == w_id, s.c.version == bindparam("w_version"), s.c.units_key == bindparam("w_units_key")
            ),
            d,
            ROW_KEYS,
        )
        self._upd_row = Prepared(
            s.update().where(s.c.id == w_id, s.c.version == bindparam("w_version")), d, (*ROW_KEYS, "units_key")
        )
        self._upd_changed: dict[tuple[str, ...], Prepared] = {}  # by the columns set: see _changed_update
        self._row_binds: dict[Prepared, _RowBind] = {}  # see _write_rows
        self._sel_version = Prepared(sa.select(s.c.version).where(s.c.id == w_id), d)
        self._sel_row = Prepared(sa.select(*self._row_columns).where(s.c.id == w_id), d)
        self._del_units = Prepared(su.delete().where(su.c.suggestion_id == w_id), d)
        self._ins_units = Prepared(su.insert(), d, _UNIT_KEYS)
        self._ins_event = Prepared(ev.insert(), d, _EVENT_KEYS)
        self._ins_outbox = Prepared(ob.insert(), d, _OUTBOX_KEYS)
        self._ins_key = Prepared(idempotency.insert(), d, _KEY_KEYS)
        self._sel_ids = sa.select(s.c.id).where(s.c.id.in_(bindparam("w_ids", expanding=True)))
        self._del_units_many = su.delete().where(su.c.suggestion_id.in_(bindparam("w_ids", expanding=True)))
        self._sel_history = sa.select(ev).where(ev.c.suggestion_id == w_id).order_by(ev.c.version)
        self._sel_events_of = (
            sa.select(ev)
            .where(ev.c.suggestion_id.in_(bindparam("w_ids", expanding=True)))
            .order_by(ev.c.suggestion_id, ev.c.version)
        )
        self._sel_key = sa.select(idempotency).where(idempotency.c.key == bindparam("w_key"))
        self._sel_keys = sa.select(idempotency.c.key).where(
            idempotency.c.key.in_(bindparam("w_keys", expanding=True))
        )
        claimable = (
            sa.select(ob.c.id, ob.c.topic, ob.c.suggestion_id, ob.c.version, ob.c.recipient, ob.c.payload,
                      ob.c.created_at, ob.c.attempts)
            .where(
                ob.c.sent_at.is_(None),
                sa.or_(ob.c.leased_until.is_(None), ob.c.leased_until <= bindparam("w_now", type_=UtcDateTime())),
            )
            .order_by(ob.c.id)
            .limit(bindparam("w_limit", type_=sa.Integer()))
        )
        self._claim_skip_locked = claimable.with_for_update(skip_locked=True)
        self._claim_locking = claimable.with_for_update()
        self._lease = (
            ob.update()
            .where(ob.c.id.in_(bindparam("w_ids", expanding=True)))
            .values(leased_until=bindparam("w_until", type_=UtcDateTime()), attempts=ob.c.attempts + 1)
        )
        self._mark_sent = (
            ob.update()
            .where(ob.c.id.in_(bindparam("w_ids", expanding=True)), ob.c.sent_at.is_(None))
            .values(sent_at=bindparam("w_at", type_=UtcDateTime()))
        )

    # --- transactions --------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the store is closed")

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Run the commits made on this thread inside one transaction (the bulk path).

        A command that fails (a stale version, a taken key) fails alone and raises from
        its :meth:`commit` as usual, while the others stay.  Reads on this thread see the
        batch's own writes.  The batch commits when the block ends and rolls back if it
        raises, so a crash loses the open batch and never leaves half a command.  While it
        is open it holds the database's write lock on SQLite: keep batches short (the
        simulator commits every couple of hundred commands).  Nested ``batch()`` blocks
        join the outer one.  The rows the batch loads and commits are kept for its later
        commands (see the module docstring).

        On PostgreSQL and MariaDB each commit is a savepoint, written at once.  On SQLite
        the batch writes behind (see :meth:`_defer`): each commit is checked when it is
        made, and written with the others before the batch's next read of the database and
        when the batch ends — so something only the database can refuse (a damaged history,
        a full disk) fails the whole batch, when it is written.
        """
        if getattr(self._local, "batch", None) is not None:
            yield
            return
        self._check_open()
        kept: tuple[tuple[Any, ...], dict[str, _Cached]] | None = None
        try:
            with self._mutex, self._writer.begin() as conn:
                cache: dict[str, _Cached] = {}
                if self._sqlite:
                    self._begin_immediate(conn)
                    cache = self._take_kept(conn)
                self._local.batch = conn
                self._local.tx = tx = Tx(conn, direct=self._sqlite)
                self._local.cache = cache
                self._local.pending = _Pending() if tx.direct is not None else None
                self._local.broken = False
                try:
                    yield
                    self._flush_pending()
                    self._check_intact()  # a failed write whose error was caught: roll back
                    if self._sqlite:
                        kept = (self._unchanged_since(conn), cache)
                finally:
                    self._local.batch = None
                    self._local.tx = None
                    self._local.cache = None
                    self._local.pending = None
                    self._local.broken = False
        except sa.exc.SQLAlchemyError as exc:
            raise self._error(exc, "write") from None
        if kept is not None:  # committed: the next batch on this connection may start from these rows
            self._kept = kept

    def _unchanged_since(self, conn: Connection) -> tuple[Any, ...]:
        """What must be the same at the next batch's start for the rows kept from this one to be current.

        The connection (a token kept in its pool record, so a new connection never looks
        like an old one), ``PRAGMA data_version`` (changes when any *other* connection,
        in any process, commits) and the connection's ``total_changes`` (changes when this
        connection writes outside a batch, e.g. a plain commit or an integrator's SQL).
        """
        dbapi_connection = conn.connection.dbapi_connection
        assert dbapi_connection is not None
        token = conn.info.get(_CONNECTION_TOKEN)
        if token is None:
            token = conn.info[_CONNECTION_TOKEN] = object()
        version = dbapi_connection.execute("PRAGMA data_version").fetchone()[0]
        return (token, version, dbapi_connection.total_changes)

    def _take_kept(self, conn: Connection) -> dict[str, _Cached]:
        """The rows the last batch kept, if nothing has written to the database since; else an empty cache.

        SQLite only: the batch now holds the database's one write lock, so what was
        current when the last batch committed and is unchanged since is current now.  The
        cache is taken, not shared: a batch on another thread starts afresh.
        """
        kept, self._kept = self._kept, None
        if kept is None:
            return {}
        try:
            same = kept[0] == self._unchanged_since(conn)
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite write failed: {type(exc).__name__}: {exc}") from None
        return kept[1] if same else {}

    def _in_savepoint(self, tx: Tx, work: Callable[[Tx], T]) -> T:
        """``work`` inside the open batch, as a savepoint rolled back alone if it fails."""
        conn = tx.conn
        try:
            if tx.direct is not None:
                tx.direct.execute("SAVEPOINT jianyi_command")
                try:
                    result = work(tx)
                except BaseException:
                    tx.direct.execute("ROLLBACK TO jianyi_command")
                    tx.direct.execute("RELEASE jianyi_command")
                    raise
                tx.direct.execute("RELEASE jianyi_command")
                return result
            with conn.begin_nested():
                return work(tx)
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite write failed: {type(exc).__name__}: {exc}") from None
        except sa.exc.SQLAlchemyError as exc:
            raise self._error(exc, "write") from None

    def _write(self, work: Callable[[Tx], T]) -> T:
        """Run ``work`` in one write transaction; retry it if the database killed it to break a deadlock."""
        self._check_open()
        batch: Tx | None = getattr(self._local, "tx", None)
        if batch is not None:
            self._check_intact()
            self._flush_pending()
            return self._in_savepoint(batch, work)
        for attempt in range(1, _RETRIES + 1):
            try:
                with self._mutex, self._writer.begin() as conn:
                    if self._sqlite:
                        self._begin_immediate(conn)
                    return work(Tx(conn, direct=self._sqlite))
            except sa.exc.DBAPIError as exc:
                if attempt < _RETRIES and _transient(exc):
                    continue
                raise self._error(exc, "write") from None
            except sa.exc.SQLAlchemyError as exc:
                raise self._error(exc, "write") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _begin_immediate(self, conn: Connection) -> None:
        """Take SQLite's write lock now (waiting up to the busy timeout), not at the first write.

        Sent straight to the driver: SQLAlchemy's own ``BEGIN`` is a no-op on pysqlite,
        and an engine event listener would slow every statement of every transaction.
        """
        dbapi_connection = conn.connection.dbapi_connection
        assert dbapi_connection is not None
        try:
            if not pragmas_done(conn.info):  # an engine passed in: no connect listener set them
                prepare_sqlite_connection(dbapi_connection, self._memory)
                mark_pragmas_done(conn.info)
            dbapi_connection.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite write failed: {type(exc).__name__}: {exc}") from None

    def _read(self, work: Callable[[Connection], T]) -> T:
        self._check_open()
        batch = getattr(self._local, "batch", None)
        try:
            if batch is not None:
                self._check_intact()
                self._flush_pending()  # the batch's reads see its writes
                return work(batch)
            with self._mutex, self._reader.connect() as conn:
                return work(conn)
        except sa.exc.SQLAlchemyError as exc:
            raise self._error(exc, "read") from None
        except JianyiFlowError:
            raise
        except (ValueError, TypeError, KeyError) as exc:  # a stored value edited into something unreadable
            raise _undecodable(exc) from None

    def _error(self, exc: sa.exc.SQLAlchemyError, what: str) -> JianyiFlowError:
        """The library error for a SQLAlchemy one (its SQL and parameters are left out: they hold personal data)."""
        if isinstance(exc, sa.exc.StatementError) and isinstance(exc.orig, JianyiFlowError):
            return exc.orig  # raised by a column type, e.g. a value json cannot write
        if isinstance(exc, sa.exc.StatementError) and isinstance(exc.orig, (TypeError, ValueError)) \
                and not isinstance(exc, sa.exc.DBAPIError):
            return ValidationError("change", f"a value cannot be stored: {exc.orig}")
        detail = str(exc.orig) if isinstance(exc, sa.exc.StatementError) and exc.orig is not None else str(exc)
        detail = detail.strip().splitlines()[0] if detail.strip() else type(exc).__name__
        hint = ""
        if _missing_table(exc):
            hint = " (the jianyi_flow tables are missing: run jianyi_flow.sql.upgrade(url) or `jianyi-flow db upgrade`)"
        if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
            hint = " (the connection was lost)"
        return StoreError(f"{self._backend} {what} failed: {type(exc).__name__}: {detail}{hint}")

    # --- writing -------------------------------------------------------------------------
    def commit(self, change: Change) -> None:
        """Write the row, the event, the messages and the key in one transaction (see the module docstring)."""
        cache: dict[str, _Cached] | None = getattr(self._local, "cache", None)
        if cache is None:
            plan = _Plan(change)
            self._commit_plans(lambda conn: self._apply(conn, plan))
            return
        pending: _Pending | None = getattr(self._local, "pending", None)
        if pending is not None:
            if change.idempotency_key is None:
                self._defer(change, cache, pending)
                return
            self._flush_pending()  # a key is checked by the database: write what is pending, then this
        self._commit_at_once(change, cache)

    def _commit_at_once(self, change: Change, cache: dict[str, _Cached]) -> None:
        """Commit ``change`` inside the open batch now, as a savepoint (nothing may be pending).

        It starts from the row as this batch last saw it (see _Plan) and keeps the new row
        for the next load.  Whatever fails, the entry goes: the savepoint is rolled back,
        and a conflict means the cached row was stale.
        """
        sid = change.suggestion.id
        try:
            plan = _Plan(change, cache.get(sid))
            self._commit_plans(lambda conn: self._apply(conn, plan))
        except BaseException:
            cache.pop(sid, None)
            raise
        if plan.cached is None:
            cache.pop(sid, None)
        else:
            self._remember(cache, plan.cached)

    def commit_many(self, changes: Iterable[Change]) -> None:
        """Commit several changes in one transaction, all or none (the bulk path for imports and simulations).

        Changes apply in order, so one batch may create a suggestion and then move it
        on.  If any change fails, nothing of the batch is written and the error of a
        failing change is raised.  Inserts are sent as multi-row statements, which is
        much faster than one :meth:`commit` per change.
        """
        plans = [_Plan(c) for c in changes]
        if not plans:
            return
        self._flush_pending()
        cache: dict[str, _Cached] | None = getattr(self._local, "cache", None)
        if cache is not None:
            for p in plans:
                cache.pop(p.sid, None)
        created: set[str] = set()
        keys: set[str] = set()
        for p in plans:
            if p.expected == 0:
                if p.sid in created:
                    raise DuplicateSuggestion(p.sid)
                created.add(p.sid)
            if p.key is not None:
                if p.key["key"] in keys:
                    raise IdempotencyKeyReused(p.key["key"], f"an earlier change in the same batch ({p.sid})")
                keys.add(p.key["key"])
        self._commit_plans(lambda conn: self._apply_many(conn, plans))

    def _defer(self, change: Change, cache: dict[str, _Cached], pending: _Pending) -> None:
        """Commit ``change`` inside an SQLite batch by writing it later, with the batch's other writes.

        Write-behind: the batch holds SQLite's only write lock, and its cache holds every
        row it has committed (see the module docstring), so the checks a write would make
        are made here, against the cache, and raise here: a stale version is a
        :class:`ConcurrencyConflict`, a taken id a :class:`DuplicateSuggestion`, an unknown
        one :class:`NotFound`, a value JSON cannot write a :class:`ValidationError` — and a
        command that fails leaves nothing behind, as a rolled-back savepoint would.  The
        row, its event and its messages are written by :meth:`_flush_pending`: before any
        read of the batch that is not a cached row, and when the batch ends, as a few
        ``executemany`` statements (a row changed several times is written once, with every
        column any of its commands changed).  Only what the database alone can know —
        a history that already holds the event (a damaged database), a full disk — is
        found then; it fails the whole batch: every later call in the batch raises, and so
        does its end, so a half-written batch never commits even if that error is caught.
        A change with an idempotency key, a value the database would hand back as another
        type, or a value the database may refuse (an empty required column, a type the
        driver cannot bind) is written at once instead, so that it fails alone.
        """
        self._check_open()
        self._check_intact()
        tx: Tx = self._local.tx
        s = change.suggestion
        sid = s.id
        expected = change.expected_version
        prev = cache.get(sid)
        exists = prev is not None or sid in pending.rows
        try:
            if prev is None and expected > 0:
                row = tx.first(self._sel_row, {"w_id": sid})
                if row is not None:
                    prev = self._remember(cache, _cached(row))
                    exists = True
            elif not exists:
                exists = tx.first(self._sel_version, {"w_id": sid}) is not None
        except sa.exc.SQLAlchemyError as exc:
            raise self._error(exc, "write") from None
        plan = _Plan(change, prev, fresh=True)  # validates first, as a commit outside a batch does
        if expected == 0 and exists:
            raise DuplicateSuggestion(sid)
        if expected > 0:
            if prev is None:
                raise NotFound("suggestion", sid)
            if prev.row.version != expected:
                raise ConcurrencyConflict(sid, expected, prev.row.version)
        if plan.cached is None or not _storable(plan):
            # the stored row must be read back, or the database may refuse a value: write now,
            # so that what it refuses fails this command alone, from this commit
            self._flush_pending()
            self._commit_at_once(change, cache)
            return
        event = plan.event
        event["changes"] = EncodedJson(dumps(event["changes"]))  # refused now, not when the batch ends
        event["payload"] = EncodedJson(dumps(event["payload"]))
        for m in plan.messages:
            m["payload"] = EncodedJson(dumps(m["payload"]))
        dirty = pending.rows.get(sid)
        if dirty is None:
            dirty = pending.rows[sid] = _Dirty(expected)
        if not dirty.insert and plan.set_keys is not None:
            dirty.columns.update(plan.set_keys)
        if plan.units_changed:
            dirty.units = True
        pending.events.append(event)
        pending.messages.extend(plan.messages)
        self._remember(cache, plan.cached)
        if len(pending.events) >= _WRITE_BEHIND:
            self._flush_pending()

    def _flush_pending(self) -> None:
        """Write what the open SQLite batch has committed but not yet written (see :meth:`_defer`)."""
        pending: _Pending | None = getattr(self._local, "pending", None)
        if pending is None or not (pending.rows or pending.events):
            return
        self._check_intact()
        tx: Tx = self._local.tx
        cache: dict[str, _Cached] = self._local.cache
        self._local.pending = _Pending()
        try:
            self._write_pending(tx, cache, pending)
        except BaseException:
            # Part of it may be written: the batch can only be rolled back.  Every later call in
            # it raises, and so does its end (even if this error is caught), so it never commits.
            self._local.broken = True
            cache.clear()
            raise

    def _check_intact(self) -> None:
        if getattr(self._local, "broken", False):
            raise StoreError("an earlier write of this batch failed: the batch can only be rolled back")

    def _write_pending(self, tx: Tx, cache: dict[str, _Cached], pending: _Pending) -> None:
        inserts: list[tuple[_Cached, str, int]] = []
        updates: dict[tuple[str, ...], list[tuple[_Cached, str, int]]] = {}
        relink: list[str] = []
        links: list[dict[str, Any]] = []
        for sid, dirty in pending.rows.items():
            entry = cache[sid]
            if dirty.insert:
                inserts.append((entry, sid, 0))
            else:
                columns = tuple(sorted(dirty.columns))
                if not columns:
                    continue
                group = updates.get(columns)
                if group is None:
                    group = updates[columns] = []
                group.append((entry, sid, dirty.base))
                if not dirty.units:
                    continue
                relink.append(sid)
            links.extend({"suggestion_id": sid, "unit": u} for u in entry.units)
        try:
            if inserts:
                try:
                    self._write_rows(tx, self._ins_row, inserts, _INSERT_KEYS)
                except sa.exc.IntegrityError as exc:
                    raise StoreError(f"a suggestion the batch created already exists ({type(exc.orig).__name__})") \
                        from None
            for columns, rows in updates.items():
                if self._write_rows(tx, self._changed_update(columns), rows, columns) != len(rows):
                    raise StoreError("a row the batch holds was changed under it: the batch is rolled back")
            for chunk in _chunks(relink):
                tx.conn.execute(self._del_units_many, {"w_ids": chunk})
            tx.executemany(self._ins_units, links)
            self._insert_events(tx, pending.events)
            tx.executemany(self._ins_outbox, pending.messages)
        except sa.exc.SQLAlchemyError as exc:
            raise self._error(exc, "write") from None

    def _write_rows(self, tx: Tx, statement: Prepared, rows: Sequence[tuple[_Cached, str, int]],
                    names: Sequence[str]) -> int:
        """Write the rows the cache holds (``(entry, id, base version)``) with ``statement``; how many it changed.

        Straight from the cached rows to the driver's parameter tuples where the statement
        is prepared for the driver (see :func:`_compile_row_bind`), else through Core with
        the same values as dicts.
        """
        if statement.sql is not None and tx.direct is not None:
            bind = self._row_binds.get(statement)
            if bind is None:
                bind = self._row_binds[statement] = _compile_row_bind(statement)
            return tx.executemany_bound(statement, [bind(entry, sid, base) for entry, sid, base in rows])
        params = []
        for entry, sid, base in rows:
            p = _row_params(entry, names)
            if base:
                p["w_id"] = sid
                p["w_version"] = base
            else:
                p["id"] = sid
            params.append(p)
        return tx.executemany_counted(statement, params)

    def _commit_plans(self, work: Callable[[Tx], None]) -> None:
        """Run a commit; explain a constraint violation once the transaction is rolled back.

        On PostgreSQL a failed statement aborts the transaction, so which id or key was
        already taken is looked up afterwards, in a read of its own.
        """
        try:
            self._write(work)
        except _RowExists as failed:
            existing = self._existing(self._sel_ids, "w_ids", failed.ids)
            if existing:
                raise DuplicateSuggestion(existing[0]) from None
            raise self._error(failed.error, "write") from None
        except _KeyTaken as failed:
            for key in self._existing(self._sel_keys, "w_keys", failed.keys):
                record = self.idempotency(key)
                if record is not None:
                    raise IdempotencyKeyReused(
                        key, f"{record.command} on suggestion {record.suggestion_id} (version {record.version})"
                    ) from None
            raise self._error(failed.error, "write") from None

    def _apply(self, tx: Tx, p: _Plan) -> None:
        if p.expected == 0:
            self._insert_rows(tx, [p])
            tx.executemany(self._ins_units, p.units)
        elif self._update_changed(tx, p) if p.set_keys is not None else self._update_row(tx, p):
            tx.execute(self._del_units, {"w_id": p.sid})
            tx.executemany(self._ins_units, p.units)
        self._insert_events(tx, [p.event])
        tx.executemany(self._ins_outbox, p.messages)
        if p.key is not None:
            self._insert_keys(tx, [p.key])

    def _apply_many(self, tx: Tx, plans: Sequence[_Plan]) -> None:
        pending: list[_Plan] = []
        created: set[str] = set()
        relink: set[str] = set()
        final_units: dict[str, list[dict[str, Any]]] = {}
        for p in plans:
            if p.expected == 0:
                pending.append(p)
                created.add(p.sid)
            else:
                if pending:  # the row may be one of them: insert before updating
                    self._insert_rows(tx, pending)
                    pending = []
                if self._update_row(tx, p) and p.sid not in created:
                    relink.add(p.sid)
            final_units[p.sid] = p.units
        if pending:
            self._insert_rows(tx, pending)
        for chunk in _chunks(sorted(relink)):
            tx.conn.execute(self._del_units_many, {"w_ids": chunk})
        tx.executemany(self._ins_units, [row for sid in (created | relink) for row in final_units[sid]])
        self._insert_events(tx, [p.event for p in plans])
        tx.executemany(self._ins_outbox, [m for p in plans for m in p.messages])
        keys = [p.key for p in plans if p.key is not None]
        if keys:
            self._insert_keys(tx, keys)

    def _insert_rows(self, tx: Tx, plans: Sequence[_Plan]) -> None:
        try:
            tx.executemany(self._ins_row, [{**p.row, "id": p.sid, "units_key": p.units_key} for p in plans])
        except sa.exc.IntegrityError as exc:
            raise _RowExists([p.sid for p in plans], exc) from None

    def _update_row(self, tx: Tx, p: _Plan) -> bool:
        """Apply the optimistic update; whether the units changed (their link rows need rewriting).

        Most commands leave the units alone, so the first try also requires the stored
        ``units_key`` to be unchanged and, if it matches, skips the link rows entirely.
        The event's ``changes`` only pick which try comes first: a wrong hint costs a
        statement, never a wrong result.
        """
        where = {"w_id": p.sid, "w_version": p.expected}
        if not p.units_hinted:
            if tx.execute(self._upd_row_same_units, {**p.row, **where, "w_units_key": p.units_key}) == 1:
                return False
        if tx.execute(self._upd_row, {**p.row, "units_key": p.units_key, **where}) == 1:
            return True
        self._explain_missed_update(tx, p)
        raise AssertionError("unreachable")  # pragma: no cover

    def _update_changed(self, tx: Tx, p: _Plan) -> bool:
        """Apply a partial plan's optimistic update (only the columns that changed); whether the units changed."""
        assert p.set_keys is not None
        if tx.execute(self._changed_update(p.set_keys), p.row) == 1:
            return p.units_changed
        self._explain_missed_update(tx, p)
        raise AssertionError("unreachable")  # pragma: no cover

    def _changed_update(self, keys: tuple[str, ...]) -> Prepared:
        """``UPDATE … SET <keys> WHERE id = :w_id AND version = :w_version``, built once per set of columns.

        Setting only what changed is what makes an update cheap: SQLite (and PostgreSQL's
        HOT updates) leave alone every index whose columns are not set, where setting all
        of them rewrites the entries of all three (``due_at`` is in each).  Commands set a handful of column sets
        (at most one per subset of the 13 columns), so the statements are kept.
        """
        statement = self._upd_changed.get(keys)
        if statement is None:
            s = suggestions
            core = s.update().where(s.c.id == bindparam("w_id"), s.c.version == bindparam("w_version"))
            statement = self._upd_changed[keys] = Prepared(core, self._engine.dialect, keys)
        return statement

    def _explain_missed_update(self, tx: Tx, p: _Plan) -> None:
        """Raise why ``UPDATE … WHERE version = :expected`` matched no row."""
        found = tx.first(self._sel_version, {"w_id": p.sid})
        if found is None:
            raise NotFound("suggestion", p.sid)
        raise ConcurrencyConflict(p.sid, p.expected, found[0])

    def _insert_events(self, tx: Tx, rows: list[dict[str, Any]]) -> None:
        try:
            tx.executemany(self._ins_event, rows)
        except sa.exc.IntegrityError as exc:
            versions = ", ".join(f"{r['suggestion_id']} v{r['version']}" for r in rows[:5])
            raise StoreError(
                f"an event already exists for {versions}: the stored row and its history disagree "
                f"({type(exc.orig).__name__})"
            ) from None

    def _insert_keys(self, tx: Tx, rows: list[dict[str, Any]]) -> None:
        try:
            tx.executemany(self._ins_key, rows)
        except sa.exc.IntegrityError as exc:
            raise _KeyTaken([r["key"] for r in rows], exc) from None

    def _existing(self, stmt: sa.Select[Any], name: str, values: Sequence[str]) -> list[str]:
        """Which of ``values`` the ``stmt`` (``… WHERE x IN :name``) finds, in their order."""

        def work(conn: Connection) -> set[str]:
            return {v for chunk in _chunks(values) for v in conn.execute(stmt, {name: chunk}).scalars()}

        found = self._read(work)
        return [v for v in values if v in found]

    # --- reading -------------------------------------------------------------------------
    def load(self, suggestion_id: str) -> Suggestion:
        cache: dict[str, _Cached] | None = getattr(self._local, "cache", None)
        if cache is None:
            row = self._read(lambda conn: Tx(conn, direct=self._sqlite).first(self._sel_row, {"w_id": suggestion_id}))
            if row is None:
                raise NotFound("suggestion", suggestion_id)
            return _suggestion(row)
        self._check_open()
        self._check_intact()
        if self._sqlite:
            # The batch holds SQLite's write lock: no one else can have changed a row it saw.
            hit = cache.pop(suggestion_id, None)
            if hit is not None:
                cache[suggestion_id] = hit  # now the most recently used
                return hit.row
        try:
            row = self._local.tx.first(self._sel_row, {"w_id": suggestion_id})
        except sa.exc.SQLAlchemyError as exc:
            raise self._error(exc, "read") from None
        if row is None:
            raise NotFound("suggestion", suggestion_id)
        return self._remember(cache, _cached(row)).row

    def _remember(self, cache: dict[str, _Cached], entry: _Cached) -> _Cached:
        """Keep ``entry`` in the open batch's cache as its most recent row.

        Past ``cache_rows`` rows the least recently used quarter (at least one row) goes,
        and as many more as the cache is over its bound (rows not yet written are never
        evicted, so a write-behind batch can hold more for a while); a dict keeps insertion
        order, and a row used again is re-inserted at the end.
        """
        sid = entry.row.id
        limit = self._cache_limit()
        if cache.pop(sid, None) is None and len(cache) >= limit:
            pending: _Pending | None = getattr(self._local, "pending", None)
            dirty = pending.rows if pending is not None else {}
            excess = len(cache) - limit + max(limit // 4, 1)
            # a row not yet written stays (it is the only copy): look past at most all of them
            for old in list(itertools.islice(cache, excess + len(dirty))):
                if excess <= 0:
                    break
                if old not in dirty:
                    del cache[old]
                    excess -= 1
        cache[sid] = entry
        return entry

    def _cache_limit(self) -> int:
        """The store's ``cache_rows``, else the module's default (read each time: tests patch it)."""
        return _CACHE_ROWS if self._cache_rows is None else self._cache_rows

    def history(self, suggestion_id: str) -> list[Event]:
        rows = self._read(lambda conn: conn.execute(self._sel_history, {"w_id": suggestion_id}).all())
        return [_event(r) for r in rows]

    def query(self, query: Query) -> list[Suggestion]:
        """The rows ``query`` finds; inside a batch, a row the batch holds at the same version is not decoded again.

        The ``data`` document comes back as text and is parsed only for the rows the
        batch does not hold: ``Flow.tick`` asks every day for all open rows past due, most
        of them already flagged and unchanged since the day before.  A row is the same
        at the same version (versions are never reused), on every backend.
        """
        stmt = self._query_select(query, self._raw_row_columns)
        rows = self._read(lambda conn: conn.execute(stmt).all())
        cache: dict[str, _Cached] | None = getattr(self._local, "cache", None)
        keep = cache is not None and len(rows) <= self._cache_limit() // 4
        out: list[Suggestion] = []
        for r in rows:
            if cache is not None:
                hit = cache.get(r[0])
                if hit is not None and hit.row.version == r[_VERSION_INDEX]:
                    out.append(self._remember(cache, hit).row if keep else hit.row)
                    continue
            try:
                text = r[_DATA_INDEX]
                full = (*r[:_DATA_INDEX], None if text is None else json.loads(text))
            except (ValueError, TypeError) as exc:
                raise _undecodable(exc) from None
            # in a batch, a command on each row found usually follows (tick): keep them for its load
            out.append(self._remember(cache, _cached(full)).row if keep and cache is not None else _suggestion(full))
        return out

    def query_statement(self, query: Query) -> sa.Select[Any]:
        """The ``SELECT`` :meth:`query` runs for ``query`` (to inspect its plan, or to reuse in a report).

        Its last column is the ``data`` document, parsed (``query`` itself reads it as text).
        """
        return self._query_select(query, self._row_columns)

    def _query_select(self, query: Query, columns: Sequence[Any]) -> sa.Select[Any]:
        s = suggestions
        stmt = sa.select(*columns)
        if query.states is not None:
            stmt = stmt.where(s.c.state.in_(sorted(_value(state) for state in query.states)))
        if query.unit is not None:
            units = sa.select(suggestion_units.c.suggestion_id).where(suggestion_units.c.unit == query.unit)
            stmt = stmt.where(s.c.id.in_(units))
        if query.area is not None:
            stmt = stmt.where(s.c.area == query.area)
        if query.topic is not None:
            stmt = stmt.where(s.c.topic == query.topic)
        if query.campaign is not None:
            stmt = stmt.where(s.c.campaign == query.campaign)
        if query.by_due:
            stmt = stmt.where(s.c.due_at.is_not(None))
            if query.due_before is not None:
                stmt = stmt.where(s.c.due_at < to_utc(query.due_before, "due_before"))
            if query.due_after is not None:
                stmt = stmt.where(s.c.due_at >= to_utc(query.due_after, "due_after"))
            stmt = stmt.order_by(s.c.due_at, s.c.id)
        else:
            stmt = stmt.order_by(s.c.id)
        if query.overdue_unflagged:
            # the negation of "flagged for its current due time", NULLs included (as ``store.matches``)
            flagged = s.c.overdue_flagged_at
            stmt = stmt.where(sa.or_(flagged.is_(None), s.c.due_at.is_(None), flagged != s.c.due_at))
        if query.after_id is not None:
            stmt = stmt.where(s.c.id > query.after_id)
        if query.limit is not None:
            stmt = stmt.limit(max(query.limit, 0))
        return stmt

    def idempotency(self, key: str) -> IdempotencyRecord | None:
        row = self._read(lambda conn: conn.execute(self._sel_key, {"w_key": key}).first())
        if row is None:
            return None
        return IdempotencyRecord(row.key, row.suggestion_id, row.version, row.command)

    # --- outbox --------------------------------------------------------------------------
    def claim(self, limit: int, now: dt.datetime, lease: dt.timedelta) -> list[OutboxMessage]:
        """Lease up to ``limit`` unsent messages, oldest first.

        PostgreSQL and MariaDB ≥ 10.6 select with ``FOR UPDATE SKIP LOCKED``, so two
        relays claiming at once get different messages without waiting for each other;
        SQLite's single writer makes claims take turns.
        """
        now = to_utc(now, "now")
        if limit <= 0:
            return []
        until = now + lease

        def work(tx: Tx) -> list[OutboxMessage]:
            conn = tx.conn
            stmt = self._claim_skip_locked if self._supports_skip_locked(conn) else self._claim_locking
            rows = conn.execute(stmt, {"w_now": now, "w_limit": limit}).all()
            if not rows:
                return []
            conn.execute(self._lease, {"w_ids": [r.id for r in rows], "w_until": until})
            return [
                OutboxMessage(
                    topic=r.topic,
                    suggestion_id=r.suggestion_id,
                    version=r.version,
                    recipient=r.recipient,
                    created_at=r.created_at,
                    payload=r.payload,
                    id=r.id,
                    attempts=r.attempts + 1,
                )
                for r in rows
            ]

        return self._write(work)

    def mark_sent(self, ids: Iterable[int], *, at: dt.datetime | None = None) -> None:
        """Mark messages delivered; unknown or already sent ids are ignored.

        ``at`` is recorded as ``sent_at``; by default the time of the store's ``clock``
        (see :class:`SqlStore`).  Only operators read it: no rule depends on it.
        """
        when = None if at is None else to_utc(at, "at")  # refused even when there is nothing to mark
        todo = sorted(set(ids))
        if not todo:
            return
        if when is None:
            when = to_utc(self._clock.now(), "clock.now()")

        def work(tx: Tx) -> None:
            for chunk in _chunks(todo):
                tx.conn.execute(self._mark_sent, {"w_ids": chunk, "w_at": when})

        self._write(work)

    def _supports_skip_locked(self, conn: Connection) -> bool:
        if self._skip_locked is None:
            dialect = conn.dialect
            version = dialect.server_version_info or ()
            if self._backend in ("mysql", "mariadb"):
                is_maria = bool(getattr(dialect, "is_mariadb", False))
                self._skip_locked = version >= ((10, 6) if is_maria else (8, 0, 1))
            else:
                self._skip_locked = self._backend == "postgresql"
        return self._skip_locked

    def close(self) -> None:
        """Release the connections (of an engine the store created); later calls raise :class:`StoreError`."""
        if self._closed:
            return
        self._closed = True
        self._kept = None
        if self._owns_engine:
            self._engine.dispose()

    # --- maintenance ---------------------------------------------------------------------
    def outbox_pending(self) -> int:
        """How many messages are not yet marked sent (for monitoring the relay)."""
        stmt = sa.select(sa.func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
        return int(self._read(lambda conn: conn.execute(stmt).scalar_one()))

    def export_events(self, after_id: str | None, limit: int) -> list[Event]:
        """The events of the next ``limit`` suggestions with ids after ``after_id``, by id then version.

        The bulk path of :func:`jianyi_flow.storage.base.iter_events`: two queries per page instead
        of one history read per suggestion.
        """
        ids_stmt = sa.select(suggestions.c.id).order_by(suggestions.c.id).limit(max(limit, 0))
        if after_id is not None:
            ids_stmt = ids_stmt.where(suggestions.c.id > after_id)

        def work(conn: Connection) -> list[Row[Any]]:
            ids = list(conn.execute(ids_stmt).scalars())
            if not ids:
                return []
            return list(conn.execute(self._sel_events_of, {"w_ids": ids}).all())

        return [_event(r) for r in self._read(work)]

    def suggestion_ids(self, after_id: str | None, limit: int) -> list[str]:
        """The next ``limit`` suggestion ids after ``after_id``, in order, without decoding any row.

        Audits (:meth:`jianyi_flow.Flow.verify_all`) page with it, so one row edited into
        something unreadable is reported while every other suggestion is still checked.
        """
        stmt = sa.select(suggestions.c.id).order_by(suggestions.c.id).limit(max(limit, 0))
        if after_id is not None:
            stmt = stmt.where(suggestions.c.id > after_id)
        return list(self._read(lambda conn: list(conn.execute(stmt).scalars())))


# --- row decoding ------------------------------------------------------------------------
def _undecodable(exc: BaseException) -> StoreError:
    """The library's error for a stored value that cannot be turned back into a row or an event."""
    return StoreError(f"a stored value cannot be decoded: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")


def _suggestion(row: Sequence[Any]) -> Suggestion:
    """A suggestion from its row, columns in ``COLUMN_FIELDS`` order then ``data`` (a Row or a plain tuple)."""
    try:
        try:
            return _decode_row(row, row[_DATA_INDEX])
        except KeyError:  # a data field is missing: its default applies (or the constructor says what is missing)
            return _suggestion_slowly(row)
    except (ValueError, TypeError, KeyError) as exc:
        raise _undecodable(exc) from None


def _suggestion_slowly(row: Sequence[Any]) -> Suggestion:
    data: Mapping[str, Any] = row[_DATA_INDEX]
    fields = {name: decode_value(name, data[name]) for name in DATA_FIELDS if name in data}
    fields.update(zip(COLUMN_FIELDS, row, strict=False))
    fields["state"] = State(fields["state"])
    return Suggestion(**fields)


def _cached(row: Sequence[Any]) -> _Cached:
    s = _suggestion(row)
    data = row[_DATA_INDEX]
    return _Cached(s, data, s.units(), type(data) is dict and list(data) == _DATA_LIST)


_DATA_LIST = list(DATA_FIELDS)


_DATA_INDEX = len(COLUMN_FIELDS)
_VERSION_INDEX = COLUMN_FIELDS.index("version")


def _compile_decoder() -> Callable[[Sequence[Any], Mapping[str, Any]], Suggestion]:
    """Generate ``_suggestion``'s body once: one line per field, no loop, no ``**`` call.

    ``Suggestion`` has no validators, converters or post-init (``model.replace`` relies on
    this too), so setting its slots gives the object its constructor would.  A data field
    that ``decode_value`` hands back unchanged is copied as is; ``None`` is ``None`` for
    every field; datetimes are decoded through a small memo (deadlines repeat); the
    others go through ``decode_value``.  A missing data field raises ``KeyError`` (the
    caller then takes the slow path, where defaults apply).
    """
    probe = object()
    lines = ["def decode(row, d):", "    new = _new(Suggestion)"]
    for i, name in enumerate(COLUMN_FIELDS):
        value = f"State(row[{i}])" if name == "state" else f"row[{i}]"
        lines.append(f"    _set(new, {name!r}, {value})")
    namespace: dict[str, Any] = {
        "_new": object.__new__,
        "_set": object.__setattr__,
        "_decode": decode_value,
        "_memo": _decode_memo,
        "Suggestion": Suggestion,
        "State": State,
    }
    for name in DATA_FIELDS:
        try:
            plain = decode_value(name, probe) is probe
        except Exception:  # any complaint about the probe means the field is decoded
            plain = False
        try:
            dated = isinstance(decode_value(name, "2024-01-01T00:00:00+00:00"), dt.datetime)
        except Exception:  # not a datetime field
            dated = False
        lines.append(f"    v = d[{name!r}]")
        if plain:
            lines.append(f"    _set(new, {name!r}, v)")
        elif dated:
            namespace[f"M_{name}"] = {}
            lines.append(f"    _set(new, {name!r}, None if v is None else _memo(M_{name}, {name!r}, v))")
        else:
            lines.append(f"    _set(new, {name!r}, None if v is None else _decode({name!r}, v))")
    lines.append("    return new")
    exec("\n".join(lines), namespace)
    fn: Callable[[Sequence[Any], Mapping[str, Any]], Suggestion] = namespace["decode"]
    return fn


def _decode_memo(memo: dict[Any, Any], name: str, value: Any) -> Any:
    """``decode_value(name, value)`` for a field whose values repeat (emptied past 4096 entries)."""
    try:
        return memo[value]
    except (KeyError, TypeError):
        pass
    decoded = decode_value(name, value)
    if len(memo) > 4096:
        memo.clear()
    with contextlib.suppress(TypeError):  # not hashable: a value written by hand
        memo[value] = decoded
    return decoded


_decode_row = _compile_decoder()


def _event(row: Row[Any]) -> Event:
    try:
        return _decode_event(row)
    except (ValueError, TypeError, KeyError) as exc:
        raise _undecodable(exc) from None


def _decode_event(row: Row[Any]) -> Event:
    return Event(
        suggestion_id=row.suggestion_id,
        version=row.version,
        kind=row.kind,
        from_state=None if row.from_state is None else State(row.from_state),
        to_state=State(row.to_state),
        actor=Actor(id=row.actor_id, role=Role(row.actor_role), unit=row.actor_unit, name=row.actor_name),
        at=row.at,
        reason=row.reason,
        changes=row.changes,
        payload=row.payload,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


# --- backend specifics -------------------------------------------------------------------
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01"})  # serialization failure, deadlock detected
_MYSQL_DEADLOCK = 1213


def _transient(exc: sa.exc.DBAPIError) -> bool:
    """Whether the database killed the transaction to resolve a conflict (so a retry can succeed)."""
    orig = exc.orig
    if getattr(orig, "sqlstate", None) in _TRANSIENT_SQLSTATES:
        return True
    args: tuple[Any, ...] = getattr(orig, "args", ())
    return bool(args) and args[0] == _MYSQL_DEADLOCK


def _missing_table(exc: sa.exc.SQLAlchemyError) -> bool:
    orig = getattr(exc, "orig", None)
    text = str(orig or exc).lower()
    if getattr(orig, "sqlstate", None) == "42P01":  # undefined_table
        return True
    args: tuple[Any, ...] = getattr(orig, "args", ())
    if args and args[0] == 1146:  # MariaDB: table doesn't exist
        return True
    return "no such table" in text
