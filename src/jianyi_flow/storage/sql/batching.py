"""``BatchingSqlStore``: a :class:`~jianyi_flow.sql.SqlStore` on SQLite whose batches are written set-based.

Outside :meth:`BatchingSqlStore.batch` it is a :class:`SqlStore`.  Inside a batch, a commit
does not write: it checks everything the database would refuse, takes the event's place in
the log and keeps the change in the batch's buffer.  The buffer is written with one
``executemany`` per statement (idempotency records, new rows, row updates grouped by the
columns they set, unit links, events, outbox messages, vault records, the log counter) when
something must read the database, and when the block ends.  So a batch of a few hundred
commands costs a few dozen statements instead of several per command, and still one
transaction.

The checks hold because the batch is one SQLite write transaction (``BEGIN IMMEDIATE``):
nothing else can write the database until the batch ends, so what the batch read of it, plus
its own buffer, is what the database holds.  This is why the store runs on SQLite only.

Inside a batch, on the thread that opened it:

* :meth:`~BatchingSqlStore.commit` raises :class:`~jianyi_flow.errors.DuplicateSuggestion`,
  :class:`~jianyi_flow.errors.NotFound`, :class:`~jianyi_flow.errors.ConcurrencyConflict`,
  :class:`~jianyi_flow.errors.IdempotencyKeyReused` or :class:`~jianyi_flow.errors.ValidationError`
  (a value, or a text SQLite cannot store) from the call itself, in the order :class:`SqlStore`
  checks them, and nothing of that change is kept; the batch's other commits stay.  ``seq``
  numbers run on from the log counter, read once per batch.
* :meth:`~BatchingSqlStore.load` serves a row the batch read or wrote from the batch;
  :meth:`~BatchingSqlStore.idempotency` serves keys the batch wrote or looked up.  Every
  other read (queries, counts, histories, scans, the vault, the outbox, named values) and
  every other write first writes the buffer, so it sees the batch's commits.
* A change that rewrites earlier events or forgets keys (erasure, the vault migration), or
  that writes over a stored row this version cannot decode, is written at once, after the
  buffer, as :class:`SqlStore` writes it.
* A failure while the buffer is written (the database refusing something the checks did not
  foresee, a full disk) fails the whole batch: it raises :class:`~jianyi_flow.errors.StoreError`
  there, later calls in the batch raise it too, and the batch is rolled back.  So does an
  interrupt inside a commit, even one the caller catches (the buffer may be half updated).
  An exception leaving the block rolls the whole batch back, as in :class:`SqlStore`.

The buffer holds the batch's plans (the parameters its commits write) and what the batch
read of each suggestion it touched: memory grows with the batch, never beyond it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Self, TypeVar

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine

from ...domain.codec import with_seq
from ...domain.model import Event, Suggestion
from ...domain.personal import PersonalRecord
from ...errors import (
    ConcurrencyConflict,
    DuplicateSuggestion,
    IdempotencyKeyReused,
    JianyiFlowError,
    NotFound,
    StoreError,
    ValidationError,
)
from ..base import Change, IdempotencyRecord
from .rows import (
    ACCOUNT_AT,
    COLUMN_FIELDS,
    PERSONAL_COLUMNS,
    SET_NAMES,
    UNIT_KEYS,
    UPDATES_MAX,
    VAULT_AT,
    Loaded,
    Plan,
    decode_stored,
    first_line,
    loaded_row,
    personal_from_row,
    plan_change,
    resolve_personal,
    suggestion_from_row,
)
from .schema import EVENT_SEQ, counters, events, personal_data, suggestions
from .store import SqlStore
from .types import Key

__all__ = ["BatchingSqlStore"]

T = TypeVar("T")


@attrs.define(slots=True)
class _Entry:
    """What a batch knows of one suggestion: the database's row, and the batch's own changes to it."""

    version: int | None
    """The suggestion's version with the batch's commits (``None``: there is no such row)."""
    events: int
    """The newest event version held, in the database or the buffer (0: none)."""
    base: Loaded | None
    """The row as the database holds it now (``None``: not in the database yet)."""
    record: PersonalRecord | None
    """The suggestion's vault record with the batch's commits."""
    plan: Plan | None = None
    """The batch's newest change of the suggestion (``None``: the batch changed nothing of it)."""
    row: Suggestion | None = None
    """The row as :meth:`BatchingSqlStore.load` returns it, once decoded."""


_MISSING: Any = object()


class _Undecodable(StoreError):
    """A stored row or vault record that cannot be decoded (what :meth:`SqlStore.load` raises for it)."""


@attrs.define(slots=True)
class _Pending:
    """One batch's buffer and what it learned of the database, on the thread that opened it."""

    seq: int | None = None
    """The last ``seq`` given (``None``: the log counter is still to be read)."""
    plans: list[tuple[Plan, int]] = attrs.field(factory=list)
    """The buffered changes with their ``seq``, in commit order."""
    rows: dict[str, _Entry] = attrs.field(factory=dict)
    keys: dict[tuple[str, str], IdempotencyRecord | None] = attrs.field(factory=dict)
    """Idempotency keys looked up or written in the batch (``None``: not held)."""


class BatchingSqlStore(SqlStore):
    """A :class:`SqlStore` on SQLite whose :meth:`batch` buffers its commits and writes them set-based.

    For bulk loads and simulations: see the module docstring for what it checks when, and
    what it trades (a failure while the buffer is written loses the whole batch).  Outside
    a batch every call is :class:`SqlStore`'s.  Only SQLite: other databases raise
    :class:`~jianyi_flow.errors.ValidationError` (their batches do not lock out other writers,
    so a check made before the write could be overtaken).
    """

    def __init__(self, url_or_engine: str | URL | Engine, **engine_kwargs: Any) -> None:
        _refuse_other_databases(url_or_engine)
        super().__init__(url_or_engine, **engine_kwargs)  # a URL that does not parse is refused here
        self._driver_error: type[Exception] = self._engine.dialect.loaded_dbapi.Error

    @classmethod
    def open(cls, url_or_engine: str | URL | Engine, *, migrate: bool = True, **engine_kwargs: Any) -> Self:
        """:meth:`SqlStore.open`, refusing another database before the migrations touch it."""
        _refuse_other_databases(url_or_engine)
        return super().open(url_or_engine, migrate=migrate, **engine_kwargs)

    def __repr__(self) -> str:
        return f"BatchingSqlStore({self._engine.url.render_as_string(hide_password=True)!r})"

    def _build_statements(self) -> None:
        super()._build_statements()
        s, ev, pd = suggestions, events, personal_data
        w_id: sa.BindParameter[str] = sa.bindparam("w_id", type_=Key())
        newest = sa.select(sa.func.max(ev.c.version)).where(ev.c.suggestion_id == s.c.id).scalar_subquery()
        # the row, its vault record and its newest event version in one round trip
        self._sel_probe = self._directly(
            sa.select(*self._row_columns, *self._derived_columns,
                      *[sa.type_coerce(pd.c[name], sa.types.NullType()).label(f"vault_{name}")
                        for name in PERSONAL_COLUMNS],
                      newest.label("newest_event"))
            .select_from(s.outerjoin(pd, pd.c.suggestion_id == s.c.id))
            .where(s.c.id == w_id))
        # the batch's point reads go through _fetch, which needs their SQL text
        self._sel_newest_event = self._directly(
            sa.select(sa.func.max(ev.c.version)).where(ev.c.suggestion_id == w_id))
        self._sel_exists = self._directly(sa.select(
            sa.select(sa.func.max(ev.c.version)).where(ev.c.suggestion_id == w_id).scalar_subquery(),
            sa.exists().where(s.c.id == w_id)))
        self._set_seq = self._directly(
            counters.update().where(counters.c.name == sa.bindparam("w_name", type_=Key()))
            .values(value=sa.bindparam("n_value", type_=sa.BigInteger())))

    # --- the batch ---------------------------------------------------------------------------------
    def _pending(self) -> _Pending | None:
        pending: _Pending | None = getattr(self._local, "pending", None)
        return pending

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """:meth:`SqlStore.batch`, its commits buffered and written set-based (see the module docstring).

        A failing commit raises from its own :meth:`commit` and the batch's other commits
        stay; reads on this thread see the batch's commits; the block's end writes the
        buffer and commits, and an exception leaving the block rolls the whole batch back.
        """
        local = self._local
        if getattr(local, "batch", None) is not None or getattr(local, "scope", None) is not None:
            with super().batch():  # joins the open batch or transaction
                yield
            return
        with super().batch():
            pending = local.pending = _Pending()
            try:
                yield
                self._broken()
                self._flush(pending)
            finally:
                local.pending = None

    def _broken(self) -> None:
        broken = getattr(self._local, "broken", None)
        if broken:
            raise StoreError(f"the batch failed earlier and will be rolled back: {broken}")

    def _read(self, work: Callable[[Connection], T], *, snapshot: bool = False) -> T:
        pending = self._pending()
        if pending is not None:
            self._broken()
            self._flush(pending)
        return super()._read(work, snapshot=snapshot)

    def _write(self, work: Callable[[Connection], T]) -> T:
        pending = self._pending()
        if pending is not None:
            self._broken()
            self._flush(pending)
        return super()._write(work)

    def _batch_read(self, work: Callable[[Connection], T]) -> T:
        """``work`` on the batch's connection, without writing the buffer first."""
        return super()._read(work)

    # --- writing -----------------------------------------------------------------------------------
    def commit(self, change: Change) -> Event:
        pending = self._pending()
        if pending is None:
            return super().commit(change)
        plan = plan_change(change)
        self._check_open()
        self._broken()
        if change.redacted or change.forget_keys:
            return self._commit_now(pending, change)
        # texts are checked where SqlStore sends them: the key, the row, then (once the row is found
        # in order) the event, then the messages and the vault record
        sid: str = plan.row["id"]
        _check_text(plan.record, {"id": sid})  # the id is sent with every statement, the key's first
        entry = pending.rows.get(sid)
        if entry is None:
            probed = self._probe(sid, create=plan.create)
            if probed is None:  # a stored row this version cannot read: SqlStore's commit writes over it
                return self._commit_now(pending, change)
            entry = pending.rows[sid] = probed
        record = change.idempotency
        held: IdempotencyRecord | None = None
        if record is not None:
            key = (record.scope, record.key)
            held = pending.keys.get(key, _MISSING)
            if held is _MISSING:
                held = pending.keys[key] = self._stored_key(*key)
        if held is None:  # a taken key is refused before the row is sent
            _check_text(plan.row, *plan.units)
        expected = change.expected_version
        if plan.create:
            if entry.version is not None or entry.events:
                raise DuplicateSuggestion(sid)
        elif entry.version is None:
            raise NotFound("suggestion", sid)
        elif entry.version != expected:
            raise ConcurrencyConflict(sid, expected, entry.version)
        if held is not None:
            assert record is not None
            raise IdempotencyKeyReused(record.key, "another command")
        _check_text(plan.event)
        if entry.events >= plan.event["version"]:  # an event at this version exists without its row
            raise ConcurrencyConflict(sid, expected)
        _check_text(*plan.messages, plan.personal)
        if pending.seq is None:
            pending.seq = self._batch_read(self._log_end)
        try:
            seq = pending.seq = pending.seq + 1
            pending.plans.append((plan, seq))
            if record is not None:
                pending.keys[(record.scope, record.key)] = record
            entry.version = entry.events = plan.event["version"]
            entry.plan, entry.row = plan, None
            if change.personal_data is not None:
                entry.record = change.personal_data
            return with_seq(change.event, seq)
        except BaseException as exc:  # e.g. KeyboardInterrupt: the buffer may be half updated
            self._local.broken = f"a commit was interrupted while it was buffered: {type(exc).__name__}"
            raise

    def _commit_now(self, pending: _Pending, change: Change) -> Event:
        """A change that rewrites earlier events or forgets keys: after the buffer, as :class:`SqlStore` writes it."""
        self._flush(pending)
        sid = change.suggestion.id
        pending.rows.pop(sid, None)
        if change.forget_keys:
            pending.keys.clear()
        elif change.idempotency is not None:  # written by SqlStore's commit: read it again when asked
            pending.keys.pop((change.idempotency.scope, change.idempotency.key), None)
        pending.seq = None  # SqlStore's commit moves the log counter itself
        return super().commit(change)

    def _fetch(self, stmt: sa.Executable, params: dict[str, Any]) -> Sequence[Any] | None:
        """The first row of one of the batch's point reads, or ``None``.

        Sent through the driver's cursor of the batch's connection (``Connection.connection``):
        for a one-row read by key, SQLAlchemy's result set-up costs more than SQLite's
        lookup (for speed).
        """
        direct = self._direct[stmt]
        conn: Connection = self._local.batch
        try:
            cursor = conn.connection.cursor()
            try:
                cursor.execute(direct.sql, direct.bind(params))
                row: Sequence[Any] | None = cursor.fetchone()
            finally:
                cursor.close()
        except self._driver_error as exc:
            raise StoreError(f"sqlite read failed: {type(exc).__name__}: {first_line(exc)}") from None
        except UnicodeError as exc:
            raise ValidationError("text", f"cannot be compared: {exc}") from None
        return row

    def _probe(self, sid: str, *, create: bool) -> _Entry | None:
        """What the database holds of ``sid``: its row (read as :meth:`load` reads it) and its newest event
        (``None``: a row or vault record that cannot be decoded, which :meth:`load` reports)."""
        if create:  # a new id: one round trip says whether anything of it exists
            found = self._fetch(self._sel_exists, {"w_id": sid})
            assert found is not None
            newest, exists = found
            if not exists:
                return _Entry(None, 0 if newest is None else int(newest), None, None)
        try:
            entry = self._row_of(sid)
        except _Undecodable:
            return None
        if entry is None:
            found = self._fetch(self._sel_newest_event, {"w_id": sid})
            newest = None if found is None else found[0]
            return _Entry(None, 0 if newest is None else int(newest), None, None)
        return entry

    def _row_of(self, sid: str) -> _Entry | None:
        row = self._fetch(self._sel_probe, {"w_id": sid})
        if row is None:
            return None
        try:
            s = decode_stored(suggestion_from_row, row, sid, "row")
            record = None if row[VAULT_AT] is None else decode_stored(personal_from_row, row[VAULT_AT:-1], sid,
                                                                      "vault record")
        except StoreError as exc:
            raise _Undecodable(str(exc)) from None
        newest = row[-1]
        return _Entry(s.version, 0 if newest is None else int(newest), loaded_row(s, row), record,
                      row=resolve_personal(s, record, row[ACCOUNT_AT]))

    def _stored_key(self, scope: str, key: str) -> IdempotencyRecord | None:
        row = self._fetch(self._sel_key, {"w_scope": scope, "w_key": key})
        if row is None:
            return None
        scope, key, sid, version, command, print_ = row
        return IdempotencyRecord(scope, key, sid, int(version), command, print_)

    def _log_end(self, conn: Connection) -> int:
        value = conn.execute(self._sel_last_seq).scalar_one_or_none()
        if value is None:
            raise StoreError(f"the event counter ({counters.name} {EVENT_SEQ!r}) is missing: "
                             "run `jianyi-flow db upgrade URL` on a database the migrations built")
        return int(value)

    # --- writing the buffer ------------------------------------------------------------------------
    def _flush(self, pending: _Pending) -> None:
        """Write the buffered changes, one ``executemany`` per statement; a failure fails the whole batch."""
        if not pending.plans:
            return
        conn: Connection = self._local.batch
        try:
            self._write_plans(conn, pending)
        except JianyiFlowError as exc:
            self._local.broken = str(exc)
            raise
        except sa.exc.SQLAlchemyError as exc:
            error = self._error(exc, "write")
            self._local.broken = str(error)
            raise StoreError(f"writing the batch failed, it will be rolled back: {error}") from None
        except UnicodeError as exc:
            self._local.broken = f"text cannot be stored: {first_line(exc)}"
            raise StoreError(f"writing the batch failed, it will be rolled back: {self._local.broken}") from None
        except Exception as exc:  # e.g. a value the driver cannot bind: still the library's error
            self._local.broken = f"{type(exc).__name__}: {first_line(exc)}"
            raise StoreError(f"writing the batch failed, it will be rolled back: {self._local.broken}") from None
        except BaseException as exc:
            self._local.broken = f"writing the batch was interrupted: {type(exc).__name__}"
            raise

    def _write_plans(self, conn: Connection, pending: _Pending) -> None:
        plans = pending.plans
        changed = {plan.row["id"]: pending.rows[plan.row["id"]] for plan, _ in plans}
        keys = [plan.record for plan, _ in plans if plan.record is not None]
        if keys:
            self._exec(conn, self._ins_key, keys)
        created = [entry for entry in changed.values() if entry.base is None]
        if created:
            self._exec(conn, self._ins_row, [entry.plan.row for entry in created if entry.plan is not None])
        updates: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        removed: list[dict[str, Any]] = []
        copies: list[dict[str, Any]] = []
        added: list[dict[str, Any]] = []
        for sid, entry in changed.items():
            plan, base = entry.plan, entry.base
            assert plan is not None
            if base is None:
                added += plan.units
                continue
            row = plan.row
            # only the columns that changed: SQLite rewrites every index on a column set, even to its value
            names = tuple(name for name in SET_NAMES if name == "data" or row[name] != base.values[name])
            if names not in self._updates and len(self._updates) >= UPDATES_MAX:
                names = SET_NAMES
            updates.setdefault(names, []).append(
                {**{name: row[name] for name in names}, "w_id": sid, "w_version": base.version})
            keys_same = all(row[name] == base.values[name] for name in UNIT_KEYS)
            links = {(u["relation"], u["unit"]) for u in plan.units}
            if base.links is None or not base.links <= links:
                removed.append({"w_id": sid})
                added += plan.units
                continue
            if not keys_same and base.links:
                copies.append(plan.copies)
            added += [u for u in plan.units if (u["relation"], u["unit"]) not in base.links]
        for names, params in updates.items():
            stmt = self._upd_row if names is SET_NAMES else self._updates.get(names)
            if stmt is None:
                stmt = self._update_of(names)
            if self._exec(conn, stmt, params).rowcount != len(params):
                raise StoreError("a buffered row update found its row changed: the batch is rolled back")
        if removed:
            self._exec(conn, self._del_units, removed)
        if copies:
            self._exec(conn, self._upd_unit_copies, copies)
        if added:
            self._exec(conn, self._ins_units, added)
        self._exec(conn, self._ins_event, [{**plan.event, "seq": seq} for plan, seq in plans])
        messages = [m for plan, _ in plans for m in plan.messages]
        if messages:
            self._exec(conn, self._ins_outbox, messages)
        vault = {plan.row["id"]: plan.personal for plan, _ in plans if plan.personal is not None}
        if vault:
            self._exec(conn, self._del_personal, [{"w_id": sid} for sid in vault])
            self._exec(conn, self._ins_personal, list(vault.values()))
        self._exec(conn, self._set_seq, {"w_name": EVENT_SEQ, "n_value": plans[-1][1]})
        for entry in changed.values():
            plan = entry.plan
            assert plan is not None
            entry.base = Loaded(plan.row["version"], plan.row,
                                frozenset((u["relation"], u["unit"]) for u in plan.units))
        pending.plans = []

    # --- reading -----------------------------------------------------------------------------------
    def load(self, suggestion_id: str) -> Suggestion:
        pending = self._pending()
        if pending is None or not isinstance(suggestion_id, str):
            return super().load(suggestion_id)
        self._check_open()
        self._broken()
        entry = pending.rows.get(suggestion_id)
        if entry is None:
            try:
                entry = self._row_of(suggestion_id)
            except _Undecodable as exc:
                raise StoreError(str(exc)) from None
            if entry is None:
                raise NotFound("suggestion", suggestion_id)
            pending.rows[suggestion_id] = entry
        if entry.version is None:
            raise NotFound("suggestion", suggestion_id)
        if entry.row is None:
            entry.row = self._buffered_row(entry)
        return entry.row

    @staticmethod
    def _buffered_row(entry: _Entry) -> Suggestion:
        """A buffered row as :meth:`SqlStore.load` would read it back once written (decoded the same way)."""
        plan = entry.plan
        assert plan is not None
        row = plan.row
        values: Sequence[Any] = (*(row[name] for name in COLUMN_FIELDS), row["data"], row["units"],
                                 row["proposer_account"], row["reported_upward"], row["forwarded_to_city"])
        s = decode_stored(suggestion_from_row, values, row["id"], "row")
        return resolve_personal(s, entry.record, values[ACCOUNT_AT])

    def idempotency(self, scope: str, key: str) -> IdempotencyRecord | None:
        pending = self._pending()
        if pending is None or not isinstance(scope, str) or not isinstance(key, str):
            return super().idempotency(scope, key)
        self._check_open()
        self._broken()
        held = pending.keys.get((scope, key), _MISSING)
        if held is _MISSING:
            held = pending.keys[(scope, key)] = self._stored_key(scope, key)
        result: IdempotencyRecord | None = held
        return result


def _check_text(*params: dict[str, Any] | None) -> None:
    """Every text ``params`` bind can be sent to SQLite (which refuses lone surrogates), as SqlStore finds out
    when it sends them: a :class:`ValidationError` from the commit, not a failed batch later."""
    for values in params:
        for value in () if values is None else values.values():
            if isinstance(value, str) and not value.isascii():
                try:
                    value.encode()
                except UnicodeError as exc:
                    raise ValidationError("text", f"cannot be stored: {exc}") from None


def _refuse_other_databases(url_or_engine: str | URL | Engine) -> None:
    """Refuse a database other than SQLite before an engine is made or a connection opened."""
    backend = url_or_engine.dialect.name if isinstance(url_or_engine, Engine) else _backend_of(url_or_engine)
    if backend not in (None, "sqlite"):
        raise ValidationError("engine", f"BatchingSqlStore runs on SQLite only: use SqlStore on {backend}")


def _backend_of(url: str | URL) -> str | None:
    """The backend a URL names (``None`` if it does not parse: :class:`SqlStore` says why)."""
    try:
        return sa.engine.make_url(url).get_backend_name()
    except (sa.exc.ArgumentError, ValueError, TypeError):
        return None
