"""``SqlStore``: the :class:`~jianyi_flow.store.Store` on SQLite, PostgreSQL and MariaDB.

One command is one transaction.  :meth:`SqlStore.commit` writes the suggestion row, its
event, its outbox messages and its idempotency key together; if any statement fails the
transaction is rolled back and the caller gets one of the library's errors — never a
SQLAlchemy or driver exception.

Concurrency control is optimistic, as in :class:`~jianyi_flow.memory.MemoryStore`: an
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
run straight on the driver, compiled once (see :mod:`jianyi_flow.sql.prepared`): a
command then costs less than raw Core doing the same writes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import attrs
import sqlalchemy as sa
from sqlalchemy import bindparam
from sqlalchemy.engine import URL, Connection, Engine, Row
from sqlalchemy.pool import StaticPool

from ..errors import (
    ConcurrencyConflict,
    DuplicateSuggestion,
    IdempotencyKeyReused,
    JianyiFlowError,
    NotFound,
    StoreError,
    ValidationError,
)
from ..model import SUGGESTION_FIELDS, Actor, Event, Role, State, Suggestion, decode_value, encode_value
from ..store import Change, IdempotencyRecord, OutboxMessage, Query
from .engine import create_engine, is_memory_sqlite, mark_pragmas_done, pragmas_done, prepare_sqlite_connection
from .prepared import Prepared, Tx
from .schema import events, idempotency, outbox, suggestion_units, suggestions
from .types import UtcDateTime, to_utc

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

_DATETIME_FIELDS: tuple[str, ...] = tuple(a.name for a in attrs.fields(Suggestion) if "datetime" in str(a.type))
_UNIT_FIELDS = frozenset({"lead_unit", "co_units", "recommending_unit"})
_RETRIES = 3
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


class _Plan:
    """One Change turned into statement parameters (pure Python, before any I/O)."""

    __slots__ = ("event", "expected", "key", "messages", "row", "sid", "units", "units_hinted", "units_key")

    def __init__(self, change: Change) -> None:
        s = change.suggestion
        e = change.event
        if e.suggestion_id != s.id or e.version != s.version or s.version != change.expected_version + 1:
            raise ValidationError("change", "row, event and expected version must agree")
        for name in _DATETIME_FIELDS:
            value = getattr(s, name)
            if value is not None:
                to_utc(value, name)
        to_utc(e.at, "event.at")
        units = s.units()
        self.sid = s.id
        self.expected = change.expected_version
        self.units = [{"suggestion_id": s.id, "unit": u} for u in units]
        self.units_key = json.dumps(list(units), ensure_ascii=False)
        self.units_hinted = change.expected_version == 0 or not _UNIT_FIELDS.isdisjoint(e.changes)
        # every column but id and units_key: the SET of an update, plus those two for an insert
        self.row: dict[str, Any] = {
            "campaign": s.campaign,
            "state": _value(s.state),
            "version": s.version,
            "area": s.area,
            "topic": s.topic,
            "lead_unit": s.lead_unit,
            "recommending_unit": s.recommending_unit,
            "registration_number": s.registration_number,
            "due_at": s.due_at,
            "received_at": s.received_at,
            "updated_at": s.updated_at,
            "data": {name: _encode(name, getattr(s, name)) for name in DATA_FIELDS},
        }
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
            self.messages.append(
                {
                    "topic": m.topic,
                    "suggestion_id": m.suggestion_id,
                    "version": m.version,
                    "recipient": m.recipient,
                    "payload": _plain(m.payload),
                    "created_at": to_utc(m.created_at, "message.created_at"),
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


def _chunks(values: Sequence[V]) -> Iterator[list[V]]:
    for i in range(0, len(values), _CHUNK):
        yield list(values[i : i + _CHUNK])


def _encode(name: str, value: Any) -> Any:
    """``encode_value``, except datetimes, converted here rather than through its memo table.

    ``model.encode_datetime`` memoises by datetime, and the two wall times of a DST fold
    (``fold=0``/``fold=1``) are equal as dict keys: they would share one encoding.
    """
    if name in _DATETIME_FIELDS and value is not None:
        return value.astimezone(dt.UTC).isoformat()
    return encode_value(name, value)


def _value(member: Any) -> Any:
    """An enum member's value (drivers adapt ``str``, not every ``str`` subclass)."""
    return getattr(member, "value", member)


def _plain(mapping: Mapping[str, Any]) -> Any:
    return mapping if type(mapping) is dict else dict(mapping)


class SqlStore:
    """A thread-safe :class:`~jianyi_flow.store.Store` over SQLAlchemy Core.

    ``url_or_engine`` is a database URL (``"sqlite:///jianyi.db"``,
    ``"postgresql+psycopg://user@host/db"``, ``"mysql+pymysql://user@host/db"``) or an
    :class:`~sqlalchemy.engine.Engine` you configured yourself (the store never disposes
    an engine it did not create).  ``engine_kwargs`` go to
    :func:`sqlalchemy.create_engine` when a URL is given.

    The tables must exist: run :func:`jianyi_flow.db.upgrade` (or ``jianyi-flow db
    upgrade URL``) when deploying, or open with :meth:`open` / ``create=True``, which run
    the migrations first.  The store never creates tables behind your back.
    """

    def __init__(self, url_or_engine: str | URL | Engine, *, create: bool = False, **engine_kwargs: Any) -> None:
        if isinstance(url_or_engine, Engine):
            if engine_kwargs:
                raise ValidationError("engine_kwargs", "only apply when the store opens the engine from a URL")
            engine = url_or_engine
            self._owns_engine = False
        else:
            engine = create_engine(url_or_engine, **engine_kwargs)
            self._owns_engine = True
        self._engine = engine
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
        self._local = threading.local()  # .batch: the connection of this thread's open batch
        self._build_statements()
        if create:
            from ..db import upgrade

            upgrade(engine)

    @classmethod
    def open(cls, url_or_engine: str | URL | Engine, *, migrate: bool = True, **engine_kwargs: Any) -> SqlStore:
        """Open a store, first bringing the schema to the newest migration when ``migrate`` (the default).

        For tests, tools and single-process deployments.  Deployments where the schema
        is migrated as a release step open with ``SqlStore(url)`` instead.
        """
        return cls(url_or_engine, create=migrate, **engine_kwargs)

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

        Each :meth:`commit` inside becomes a savepoint: a command that fails (a stale
        version, a taken key) is rolled back alone and raises as usual, while the others
        stay.  Reads on this thread see the batch's own writes.  The batch commits when the
        block ends and rolls back if it raises, so a crash loses the open batch and never
        leaves half a command.  While it is open it holds the database's write lock on
        SQLite: keep batches short (the simulator commits every couple of hundred commands).
        Nested ``batch()`` blocks join the outer one.
        """
        if getattr(self._local, "batch", None) is not None:
            yield
            return
        self._check_open()
        try:
            with self._mutex, self._writer.begin() as conn:
                if self._sqlite:
                    self._begin_immediate(conn)
                self._local.batch = conn
                try:
                    yield
                finally:
                    self._local.batch = None
        except sa.exc.SQLAlchemyError as exc:
            raise self._error(exc, "write") from None

    def _in_savepoint(self, conn: Connection, work: Callable[[Tx], T]) -> T:
        """``work`` inside the open batch, as a savepoint rolled back alone if it fails."""
        tx = Tx(conn, direct=self._sqlite)
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
        batch = getattr(self._local, "batch", None)
        if batch is not None:
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
        if batch is not None:
            try:
                return work(batch)
            except sa.exc.SQLAlchemyError as exc:
                raise self._error(exc, "read") from None
        try:
            with self._mutex, self._reader.connect() as conn:
                return work(conn)
        except sa.exc.SQLAlchemyError as exc:
            raise self._error(exc, "read") from None

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
            hint = " (the jianyi_flow tables are missing: run jianyi_flow.db.upgrade(url) or `jianyi-flow db upgrade`)"
        if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
            hint = " (the connection was lost)"
        return StoreError(f"{self._backend} {what} failed: {type(exc).__name__}: {detail}{hint}")

    # --- writing -------------------------------------------------------------------------
    def commit(self, change: Change) -> None:
        """Write the row, the event, the messages and the key in one transaction (see the module docstring)."""
        plan = _Plan(change)
        self._commit_plans(lambda conn: self._apply(conn, plan))

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
        elif self._update_row(tx, p):
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
        row = self._read(lambda conn: Tx(conn, direct=self._sqlite).first(self._sel_row, {"w_id": suggestion_id}))
        if row is None:
            raise NotFound("suggestion", suggestion_id)
        return _suggestion(row)

    def history(self, suggestion_id: str) -> list[Event]:
        rows = self._read(lambda conn: conn.execute(self._sel_history, {"w_id": suggestion_id}).all())
        return [_event(r) for r in rows]

    def query(self, query: Query) -> list[Suggestion]:
        stmt = self.query_statement(query)
        rows = self._read(lambda conn: conn.execute(stmt).all())
        return [_suggestion(r) for r in rows]

    def query_statement(self, query: Query) -> sa.Select[Any]:
        """The ``SELECT`` :meth:`query` runs for ``query`` (to inspect its plan, or to reuse in a report)."""
        s = suggestions
        stmt = sa.select(*self._row_columns)
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

        ``at`` is recorded as ``sent_at`` (the relay passes its clock's time); by default
        the wall clock, since this is bookkeeping for operators that no rule reads.
        """
        when = to_utc(at, "at") if at is not None else dt.datetime.now(dt.UTC)
        todo = sorted(set(ids))
        if not todo:
            return

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
        if self._owns_engine:
            self._engine.dispose()

    # --- maintenance ---------------------------------------------------------------------
    def outbox_pending(self) -> int:
        """How many messages are not yet marked sent (for monitoring the relay)."""
        stmt = sa.select(sa.func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
        return int(self._read(lambda conn: conn.execute(stmt).scalar_one()))

    def export_events(self, after_id: str | None, limit: int) -> list[Event]:
        """The events of the next ``limit`` suggestions with ids after ``after_id``, by id then version.

        The bulk path of :func:`jianyi_flow.store.iter_events`: two queries per page instead
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


# --- row decoding ------------------------------------------------------------------------
def _suggestion(row: Sequence[Any]) -> Suggestion:
    """A suggestion from its row, columns in ``COLUMN_FIELDS`` order then ``data`` (a Row or a plain tuple)."""
    data: Mapping[str, Any] = row[_DATA_INDEX]
    fields = {name: decode_value(name, data[name]) for name in DATA_FIELDS if name in data}
    fields.update(zip(COLUMN_FIELDS, row, strict=False))
    fields["state"] = State(fields["state"])
    return Suggestion(**fields)


_DATA_INDEX = len(COLUMN_FIELDS)


def _event(row: Row[Any]) -> Event:
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
