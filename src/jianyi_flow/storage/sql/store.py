"""``SqlStore``: the :class:`~jianyi_flow.storage.base.Store` on SQLite, PostgreSQL and MariaDB.

One commit is one transaction, written in this order:

1. the idempotency record (so racing retries of one key wait for each other on its
   primary key: the second finds the first's record once it commits);
2. the row: ``INSERT``, or ``UPDATE … WHERE id = :id AND version = :expected`` — no row
   updated means someone else committed first (:class:`~jianyi_flow.errors.ConcurrencyConflict`)
   or there is no such suggestion (:class:`~jianyi_flow.errors.NotFound`);
3. the unit rows (one per unit and relation, with copies of the row's sort keys).  When the
   row was read in the same transaction (:meth:`SqlStore.transaction`, :meth:`SqlStore.batch`),
   the old and new links are compared in Python: unchanged links and sort keys write
   nothing, new links are inserted, and only a removed link rewrites them all.  Otherwise
   the ``UPDATE`` also requires the unit links to be the ones stored (``units``); when they
   are not, a second ``UPDATE`` writes the row and the unit rows are written again, and the
   copies are refreshed where they differ;
4. the event's place in the log: the one-row counter is incremented and read in the same
   transaction, so ``seq`` runs 1, 2, 3... without a gap and a failed commit uses none;
5. the event and the outbox messages.

Everything a commit writes is checked and encoded before the transaction starts: a bad
value is a :class:`~jianyi_flow.errors.ValidationError` and nothing is sent to the
database.  A database error becomes one of the library's errors, never a SQLAlchemy or
driver exception; deadlocks and serialization failures are retried a few times first.

Statements are SQLAlchemy Core, built once in the constructor (queries, whose filters
vary, are built per call from the same tables); on SQLite the commit path's statements
are rendered to SQL text once and sent with ``exec_driver_sql`` (:class:`_Direct`).  A
change's parameters are built, and rows read back (their stored values as the driver
returns them) are decoded, by :mod:`.rows`, so a value edited into something unreadable is
reported for its row (:meth:`SqlStore.scan_histories`) or as a
:class:`~jianyi_flow.errors.StoreError` (:meth:`SqlStore.load`), never as a bare exception.

SQLite write transactions start with ``BEGIN IMMEDIATE``: the database's single write
lock is taken up front (waiting up to the busy timeout) instead of failing with "database
is locked" when a reader tries to become a writer halfway through.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Self, TypeVar

import attrs
import sqlalchemy as sa
from sqlalchemy.dialects import mysql as mysql_dialect
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.pool import StaticPool

from ...domain.clock import to_utc
from ...domain.codec import (
    with_seq,
)
from ...domain.model import Event, State, Suggestion
from ...domain.personal import PersonalRecord
from ...errors import (
    ConcurrencyConflict,
    DuplicateSuggestion,
    IdempotencyKeyReused,
    JianyiFlowError,
    NotFound,
    SchemaMismatch,
    StoreError,
    ValidationError,
)
from ..base import (
    LIMIT_MAX,
    Change,
    IdempotencyRecord,
    Order,
    OutboxMessage,
    Query,
    StoredHistory,
    check_limit,
    message_ids,
)
from .engine import create_engine, is_memory_sqlite, prepare_sqlite
from .rows import (
    ACCOUNT_AT,
    BIGINT_MAX,
    COLUMN_FIELDS,
    DATA_AT,
    DATA_FIELDS,
    DERIVED_COLUMNS,
    PERSONAL_COLUMNS,
    SET_NAMES,
    UNIT_KEYS,
    UPDATES_MAX,
    VAULT_AT,
    Loaded,
    Plan,
    decode_stored,
    event_from_row,
    first_line,
    history_from_rows,
    loaded_row,
    message_from_row,
    personal_from_row,
    plan_change,
    resolve_personal,
    suggestion_from_row,
)
from .schema import (
    EVENT_SEQ,
    REVISION,
    counters,
    events,
    idempotency,
    meta,
    outbox,
    personal_data,
    suggestion_units,
    suggestions,
)
from .types import KEY_LENGTH, Key, LongText

__all__ = ["COLUMN_FIELDS", "DATA_FIELDS", "LIMIT_MAX", "SqlStore"]

T = TypeVar("T")
E = TypeVar("E", bound=sa.ClauseElement)

_ATTEMPTS = 4
"""How many times a transaction the database killed to break a deadlock is tried in all."""
_CHUNK = 500
"""Values per ``IN (...)``: well below every backend's limit on bound parameters."""
_SAVEPOINT = "jianyi_commit"

# --- statements' parameters -----------------------------------------------------------------------------
_JSON_COLUMNS = {"data", "changes", "payload", "notices"}


def _binds(table: sa.Table, names: Iterable[str]) -> dict[str, sa.BindParameter[Any]]:
    """``{column: bindparam(column)}``: JSON columns take the text the store encoded itself."""
    out: dict[str, sa.BindParameter[Any]] = {}
    for name in names:
        kind = LongText() if name in _JSON_COLUMNS else table.c[name].type
        out[name] = sa.bindparam(name, type_=kind)
    return out


def _raw(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """A column read as the driver returns it (the store decodes it, so a bad value is reported per row)."""
    return sa.type_coerce(column, sa.types.NullType()).label(column.key)


class _Taken(Exception):
    """An insert hit an existing key: ``what`` is ``"key"`` (the idempotency record) or ``"event"``.

    Raised out of the transaction, which is rolled back, and then diagnosed with a read
    (:meth:`SqlStore._diagnose`): PostgreSQL accepts no statement in a transaction after an error.
    """

    def __init__(self, plan: Plan, what: str, seq: int = 0) -> None:
        super().__init__(what)
        self.plan = plan
        self.what = what
        self.seq = seq


_NAMED_SQLITE = sqlite_dialect.dialect(paramstyle="named")
"""The SQLite dialect rendering ``:name`` parameters, which the sqlite3 driver takes from a dict."""


class _Direct:
    """A statement of the commit path rendered once as SQLite text, sent with ``exec_driver_sql``.

    On SQLite, SQLAlchemy's per-execution work for a compiled statement (cache lookup,
    parameter processing, result set-up) costs more than SQLite's own execution of it, so
    the store sends these statements as text with the parameters already converted: the
    column types' own bind processors, applied here (for speed).
    """

    __slots__ = ("processors", "sql")

    def __init__(self, stmt: sa.ClauseElement, binds: Mapping[str, sa.BindParameter[Any]], dialect: sa.Dialect,
                 literal: bool) -> None:
        compiled = stmt.compile(dialect=_NAMED_SQLITE, compile_kwargs={"literal_binds": True} if literal else {})
        self.sql = str(compiled)
        processors = ((name, b.type.dialect_impl(dialect).bind_processor(dialect)) for name, b in binds.items())
        self.processors = tuple((name, proc) for name, proc in processors if proc is not None)

    def bind(self, params: Any) -> Any:
        """``params`` (a dict, a list of dicts or ``None``) as the driver takes them."""
        if not self.processors or params is None:
            return params
        if isinstance(params, list):
            return [self._one(p) for p in params]
        return self._one(params)

    def _one(self, params: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(params)
        for name, proc in self.processors:
            if name in out:
                out[name] = proc(out[name])
        return out


class SqlStore:
    """A thread-safe :class:`~jianyi_flow.storage.base.Store` over SQLAlchemy Core.

    ``url_or_engine`` is a database URL (``"sqlite:///jianyi.db"``,
    ``"postgresql+psycopg://user@host/db"``, ``"mysql+pymysql://user@host/db"``) or an
    :class:`~sqlalchemy.engine.Engine` you configured yourself (the store never disposes
    an engine it did not create).  ``engine_kwargs`` go to
    :func:`sqlalchemy.create_engine` when a URL is given.

    The database must be at the schema revision this version writes (:data:`.schema.REVISION`):
    opening any other — no tables, an older or a newer revision — raises
    :class:`~jianyi_flow.errors.SchemaMismatch` saying what to run.  Run
    ``jianyi-flow db upgrade URL`` (or :func:`jianyi_flow.sql.upgrade`) when deploying, or
    open with :meth:`open`, which runs the migrations first.
    """

    def __init__(self, url_or_engine: str | URL | Engine, **engine_kwargs: Any) -> None:
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
        self._sqlite = self._backend == "sqlite"
        self._mysql = self._backend in ("mysql", "mariadb")
        memory = self._sqlite and is_memory_sqlite(engine.url)
        if memory and not isinstance(engine.pool, StaticPool):
            self._dispose()
            raise ValidationError(
                "engine",
                "an in-memory SQLite database exists once per connection: create the engine with "
                "poolclass=sqlalchemy.pool.StaticPool (or pass the URL and let the store do it)",
            )
        # One shared connection (in-memory SQLite) cannot run two transactions at once.
        self._mutex: contextlib.AbstractContextManager[Any] = threading.RLock() if memory else contextlib.nullcontext()
        self._runner: Engine = engine
        if self._mysql and not self._owns_engine:
            # engines the store creates connect at READ COMMITTED already (see .engine)
            self._runner = engine.execution_options(isolation_level="READ COMMITTED")
        self._local = threading.local()
        self._updates: dict[tuple[str, ...], sa.Update] = {}
        self._direct: dict[object, _Direct] = {}
        self._skip_locked: bool | None = None
        self._build_statements()
        try:
            self._check_schema()
        except BaseException:
            self._dispose()
            raise

    @classmethod
    def open(cls, url_or_engine: str | URL | Engine, *, migrate: bool = True, **engine_kwargs: Any) -> Self:
        """Open a store, first bringing the schema to the newest revision when ``migrate`` (the default).

        For tests, tools and single-process deployments; deployments where the schema is
        migrated as a release step open with ``SqlStore(url)``.
        """
        if migrate:
            from .migrate import upgrade

            if isinstance(url_or_engine, Engine):
                upgrade(url_or_engine)
            else:
                engine = create_engine(url_or_engine, **engine_kwargs)
                try:
                    upgrade(engine)
                except BaseException:
                    engine.dispose()
                    raise
                store = cls(engine)
                store._owns_engine = True
                return store
        return cls(url_or_engine, **engine_kwargs)

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

    def close(self) -> None:
        """Release the connections (of an engine the store created); later calls raise :class:`StoreError`."""
        if self._closed:
            return
        self._closed = True
        self._dispose()

    def _dispose(self) -> None:
        if self._owns_engine:
            self._engine.dispose()

    # --- schema ------------------------------------------------------------------------------
    def _check_schema(self) -> None:
        from alembic.runtime.migration import MigrationContext

        from .migrate import VERSION_TABLE

        try:
            with self._connect(write=False) as conn:
                context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
                found = context.get_current_revision()
        except sa.exc.SQLAlchemyError as exc:
            raise self._error(exc, "open") from None
        except JianyiFlowError:
            raise
        except Exception as exc:  # e.g. alembic finding several revisions recorded
            raise StoreError(f"reading the schema revision failed: {type(exc).__name__}: {exc}") from None
        if found == REVISION:
            return
        error = SchemaMismatch(found, REVISION, url=self._engine.url.render_as_string(hide_password=True))
        note = _schema_note(found)
        if note is not None:
            error.add_note(note)
        raise error

    # --- statements, built once ------------------------------------------------------------------
    def _directly(self, stmt: E, binds: Mapping[str, sa.BindParameter[Any]] | None = None, *,
                  literal: bool = False) -> E:
        """``stmt``, sent as SQL text rendered once on SQLite (see :class:`_Direct`); ``binds`` name the
        parameters whose types convert their values (``literal`` renders the statement's own values inline)."""
        if self._sqlite:
            self._direct[stmt] = _Direct(stmt, binds or {}, self._engine.dialect, literal)
        return stmt

    def _exec(self, conn: Connection, stmt: sa.Executable, params: Any = None) -> sa.CursorResult[Any]:
        """Run one of the store's statements: as text if it has a :class:`_Direct` form, else through Core."""
        direct = self._direct.get(stmt)
        if direct is None:
            return conn.execute(stmt, params)
        return conn.exec_driver_sql(direct.sql, direct.bind(params))

    def _build_statements(self) -> None:
        s, u, ev, ob = suggestions, suggestion_units, events, outbox
        w_id: sa.BindParameter[str] = sa.bindparam("w_id", type_=Key())
        row_names = [c.name for c in s.columns]
        set_names = [name for name in row_names if name not in ("id", "units")]
        key_binds = _binds(idempotency, [c.name for c in idempotency.columns])
        self._ins_key = self._directly(idempotency.insert().values(key_binds), key_binds)
        row_binds = _binds(s, row_names)
        self._ins_row = self._directly(s.insert().values(row_binds), row_binds)
        same_units = s.c.units == sa.bindparam("w_units", type_=LongText())
        self._upd_row_same_units = self._directly(
            s.update()
            .where(s.c.id == w_id, s.c.version == sa.bindparam("w_version", type_=sa.Integer()), same_units)
            .values(_binds(s, set_names)),
            row_binds,
        )
        self._upd_row = self._directly(
            s.update()
            .where(s.c.id == w_id, s.c.version == sa.bindparam("w_version", type_=sa.Integer()))
            .values(_binds(s, [*set_names, "units"])),
            row_binds,
        )
        self._sel_version = self._directly(sa.select(s.c.version).where(s.c.id == w_id))
        self._sel_has_events = sa.select(ev.c.version).where(ev.c.suggestion_id == w_id).limit(1)
        self._sel_event_at = sa.select(ev.c.version).where(
            ev.c.suggestion_id == w_id, ev.c.version == sa.bindparam("w_version", type_=sa.Integer()))
        self._del_units = self._directly(u.delete().where(u.c.suggestion_id == w_id))
        unit_binds = _binds(u, [c.name for c in u.columns])
        self._ins_units = self._directly(u.insert().values(unit_binds), unit_binds)
        due = sa.bindparam("n_due_at", type_=u.c.due_at.type)
        received = sa.bindparam("n_received_at", type_=u.c.received_at.type)
        registration = sa.bindparam("n_registration_number", type_=u.c.registration_number.type)
        self._upd_unit_copies = self._directly(
            u.update()
            .where(
                u.c.suggestion_id == w_id,
                sa.or_(
                    u.c.due_at.is_distinct_from(due),
                    u.c.received_at.is_distinct_from(received),
                    u.c.registration_number.is_distinct_from(registration),
                ),
            )
            .values(due_at=due, received_at=received, registration_number=registration),
            {"n_due_at": due, "n_received_at": received},
        )
        counter = counters.c.name == EVENT_SEQ
        if self._mysql:  # MariaDB has no UPDATE … RETURNING: LAST_INSERT_ID(expr) keeps the value per connection
            self._bump_seq = counters.update().where(counter).values(value=sa.func.last_insert_id(counters.c.value + 1))
            self._read_bumped: sa.Select[Any] | None = sa.select(sa.func.last_insert_id())
        else:
            self._bump_seq = self._directly(
                counters.update().where(counter).values(value=counters.c.value + 1).returning(counters.c.value),
                literal=True)
            self._read_bumped = None
        self._sel_last_seq = sa.select(counters.c.value).where(counter)
        event_binds = _binds(ev, [c.name for c in ev.columns])
        self._ins_event = self._directly(ev.insert().values(event_binds), event_binds)
        pd = personal_data
        self._del_personal = pd.delete().where(pd.c.suggestion_id == w_id)
        self._ins_personal = pd.insert().values(_binds(pd, [c.name for c in pd.columns]))
        personal_columns = [_raw(pd.c[name]) for name in PERSONAL_COLUMNS]
        self._sel_personal = self._directly(sa.select(*personal_columns).where(pd.c.suggestion_id == w_id))
        self._forget_keys = idempotency.delete().where(
            idempotency.c.suggestion_id == w_id, idempotency.c.version < sa.bindparam("w_version", type_=sa.Integer()))
        self._sel_personal_many = sa.select(*personal_columns).where(
            pd.c.suggestion_id.in_(sa.bindparam("w_ids", expanding=True)))
        self._redact_event = (
            ev.update()
            .where(ev.c.suggestion_id == w_id, ev.c.version == sa.bindparam("w_version", type_=sa.Integer()),
                   ev.c.hash == sa.bindparam("w_hash", type_=sa.String(64)))
            .values(changes=sa.bindparam("n_changes", type_=LongText()),
                    actor_id=sa.bindparam("n_actor_id", type_=ev.c.actor_id.type),
                    actor_unit=sa.bindparam("n_actor_unit", type_=ev.c.actor_unit.type),
                    actor_name=sa.bindparam("n_actor_name", type_=ev.c.actor_name.type))
        )
        outbox_names = ["topic", "suggestion_id", "version", "recipient", "payload", "created_at"]
        outbox_binds = _binds(ob, outbox_names)
        self._ins_outbox = self._directly(ob.insert().values(outbox_binds), outbox_binds)

        self._row_columns = [_raw(s.c[name]) for name in COLUMN_FIELDS] + [_raw(s.c.data)]
        # the columns derived from the row: a commit in the same transaction compares with them, an audit
        # compares the proposer_account index with the vault
        self._derived_columns = [_raw(s.c[name]) for name in DERIVED_COLUMNS]
        vault = personal_data
        self._sel_row = self._directly(  # the row and its vault record (if any) in one round trip
            sa.select(*self._row_columns, *self._derived_columns,
                      *[sa.type_coerce(vault.c[name], sa.types.NullType()).label(f"vault_{name}")
                        for name in PERSONAL_COLUMNS])
            .select_from(s.outerjoin(vault, vault.c.suggestion_id == s.c.id))
            .where(s.c.id == w_id))
        self._event_columns = [_raw(c) for c in ev.columns]
        self._sel_history = sa.select(*self._event_columns).where(ev.c.suggestion_id == w_id).order_by(ev.c.version)
        self._sel_key = self._directly(sa.select(*[_raw(c) for c in idempotency.columns]).where(
            idempotency.c.scope == sa.bindparam("w_scope", type_=Key()),
            idempotency.c.key == sa.bindparam("w_key", type_=Key()),
        ))
        self._message_columns = [_raw(c) for c in (ob.c.id, ob.c.topic, ob.c.suggestion_id, ob.c.version,
                                                    ob.c.recipient, ob.c.payload, ob.c.created_at, ob.c.attempts,
                                                    ob.c.sent_at)]
        claimable = (
            sa.select(*self._message_columns)
            .where(
                ob.c.sent_at.is_(None),
                sa.or_(ob.c.leased_until.is_(None),
                       ob.c.leased_until <= sa.bindparam("w_now", type_=ob.c.leased_until.type)),
            )
            .order_by(ob.c.id)
            .limit(sa.bindparam("w_limit", type_=sa.Integer()))
        )
        self._claim_skip_locked = claimable.with_for_update(skip_locked=True)
        self._claim_locking = claimable.with_for_update()
        ids: sa.BindParameter[Any] = sa.bindparam("w_ids", expanding=True)
        self._lease = (
            ob.update()
            .where(ob.c.id.in_(ids))
            .values(leased_until=sa.bindparam("w_until", type_=ob.c.leased_until.type), attempts=ob.c.attempts + 1)
        )
        self._mark_sent = (
            ob.update()
            .where(ob.c.id.in_(ids), ob.c.sent_at.is_(None))
            .values(sent_at=sa.bindparam("w_at", type_=ob.c.sent_at.type))
        )
        self._count_pending = sa.select(sa.func.count()).select_from(ob).where(ob.c.sent_at.is_(None))
        self._sel_meta = sa.select(meta.c.value).where(meta.c.name == sa.bindparam("w_name", type_=Key()))
        if self._mysql:
            upsert = mysql_dialect.insert(meta).values(_binds(meta, ["name", "value"]))
            self._set_meta: Any = upsert.on_duplicate_key_update(value=upsert.inserted.value)
        else:
            insert = (pg_dialect.insert if self._backend == "postgresql" else sqlite_dialect.insert)(meta)
            insert = insert.values(_binds(meta, ["name", "value"]))
            self._set_meta = insert.on_conflict_do_update(index_elements=[meta.c.name],
                                                          set_={"value": insert.excluded.value})

    # --- transactions ------------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the store is closed")

    @contextlib.contextmanager
    def _connect(self, *, write: bool, snapshot: bool = False) -> Iterator[Connection]:
        """A connection in a transaction, committed when the block ends (rolled back if it raises).

        ``write`` takes SQLite's write lock at the start; ``snapshot`` makes several reads
        see one state of the database (REPEATABLE READ elsewhere; a SQLite read transaction
        keeps its snapshot until it ends).
        """
        with self._mutex, self._runner.connect() as conn:
            if snapshot and not self._sqlite:
                conn.execution_options(isolation_level="REPEATABLE READ")
            if self._sqlite:
                prepare_sqlite(conn)
                if write or snapshot:  # a single read needs no transaction of its own
                    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
            else:
                conn.begin()
            try:
                yield conn
            except BaseException:
                conn.rollback()
                raise
            conn.commit()

    def _write(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in a write transaction (a savepoint inside a batch); retry it after a deadlock."""
        self._check_open()
        batch: Connection | None = getattr(self._local, "batch", None)
        if batch is not None:
            return self._in_savepoint(batch, work)
        scope: Connection | None = getattr(self._local, "scope", None)
        if scope is not None:
            try:
                return work(scope)
            except BaseException as exc:
                self._local.failed = exc  # the transaction fails with it, whatever the caller does
                raise
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                with self._connect(write=True) as conn:
                    return work(conn)
            except _Taken as taken:
                raise self._diagnosed(taken) from None
            except sa.exc.DBAPIError as exc:
                if attempt < _ATTEMPTS and _transient(exc):
                    continue
                raise self._error(exc, "write") from None
            except sa.exc.SQLAlchemyError as exc:
                raise self._error(exc, "write") from None
            except UnicodeError as exc:
                raise ValidationError("text", f"cannot be stored: {exc}") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _in_savepoint(self, conn: Connection, work: Callable[[Connection], T]) -> T:
        """``work`` inside the open batch, as a savepoint rolled back alone if it fails.

        The savepoint statements are sent as they are (``exec_driver_sql``): SQLAlchemy's
        ``begin_nested`` does the same with more bookkeeping, which measured as a third of a
        batched commit's cost on SQLite.
        """
        if getattr(self._local, "broken", None):
            raise StoreError(f"the batch failed earlier and will be rolled back: {self._local.broken}")
        try:
            conn.exec_driver_sql(f"SAVEPOINT {_SAVEPOINT}")
            try:
                result = work(conn)
            except BaseException:
                conn.exec_driver_sql(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
                conn.exec_driver_sql(f"RELEASE SAVEPOINT {_SAVEPOINT}")
                raise
            conn.exec_driver_sql(f"RELEASE SAVEPOINT {_SAVEPOINT}")
            return result
        except _Taken as taken:
            raise self._diagnose(conn, taken) from None
        except JianyiFlowError:
            raise
        except UnicodeError as exc:
            raise ValidationError("text", f"cannot be stored: {exc}") from None
        except sa.exc.SQLAlchemyError as exc:
            error = self._error(exc, "write")
            if not isinstance(exc, (sa.exc.IntegrityError, sa.exc.DataError)):
                # the transaction itself may be gone (MariaDB rolls a deadlocked one back whole)
                self._local.broken = str(error)
            raise error from None

    def _read(self, work: Callable[[Connection], T], *, snapshot: bool = False) -> T:
        self._check_open()
        batch: Connection | None = getattr(self._local, "batch", None) or getattr(self._local, "scope", None)
        try:
            if batch is not None:
                return work(batch)
            with self._connect(write=False, snapshot=snapshot) as conn:
                return work(conn)
        except sa.exc.SQLAlchemyError as exc:
            raise self._error(exc, "read") from None
        except UnicodeError as exc:
            raise ValidationError("text", f"cannot be compared: {exc}") from None

    def transaction(self, work: Callable[[], T]) -> T:
        """Call ``work`` with this thread's reads and commits in one write transaction (see
        :class:`~jianyi_flow.storage.base.TransactingStore`).

        A row :meth:`load` reads in it tells its commit what is stored, so the commit sets
        only the columns and unit links that changed.  Inside :meth:`batch` it joins the batch.
        """
        local = self._local
        if getattr(local, "batch", None) is not None or getattr(local, "scope", None) is not None:
            self._check_open()
            return work()

        def scoped(conn: Connection) -> T:
            local.scope, local.loaded, local.failed = conn, {}, None
            try:
                result = work()
            finally:
                local.scope = local.loaded = None
            failed, local.failed = local.failed, None
            if failed is not None:
                raise failed
            return result

        return self._write(scoped)

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Run the commits made on this thread inside one transaction (bulk loads, simulations).

        Each commit is a savepoint: one that fails (a stale version, a taken key, a
        duplicate id) is rolled back alone and raises from its :meth:`commit`, and the
        batch's other commits stay.  Reads on this thread see the batch's writes.  The
        batch commits when the block ends and rolls back if the block raises, so a crash
        loses the open batch and never leaves half a command.  A database failure inside
        the batch (a deadlock, a lost connection) fails the whole batch: later commits and
        the end of the block raise :class:`~jianyi_flow.errors.StoreError`.  On SQLite the
        batch holds the database's write lock from start to end: keep batches to a few
        hundred commands.  Nested ``batch()`` blocks join the outer one, and a batch inside
        :meth:`transaction` joins that.
        """
        if getattr(self._local, "batch", None) is not None or getattr(self._local, "scope", None) is not None:
            yield
            return
        self._check_open()
        try:
            with self._connect(write=True) as conn:
                self._local.batch = conn
                self._local.broken = None
                self._local.loaded = {}
                try:
                    yield
                finally:
                    self._local.batch = self._local.loaded = None
                broken, self._local.broken = self._local.broken, None
                if broken:
                    raise StoreError(f"the batch was rolled back: {broken}")
        except sa.exc.SQLAlchemyError as exc:
            raise self._error(exc, "write") from None

    def _error(self, exc: sa.exc.SQLAlchemyError, what: str) -> JianyiFlowError:
        """The library error for a SQLAlchemy one (its SQL and parameters are left out: they hold personal data)."""
        orig = getattr(exc, "orig", None)
        if isinstance(orig, JianyiFlowError):
            return orig  # raised by a column type
        if isinstance(exc, sa.exc.DataError):
            return ValidationError("value", f"the database refused a value: {first_line(orig or exc)}")
        if isinstance(exc, sa.exc.StatementError) and not isinstance(exc, sa.exc.DBAPIError) \
                and isinstance(orig, (TypeError, ValueError)):
            return ValidationError("value", f"a value cannot be stored: {first_line(orig)}")
        hint = ""
        if _missing_table(exc):
            hint = " (the jianyi_flow tables are missing: run `jianyi-flow db upgrade URL`)"
        if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
            hint = " (the connection was lost)"
        return StoreError(f"{self._backend} {what} failed: {type(exc).__name__}: {first_line(orig or exc)}{hint}")

    # --- writing -----------------------------------------------------------------------------------
    def commit(self, change: Change) -> Event:
        """Write the change in one transaction (see the module docstring); the event as stored, with ``seq``."""
        plan = plan_change(change)
        self._check_open()
        return self._write(lambda conn: self._apply(conn, plan))

    def _apply(self, conn: Connection, plan: Plan) -> Event:
        change = plan.change
        sid = plan.row["id"]
        if plan.record is not None:
            try:
                self._exec(conn, self._ins_key, plan.record)
            except sa.exc.IntegrityError:
                raise _Taken(plan, "key") from None
        if plan.create:
            try:
                self._exec(conn, self._ins_row, plan.row)
            except sa.exc.IntegrityError:
                raise DuplicateSuggestion(sid) from None
            if plan.units:
                self._exec(conn, self._ins_units, plan.units)
        else:
            where = {"w_id": sid, "w_version": change.expected_version}
            values = {name: value for name, value in plan.row.items() if name not in ("id", "units")}
            loaded: dict[str, Loaded] | None = getattr(self._local, "loaded", None)
            prior = None if loaded is None else loaded.pop(sid, None)
            if prior is not None and prior.version == change.expected_version:
                row = plan.row
                # only the columns that changed: SQLite rewrites every index on a column set, even to its value
                names = tuple(name for name in SET_NAMES if name == "data" or row[name] != prior.values[name])
                stmt = self._updates.get(names)
                if stmt is None:
                    stmt = self._upd_row if len(self._updates) >= UPDATES_MAX else self._update_of(names)
                if not self._exec(conn, stmt, {**{name: row[name] for name in names}, **where}).rowcount:
                    raise self._missed(conn, sid, change.expected_version)
                self._relink(conn, plan, prior)
                return self._append(conn, plan)
            if self._exec(conn, self._upd_row_same_units, {**values, **where, "w_units": plan.row["units"]}).rowcount:
                self._exec(conn, self._upd_unit_copies, plan.copies)
            else:
                if not self._exec(conn, self._upd_row, {**values, **where, "units": plan.row["units"]}).rowcount:
                    raise self._missed(conn, sid, change.expected_version)
                self._exec(conn, self._del_units, {"w_id": sid})
                if plan.units:
                    self._exec(conn, self._ins_units, plan.units)
        return self._append(conn, plan)

    def _update_of(self, names: tuple[str, ...]) -> sa.Update:
        """The row ``UPDATE`` setting ``names`` (with the version check), built once per set of columns."""
        s = suggestions
        binds = _binds(s, names)
        stmt = (
            s.update()
            .where(s.c.id == sa.bindparam("w_id", type_=Key()),
                   s.c.version == sa.bindparam("w_version", type_=sa.Integer()))
            .values(binds)
        )
        self._updates[names] = self._directly(stmt, binds)
        return stmt

    def _relink(self, conn: Connection, plan: Plan, prior: Loaded) -> None:
        """The unit rows of an updated row read in this transaction: only what changed is written."""
        keys_same = all(plan.row[name] == prior.values[name] for name in UNIT_KEYS)
        if prior.values["units"] == plan.row["units"] and prior.links is not None:
            if not keys_same and prior.links:
                self._exec(conn, self._upd_unit_copies, plan.copies)
            return
        links = {(u["relation"], u["unit"]) for u in plan.units}
        if prior.links is None or not prior.links <= links:
            self._exec(conn, self._del_units, {"w_id": plan.row["id"]})
            if plan.units:
                self._exec(conn, self._ins_units, plan.units)
            return
        if not keys_same and prior.links:
            self._exec(conn, self._upd_unit_copies, plan.copies)
        added = [u for u in plan.units if (u["relation"], u["unit"]) not in prior.links]
        if added:
            self._exec(conn, self._ins_units, added)

    def _append(self, conn: Connection, plan: Plan) -> Event:
        """The rest of a commit after its row and unit rows: the event, messages, vault record and keys."""
        change = plan.change
        sid = plan.row["id"]
        seq = self._next_seq(conn)
        try:
            self._exec(conn, self._ins_event, {**plan.event, "seq": seq})
        except sa.exc.IntegrityError:
            raise _Taken(plan, "event", seq) from None
        if plan.messages:
            self._exec(conn, self._ins_outbox, plan.messages)
        for redaction in plan.redacted:
            if self._exec(conn, self._redact_event, {"w_id": sid, **redaction}).rowcount != 1:
                raise ValidationError("change.redacted", "a redacted event must keep the version and hash it had")
        if plan.personal is not None:
            self._exec(conn, self._del_personal, {"w_id": sid})
            self._exec(conn, self._ins_personal, plan.personal)
        if change.forget_keys:
            self._exec(conn, self._forget_keys, {"w_id": sid, "w_version": plan.event["version"]})
        return with_seq(change.event, seq)

    def _next_seq(self, conn: Connection) -> int:
        if self._read_bumped is None:
            value = self._exec(conn, self._bump_seq).scalar_one_or_none()
        elif self._exec(conn, self._bump_seq).rowcount:
            value = self._exec(conn, self._read_bumped).scalar_one()
        else:
            value = None
        if value is None:
            raise StoreError(f"the event counter ({counters.name} {EVENT_SEQ!r}) is missing: "
                             "run `jianyi-flow db upgrade URL` on a database the migrations built")
        return int(value)

    def _missed(self, conn: Connection, sid: str, expected: int) -> JianyiFlowError:
        """Why an update matched no row: the suggestion does not exist, or it is at another version."""
        actual = self._exec(conn, self._sel_version, {"w_id": sid}).scalar_one_or_none()
        if actual is None:
            return NotFound("suggestion", sid)
        return ConcurrencyConflict(sid, expected, int(actual))

    def _diagnosed(self, taken: _Taken) -> JianyiFlowError:
        """:meth:`_diagnose` in a read of its own (the failed transaction is gone)."""
        return self._read(lambda conn: self._diagnose(conn, taken))

    def _diagnose(self, conn: Connection, taken: _Taken) -> JianyiFlowError:
        """The error for an insert that hit an existing key, in the order MemoryStore checks.

        The row's own problem first (a duplicate id, a stale version: of two racing retries
        under one key, the second waited on the first's record and now finds its row), then
        the key.  An event insert can only collide with an event written without its row (a
        duplicate), with a newer event (a conflict), or on its log position (the counter was
        set back by hand: a store error, not the caller's).
        """
        plan = taken.plan
        sid, expected = plan.row["id"], plan.change.expected_version
        actual = conn.execute(self._sel_version, {"w_id": sid}).scalar_one_or_none()
        if plan.create:
            if actual is not None or conn.execute(self._sel_has_events, {"w_id": sid}).first() is not None:
                return DuplicateSuggestion(sid)
        elif actual is None:
            return NotFound("suggestion", sid)
        elif int(actual) != expected:
            return ConcurrencyConflict(sid, expected, int(actual))
        if taken.what == "key":
            assert plan.record is not None
            return IdempotencyKeyReused(plan.record["key"], "another command")
        if conn.execute(self._sel_event_at, {"w_id": sid, "w_version": plan.event["version"]}).first() is not None:
            return ConcurrencyConflict(sid, expected)
        return StoreError(f"log position {taken.seq} is taken: the event counter ({counters.name} {EVENT_SEQ!r}) "
                          "is behind the events; set it to the largest seq")

    # --- reading -----------------------------------------------------------------------------------
    def load(self, suggestion_id: str) -> Suggestion:
        if not isinstance(suggestion_id, str):
            raise NotFound("suggestion", suggestion_id)
        row = self._read(lambda conn: self._exec(conn, self._sel_row, {"w_id": suggestion_id}).first())
        if row is None:
            raise NotFound("suggestion", suggestion_id)
        record = None if row[VAULT_AT] is None else row[VAULT_AT:]
        s = decode_stored(suggestion_from_row, row, suggestion_id, "row")
        loaded: dict[str, Loaded] | None = getattr(self._local, "loaded", None)
        if loaded is not None:  # read in a transaction: its commit writes only the unit links that changed
            loaded[suggestion_id] = loaded_row(s, row)
        personal = None if record is None else decode_stored(personal_from_row, record, suggestion_id, "vault record")
        return resolve_personal(s, personal, row[ACCOUNT_AT])

    def personal_data(self, suggestion_id: str) -> PersonalRecord | None:
        if not isinstance(suggestion_id, str):
            return None
        row = self._read(lambda conn: self._exec(conn, self._sel_personal, {"w_id": suggestion_id}).first())
        return None if row is None else decode_stored(personal_from_row, row, suggestion_id, "vault record")

    def _records(self, conn: Connection, ids: Sequence[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for start in range(0, len(ids), _CHUNK):
            for r in conn.execute(self._sel_personal_many, {"w_ids": list(ids[start:start + _CHUNK])}):
                out[r.suggestion_id] = r
        return out

    def history(self, suggestion_id: str) -> list[Event]:
        if not isinstance(suggestion_id, str):
            return []
        rows = self._read(lambda conn: conn.execute(self._sel_history, {"w_id": suggestion_id}).all())
        return [decode_stored(event_from_row, r, suggestion_id, "event") for r in rows]

    def query(self, query: Query) -> list[Suggestion]:
        stmt = self.query_statement(query)

        def work(conn: Connection) -> tuple[Sequence[Any], dict[str, Any]]:
            rows = conn.execute(stmt).all()
            return rows, self._records(conn, [r[0] for r in rows if '"vaulted":true' in str(r[-1])])

        rows, records = self._read(work)
        found = [decode_stored(suggestion_from_row, r, r[0], "row") for r in rows]
        return [resolve_personal(s, None if s.id not in records
                                 else decode_stored(personal_from_row, records[s.id], s.id, "vault record"))
                for s in found]

    def count(self, query: Query) -> int:
        if not isinstance(query, Query):
            raise ValidationError("query", "must be a Query")
        source, conditions, _, _ = self._filters(query.unpaged())
        stmt = sa.select(sa.func.count()).select_from(source).where(*conditions)
        return int(self._read(lambda conn: conn.execute(stmt).scalar_one()))

    def query_statement(self, query: Query) -> sa.Select[Any]:
        """The ``SELECT`` :meth:`query` runs for ``query`` (to inspect its plan, or to reuse in a report)."""
        if not isinstance(query, Query):
            raise ValidationError("query", "must be a Query")
        check_limit(query.limit)
        source, conditions, key, ident = self._filters(query)
        stmt = sa.select(*self._row_columns).select_from(source).where(*conditions)
        if query.order is Order.ID:
            stmt = stmt.order_by(ident.desc() if query.descending else ident)
        else:
            stmt = stmt.order_by(*((key.desc(), ident.desc()) if query.descending else (key, ident)))
        if query.limit is not None:
            stmt = stmt.limit(query.limit)
        return stmt

    def _filters(
        self, query: Query
    ) -> tuple[sa.FromClause, list[sa.ColumnElement[bool]], sa.ColumnElement[Any], sa.ColumnElement[Any]]:
        """What ``query`` reads from, its conditions, its sort column and its id column.

        A unit filter reads the unit rows of that unit and relation, in the order of their
        copy of the sort key (one index range scan), and joins each suggestion's row; a
        second unit filter becomes a condition on the row.
        """
        s, u = suggestions, suggestion_units
        _check_query(query)
        relations = [(relation, value) for relation, value in (
            ("any", query.unit), ("lead", query.lead_unit), ("co", query.co_unit),
            ("recommending", query.recommending_unit)) if value is not None]
        conditions: list[sa.ColumnElement[bool]] = []
        source: sa.FromClause = s
        received, due, registration, ident = s.c.received_at, s.c.due_at, s.c.registration_number, s.c.id
        if relations:
            relation, unit = relations[0]
            source = u.join(s, s.c.id == u.c.suggestion_id)
            conditions += [u.c.unit == unit, u.c.relation == relation]
            received, due, registration, ident = u.c.received_at, u.c.due_at, u.c.registration_number, u.c.suggestion_id
            for relation, unit in relations[1:]:
                if relation == "lead":
                    conditions.append(s.c.lead_unit == unit)
                elif relation == "recommending":
                    conditions.append(s.c.recommending_unit == unit)
                else:
                    other = u.alias()
                    conditions.append(sa.exists().where(other.c.unit == unit, other.c.relation == relation,
                                                        other.c.suggestion_id == s.c.id))
        if query.states is not None:
            conditions.append(s.c.state.in_(sorted(State(state).value for state in query.states)))
        for column, value in ((s.c.campaign, query.campaign), (s.c.area, query.area), (s.c.topic, query.topic),
                              (s.c.proposer_account, query.proposer_account), (s.c.received_by, query.received_by),
                              (s.c.due_provisional, query.provisional), (s.c.reported_upward, query.reported_upward),
                              (s.c.forwarded_to_city, query.forwarded_to_city)):
            if value is not None:
                conditions.append(column == value)
        if query.received_after is not None:
            conditions.append(received >= to_utc(query.received_after, "query.received_after"))
        if query.received_before is not None:
            conditions.append(received < to_utc(query.received_before, "query.received_before"))
        if query.by_due:
            conditions.append(due.is_not(None))
            if query.due_after is not None:
                conditions.append(due >= to_utc(query.due_after, "query.due_after"))
            if query.due_before is not None:
                conditions.append(due < to_utc(query.due_before, "query.due_before"))
        if query.order is Order.REGISTRATION:
            conditions.append(registration.is_not(None))
        if query.overdue_unflagged:
            # the negation of base.flagged_for_due, NULLs included
            flagged = s.c.overdue_flagged_at
            conditions.append(sa.or_(flagged.is_(None), s.c.due_at.is_(None), flagged != s.c.due_at))
        key = {Order.ID: ident, Order.RECEIVED: received, Order.DUE: due, Order.REGISTRATION: registration}[query.order]
        cursor = query.cursor()
        if cursor is not None:
            value, after = _cursor(query.order, cursor)
            # the leading bound lets every planner start the index range at the cursor
            if query.descending:
                conditions += [key <= value, sa.tuple_(key, ident) < sa.tuple_(value, after)]
            else:
                conditions += [key >= value, sa.tuple_(key, ident) > sa.tuple_(value, after)]
        return source, conditions, key, ident

    def idempotency(self, scope: str, key: str) -> IdempotencyRecord | None:
        if not isinstance(scope, str) or not isinstance(key, str):
            return None
        row = self._read(lambda conn: self._exec(conn, self._sel_key, {"w_scope": scope, "w_key": key}).first())
        if row is None:
            return None
        return IdempotencyRecord(row.scope, row.key, row.suggestion_id, int(row.version), row.command, row.fingerprint)

    def scan_histories(self, after_id: str | None, limit: int) -> list[StoredHistory]:
        """The next ``limit`` suggestions after ``after_id``: four ordered queries, one snapshot.

        The rows of the page, the ids that have events (a row may have been deleted),
        then the events and the outbox messages of the id range the page covers.  A row,
        event or message that cannot be decoded is reported in ``problem``.
        """
        if after_id is not None and not isinstance(after_id, str):
            raise ValidationError("after_id", "must be a suggestion id or None")
        check_limit(limit)
        if limit == 0:
            return []
        s, ev, ob = suggestions, events, outbox

        def above(column: sa.ColumnElement[Any]) -> list[sa.ColumnElement[bool]]:
            return [] if after_id is None else [column > after_id]

        rows_stmt = (sa.select(*self._row_columns, *self._derived_columns).where(*above(s.c.id))
                     .order_by(s.c.id).limit(limit))
        ids_stmt = (sa.select(ev.c.suggestion_id).where(*above(ev.c.suggestion_id)).distinct()
                    .order_by(ev.c.suggestion_id).limit(limit))

        def work(conn: Connection) -> tuple[list[str], dict[str, Any], Sequence[Any], Sequence[Any], dict[str, Any]]:
            rows: dict[str, Any] = {r[0]: r for r in conn.execute(rows_stmt)}
            ids = sorted(set(rows) | set(conn.execute(ids_stmt).scalars()))[:limit]
            if not ids:
                return [], {}, [], [], {}
            upto = [*above(ev.c.suggestion_id), ev.c.suggestion_id <= ids[-1]]
            found = conn.execute(sa.select(*self._event_columns).where(*upto)
                                 .order_by(ev.c.suggestion_id, ev.c.version)).all()
            sent = [*above(ob.c.suggestion_id), ob.c.suggestion_id <= ids[-1]]
            messages = conn.execute(sa.select(*self._message_columns).where(*sent)
                                    .order_by(ob.c.suggestion_id, ob.c.id)).all()
            vaulted = [sid for sid, r in rows.items() if '"vaulted":true' in str(r[DATA_AT])]
            # a record whose row is gone must still show in an audit: look for those too
            orphans = [sid for sid in ids if sid not in rows]
            wanted = vaulted + orphans
            return ids, rows, found, messages, self._records(conn, wanted) if wanted else {}

        ids, rows, found, messages, records = self._read(work, snapshot=True)
        by_id: dict[str, tuple[list[Any], list[Any]]] = {sid: ([], []) for sid in ids}
        for r in found:
            if r.suggestion_id in by_id:
                by_id[r.suggestion_id][0].append(r)
        for r in messages:
            if r.suggestion_id in by_id:
                by_id[r.suggestion_id][1].append(r)
        return [history_from_rows(sid, rows.get(sid), *by_id[sid], records.get(sid)) for sid in ids]

    def last_seq(self) -> int:
        value = self._read(lambda conn: conn.execute(self._sel_last_seq).scalar_one_or_none())
        return 0 if value is None else int(value)

    # --- outbox ------------------------------------------------------------------------------------
    def claim(self, limit: int, now: dt.datetime, lease: dt.timedelta) -> list[OutboxMessage]:
        """Lease up to ``limit`` unsent messages, oldest first.

        PostgreSQL and MariaDB ≥ 10.6 select with ``FOR UPDATE SKIP LOCKED``, so two
        relays claiming at once get different messages without waiting for each other;
        SQLite's single writer makes claims take turns.
        """
        check_limit(limit)
        now = to_utc(now, "now")
        if not isinstance(lease, dt.timedelta) or lease <= dt.timedelta(0):
            raise ValidationError("lease", "must be a positive timedelta")
        try:
            until = now + lease
        except OverflowError:
            raise ValidationError("lease", "ends after the last representable time") from None
        if limit == 0:
            self._check_open()
            return []

        def work(conn: Connection) -> list[OutboxMessage]:
            stmt = self._claim_skip_locked if self._supports_skip_locked(conn) else self._claim_locking
            rows = conn.execute(stmt, {"w_now": now, "w_limit": limit}).all()
            for chunk in _chunks([r.id for r in rows]):
                conn.execute(self._lease, {"w_ids": chunk, "w_until": until})
            return [attrs.evolve(message_from_row(r), attempts=int(r.attempts) + 1) for r in rows]

        return self._write(work)

    def mark_sent(self, ids: Iterable[int], at: dt.datetime) -> None:
        """Mark messages delivered at ``at``; unknown or already sent ids are ignored."""
        when = to_utc(at, "at")
        wanted = sorted({i for i in message_ids(ids) if 0 < i <= BIGINT_MAX})  # others cannot exist
        self._check_open()
        if not wanted:
            return

        def work(conn: Connection) -> None:
            for chunk in _chunks(wanted):
                conn.execute(self._mark_sent, {"w_ids": chunk, "w_at": when})

        self._write(work)

    def outbox_pending(self) -> int:
        """How many messages are not yet marked sent (for monitoring the relay)."""
        return int(self._read(lambda conn: conn.execute(self._count_pending).scalar_one()))

    def _supports_skip_locked(self, conn: Connection) -> bool:
        if self._skip_locked is None:
            dialect = conn.dialect
            version = dialect.server_version_info or ()
            if self._mysql:
                self._skip_locked = version >= ((10, 6) if getattr(dialect, "is_mariadb", False) else (8, 0, 1))
            else:
                self._skip_locked = self._backend == "postgresql"
        return self._skip_locked

    # --- named values ------------------------------------------------------------------------------
    def get_meta(self, name: str) -> str | None:
        if not isinstance(name, str):
            raise ValidationError("meta", "names and values are text")
        value = self._read(lambda conn: conn.execute(self._sel_meta, {"w_name": name}).scalar_one_or_none())
        return None if value is None else str(value)

    def set_meta(self, name: str, value: str) -> None:
        if not isinstance(name, str) or not isinstance(value, str):
            raise ValidationError("meta", "names and values are text")
        if len(name) > KEY_LENGTH:
            raise ValidationError("meta", f"names are at most {KEY_LENGTH} characters")
        self._check_open()
        self._write(lambda conn: conn.execute(self._set_meta, {"name": name, "value": value}))


# --- checking arguments -------------------------------------------------------------------------------------


_TEXT_FILTERS = ("campaign", "unit", "lead_unit", "co_unit", "recommending_unit", "proposer_account", "received_by",
                 "area", "topic", "after_id")
_FLAG_FILTERS = ("provisional", "reported_upward", "forwarded_to_city")


def _check_query(query: Query) -> None:
    for name in _TEXT_FILTERS:
        value = getattr(query, name)
        if value is not None and not isinstance(value, str):
            raise ValidationError(f"query.{name}", "must be text")
    for name in _FLAG_FILTERS:
        value = getattr(query, name)
        if value is not None and not isinstance(value, bool):
            raise ValidationError(f"query.{name}", "must be true, false or None")
    if not isinstance(query.overdue_unflagged, bool) or not isinstance(query.descending, bool):
        raise ValidationError("query", "overdue_unflagged and descending are true or false")


def _cursor(order: Order, cursor: tuple[Any, str]) -> tuple[Any, str]:
    value, after = cursor
    if not isinstance(after, str):
        raise ValidationError("query.after", "the cursor's id must be text")
    if order in (Order.RECEIVED, Order.DUE):
        return to_utc(value, "query.after"), after
    if not isinstance(value, str):
        raise ValidationError("query.after", f"the cursor's value must be text in {order.value} order")
    return value, after


def _chunks(values: Sequence[int]) -> Iterator[list[int]]:
    for start in range(0, len(values), _CHUNK):
        yield list(values[start : start + _CHUNK])


# --- backend specifics --------------------------------------------------------------------------------------
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
    if getattr(orig, "sqlstate", None) == "42P01":  # PostgreSQL: undefined_table
        return True
    args: tuple[Any, ...] = getattr(orig, "args", ())
    if args and args[0] == 1146:  # MariaDB: table doesn't exist
        return True
    return "no such table" in str(orig or exc).lower()


def _schema_note(found: str | None) -> str | None:
    """What to add to :class:`SchemaMismatch`'s own advice (run the upgrade) for this revision."""
    if found is None:
        return "the jianyi_flow tables are missing: SqlStore.open(url) also creates them, for tests and tools"
    from alembic.script import ScriptDirectory

    from .migrate import alembic_config

    try:
        known = ScriptDirectory.from_config(alembic_config()).get_revision(found) is not None
    except Exception:  # alembic raises its own errors for revisions it does not know
        known = False
    if known:
        return None
    return ("revision {found} is not one this jianyi_flow knows: the database was migrated by a newer "
            "jianyi_flow; upgrade the library (pip install -U jianyi_flow) on every process that opens it, "
            "do not run the upgrade").replace("{found}", found)
