"""What only SqlStore has: opening, SQLite settings, error translation, bad arguments, retries, scans.

The behaviour every store shares is in the contract kit (tests/test_store_contract.py).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.pool import StaticPool

from dbs import (
    BACKENDS,
    backend_store,
    mysql_migrated,
    mysql_url,
    postgres_migrated,
    postgres_url,
    sqlite_copy,
    sqlite_template,
    wipe,
)
from jianyi_flow import SHANGHAI
from jianyi_flow.errors import (
    ConcurrencyConflict,
    DuplicateSuggestion,
    IdempotencyKeyReused,
    JianyiFlowError,
    NotFound,
    StoreError,
    ValidationError,
)
from jianyi_flow.sql import SqlStore
from jianyi_flow.storage.base import Change, IdempotencyRecord, Order, Query
from jianyi_flow.storage.sql.schema import (
    EVENT_SEQ,
    counters,
    events,
    idempotency,
    outbox,
    suggestion_units,
    suggestions,
)
from jianyi_flow.testing import T0, advance, create, make_suggestion, message

__all__ = ["mysql_migrated", "mysql_url", "postgres_migrated", "postgres_url", "sqlite_template"]  # fixtures


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    return sqlite_copy(sqlite_template, tmp_path)


@pytest.fixture
def store(sqlite_url: str) -> Iterator[SqlStore]:
    with SqlStore(sqlite_url) as store:
        yield store


@pytest.fixture(params=BACKENDS)
def any_store(request: pytest.FixtureRequest, sqlite_template: Path, tmp_path: Path) -> Iterator[SqlStore]:
    """An empty SqlStore on each backend."""
    yield from backend_store(request, sqlite_template, tmp_path)


def count(store: SqlStore, table: sa.Table) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def row_counts(store: SqlStore) -> dict[str, int]:
    return {t.name: count(store, t) for t in (suggestions, suggestion_units, events, outbox, idempotency)}


def seqs(store: SqlStore) -> list[int]:
    with store.engine.connect() as conn:
        return list(conn.execute(sa.select(events.c.seq).order_by(events.c.seq)).scalars())


# --- opening ------------------------------------------------------------------------------------
def test_sqlite_connections_get_wal_synchronous_normal_foreign_keys_and_a_busy_timeout(store: SqlStore) -> None:
    store.commit(create(make_suggestion("p-1")))
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000


def test_an_engine_passed_in_is_used_configured_and_not_disposed(sqlite_url: str) -> None:
    engine = sa.create_engine(sqlite_url)  # no listeners of ours
    store = SqlStore(engine)
    store.commit(create(make_suggestion("e-1", lead_unit="u1")))
    assert store.engine is engine
    with engine.connect() as conn:  # the store set up the connection it wrote on
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    store.close()
    with engine.connect() as conn:  # still the caller's to use
        assert conn.execute(sa.select(suggestions.c.id)).scalars().all() == ["e-1"]
    engine.dispose()
    with pytest.raises(ValidationError):
        SqlStore(engine, pool_size=3)


def test_in_memory_sqlite_is_one_database_for_every_thread() -> None:
    with SqlStore.open("sqlite://") as store:
        assert isinstance(store.engine.pool, StaticPool)
        seen: list[Any] = []
        writer = threading.Thread(target=lambda: store.commit(create(make_suggestion("m-1"))))
        writer.start()
        writer.join()
        reader = threading.Thread(target=lambda: seen.append(store.load("m-1").id))
        reader.start()
        reader.join()
        assert seen == ["m-1"]
    with pytest.raises(ValidationError, match="StaticPool"):
        SqlStore(sa.create_engine("sqlite://"))  # one database per connection: the store would lose rows


@pytest.mark.postgres
def test_repr_hides_the_password(postgres_migrated: str) -> None:
    url = sa.make_url(postgres_migrated).set(password="s3cret")  # the test server trusts local connections
    with SqlStore(url) as store:
        assert "s3cret" not in repr(store) and "127.0.0.1" in repr(store)


@pytest.mark.mysql
def test_mariadb_connects_in_utf8mb4_at_read_committed(mysql_migrated: str) -> None:
    with SqlStore(mysql_migrated) as store:
        assert store.engine.url.query["charset"] == "utf8mb4"
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT @@character_set_client").scalar() == "utf8mb4"
            level = conn.exec_driver_sql("SELECT @@tx_isolation").scalar()
            assert str(level).replace("-", " ") == "READ COMMITTED"


@pytest.mark.mysql
def test_mariadb_key_columns_are_binary_no_pad(mysql_migrated: str) -> None:
    """Every id, key and code column: a PAD SPACE collation would make ``"k"`` and ``"k "`` one key."""
    with SqlStore(mysql_migrated) as store, store.engine.connect() as conn:
        found = dict(conn.execute(sa.text(
            "SELECT CONCAT(table_name, '.', column_name), collation_name FROM information_schema.columns "
            "WHERE table_schema = DATABASE() AND table_name LIKE 'jianyi\\_%' AND collation_name IS NOT NULL")).all())
    keys = {f"{t.name}.{c.name}" for t in (suggestions, suggestion_units, events, outbox, idempotency, counters)
            for c in t.columns if type(c.type).__name__ == "Key"}
    assert keys and {name: found[name] for name in keys} == dict.fromkeys(keys, "utf8mb4_nopad_bin")


def test_ids_keys_and_scopes_compare_byte_for_byte(any_store: SqlStore) -> None:
    store = any_store
    store.commit(create(make_suggestion("k"), key="k", scope="s"))
    store.commit(create(make_suggestion("k "), key="k ", scope="s"))  # neither is a duplicate
    store.commit(create(make_suggestion("K"), key="k", scope="s "))
    assert [store.load(i).id for i in ("k", "k ", "K")] == ["k", "k ", "K"]
    assert [r.suggestion_id for r in (store.idempotency("s", "k"), store.idempotency("s", "k "),
                                      store.idempotency("s ", "k")) if r is not None] == ["k", "k ", "K"]
    assert store.idempotency("s", "K") is None
    assert [s.id for s in store.query(Query())] == ["K", "k", "k "]  # by code point, as Python sorts
    store.set_meta("m", "1")
    store.set_meta("m ", "2")
    assert (store.get_meta("m"), store.get_meta("m "), store.get_meta("M")) == ("1", "2", None)


# --- errors ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://postgres@127.0.0.1:1/test?connect_timeout=2",
        "mysql+pymysql://root@127.0.0.1:1/test?connect_timeout=2",
        "sqlite:////nonexistent-dir/jianyi.db",
    ],
)
def test_an_unreachable_database_raises_store_error_when_opened(url: str) -> None:
    with pytest.raises(StoreError) as caught:
        SqlStore(url)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_a_closed_store_raises_store_error(store: SqlStore) -> None:
    store.close()
    store.close()  # twice is fine
    calls = [
        lambda: store.load("x"),
        lambda: store.history("x"),
        lambda: store.query(Query()),
        lambda: store.count(Query()),
        lambda: store.idempotency("s", "k"),
        lambda: store.commit(create(make_suggestion("x"))),
        lambda: store.claim(1, T0, dt.timedelta(minutes=1)),
        lambda: store.mark_sent([1], T0),
        lambda: store.scan_histories(None, 10),
        lambda: store.last_seq(),
        lambda: store.get_meta("m"),
        lambda: store.set_meta("m", "v"),
    ]
    for call in calls:
        with pytest.raises(StoreError, match="closed"):
            call()


def test_a_database_error_mid_transaction_rolls_everything_back(store: SqlStore) -> None:
    first = create(make_suggestion("mid-1", lead_unit="u1"), notify=["office"])
    store.commit(first)
    before = row_counts(store)
    with store.engine.begin() as conn:  # the event insert, after the row update, will fail
        conn.exec_driver_sql("ALTER TABLE jianyi_events RENAME TO jianyi_events_gone")
    change = advance(first.suggestion, kind="transfer", lead_unit="u2", notify=["unit:u2"], key="mid-key")
    with pytest.raises(StoreError) as caught:
        store.commit(change)
    assert "jianyi_events" in str(caught.value) and "db upgrade" in str(caught.value)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE jianyi_events_gone RENAME TO jianyi_events")
    assert store.load("mid-1") == first.suggestion
    assert [s.id for s in store.query(Query(unit="u1"))] == ["mid-1"]
    assert store.idempotency(change.idempotency.scope, "mid-key") is None  # type: ignore[union-attr]
    assert row_counts(store) == before
    assert store.last_seq() == 1 and store.commit(change).seq == 2  # the failed commit used no log position


def test_a_missing_event_counter_is_a_store_error_not_a_gap(store: SqlStore) -> None:
    with store.engine.begin() as conn:
        conn.execute(counters.delete())
    with pytest.raises(StoreError, match="counter"):
        store.commit(create(make_suggestion("c-1")))
    assert row_counts(store) == dict.fromkeys(row_counts(store), 0)


def test_naive_datetimes_are_refused_before_anything_is_written(any_store: SqlStore) -> None:
    store = any_store
    naive = dt.datetime(2024, 8, 21, 9, 0)
    statements = Statements(store.engine)
    with pytest.raises(ValidationError, match="due_at"):
        store.commit(create(make_suggestion("n-1", due_at=naive)))
    with pytest.raises(ValidationError, match="replied_at"):  # a field kept in the JSON document
        store.commit(create(make_suggestion("n-2", replied_at=naive)))
    with pytest.raises(ValidationError):
        store.commit(create(make_suggestion("n-3"), messages=[message("n-3", 1, at=naive)]))
    assert statements.seen == []
    with pytest.raises(ValidationError):
        store.query(Query(due_before=naive))
    with pytest.raises(ValidationError):
        store.count(Query(received_after=naive))
    with pytest.raises(ValidationError):
        store.query(Query(order=Order.DUE, after=(naive, "x")))
    with pytest.raises(ValidationError):
        store.claim(1, naive, dt.timedelta(minutes=1))
    with pytest.raises(ValidationError, match="at"):
        store.mark_sent([], naive)  # even with nothing to mark
    assert statements.seen == [] and sum(row_counts(store).values()) == 0


class Statements:
    """Every statement the engine sends from now on."""

    def __init__(self, engine: sa.Engine) -> None:
        self.seen: list[str] = []
        sa_event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.seen.append(statement)


def test_bad_arguments_are_validation_errors_before_the_database(any_store: SqlStore) -> None:
    """Values no column can hold: too big for the driver, too long, of the wrong type."""
    store = any_store
    ok = create(make_suggestion("b-1"))
    statements = Statements(store.engine)
    bad_changes = [
        attrs.evolve(ok, expected_version=10**30),
        create(make_suggestion("x" * 65)),
        create(make_suggestion("b-3", area=5)),
        create(make_suggestion("b-4", lead_unit="u" * 65)),
        create(make_suggestion("b-5", co_units=("u" * 65,))),
        attrs.evolve(ok, suggestion=attrs.evolve(ok.suggestion, state="nonsense")),
        create(make_suggestion("b-7"), messages=[message("b-7", 1, recipient="r" * 200)]),
        create(make_suggestion("b-8"), messages=[message("b-8", 1, payload={"x": {1, 2}})]),
        create(make_suggestion("b-9"), key="k" * 256),
        attrs.evolve(ok, idempotency=IdempotencyRecord("s", "k", "b-1", 1, "receive", "f" * 65)),
        "not a change",
    ]
    for change in bad_changes:
        with pytest.raises(ValidationError):
            store.commit(change)  # type: ignore[arg-type]
    for call in (
        lambda: store.query(Query(limit=10**30)),
        lambda: store.query(Query(limit=-1)),
        lambda: store.query(Query(limit=True)),  # type: ignore[arg-type]
        lambda: store.query(Query(area=5)),  # type: ignore[arg-type]
        lambda: store.query(Query(provisional="yes")),  # type: ignore[arg-type]
        lambda: store.query(Query(order=Order.REGISTRATION, after=(5, "x"))),
        lambda: store.count("not a query"),  # type: ignore[arg-type]
        lambda: store.scan_histories(None, 10**30),
        lambda: store.scan_histories(5, 10),  # type: ignore[arg-type]
        lambda: store.claim(10**30, T0, dt.timedelta(minutes=1)),
        lambda: store.claim(1, T0, dt.timedelta(0)),
        lambda: store.claim(1, T0, dt.timedelta.max),
        lambda: store.mark_sent(["1"], T0),  # type: ignore[list-item]
        lambda: store.mark_sent([True], T0),
        lambda: store.mark_sent("12", T0),  # type: ignore[arg-type]
        lambda: store.set_meta("m" * 256, "v"),
        lambda: store.set_meta("m", 5),  # type: ignore[arg-type]
    ):
        with pytest.raises(ValidationError):
            call()
    assert statements.seen == []
    store.mark_sent([10**30, -1, 0], T0)  # ids no message can have: nothing to do, as in MemoryStore
    assert sum(row_counts(store).values()) == 0
    assert (store.history(5), store.idempotency(5, "k")) == ([], None)  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        store.load(5)  # type: ignore[arg-type]


@pytest.mark.postgres
def test_a_value_the_database_refuses_is_a_validation_error(postgres_migrated: str) -> None:
    """PostgreSQL text cannot hold NUL; the driver's DataError becomes the library's error, nothing written."""
    with SqlStore(postgres_migrated) as store:
        wipe(store.engine)
        with pytest.raises(ValidationError, match="refused"):
            store.commit(create(make_suggestion("nul-1", area="a\x00b")))
        with pytest.raises(NotFound):
            store.load("nul-1")
        assert store.last_seq() == 0


def test_errors_are_never_sqlalchemy_or_driver_exceptions(store: SqlStore) -> None:
    store.commit(create(make_suggestion("x-1")))
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE jianyi_meta")
    for call in (lambda: store.get_meta("m"), lambda: store.set_meta("m", "v")):
        with pytest.raises(JianyiFlowError) as caught:
            call()
        assert type(caught.value) is StoreError and "jianyi_meta" in str(caught.value)


# --- commit: errors in the order MemoryStore checks them -----------------------------------------------------
def test_a_taken_key_is_reported_after_the_rows_own_problem(any_store: SqlStore) -> None:
    """The record is written first, but the error is the one MemoryStore gives: the row's, then the key's."""
    store = any_store
    first = create(make_suggestion("o-1"), key="K")
    store.commit(first)
    second = advance(first.suggestion, key="K2")
    store.commit(second)
    with pytest.raises(DuplicateSuggestion):
        store.commit(create(make_suggestion("o-1"), key="K"))
    with pytest.raises(ConcurrencyConflict):
        store.commit(advance(first.suggestion, key="K"))
    with pytest.raises(NotFound):
        store.commit(advance(make_suggestion("o-9"), key="K"))
    with pytest.raises(IdempotencyKeyReused):
        store.commit(advance(second.suggestion, key="K"))
    with pytest.raises(IdempotencyKeyReused):
        store.commit(create(make_suggestion("o-2"), key="K"))
    assert seqs(store) == [1, 2] and store.last_seq() == 2


def test_an_update_that_changes_units_rewrites_the_unit_rows(any_store: SqlStore) -> None:
    store = any_store
    first = create(make_suggestion("u-1", lead_unit="a", recommending_unit="r", co_units=("b", "c")))
    store.commit(first)
    moved = advance(first.suggestion, lead_unit="b", co_units=("a",), due_at=T0 + dt.timedelta(days=3))
    store.commit(moved)
    with store.engine.connect() as conn:
        rows = set(conn.execute(sa.select(suggestion_units.c.unit, suggestion_units.c.relation,
                                          suggestion_units.c.due_at)).all())
    due = T0 + dt.timedelta(days=3)
    assert rows == {("b", "lead", due), ("r", "recommending", due), ("a", "co", due), ("r", "any", due),
                    ("b", "any", due), ("a", "any", due)}
    later = advance(moved.suggestion, due_at=due + dt.timedelta(days=1))  # same units: only the copies move
    store.commit(later)
    assert [s.id for s in store.query(Query(co_unit="a", order=Order.DUE, due_after=due + dt.timedelta(hours=1)))] \
        == ["u-1"]


# --- retries --------------------------------------------------------------------------------------
class _Deadlock(Exception):
    sqlstate = "40P01"


def test_a_transaction_killed_by_a_deadlock_is_retried(store: SqlStore, monkeypatch: pytest.MonkeyPatch) -> None:
    real = store._apply
    failures = [2]

    def flaky(conn: sa.Connection, plan: Any) -> Any:
        result = real(conn, plan)  # the writes happen, then the database kills the transaction
        if failures[0]:
            failures[0] -= 1
            raise sa.exc.OperationalError("COMMIT", {}, _Deadlock("deadlock detected"))
        return result

    monkeypatch.setattr(store, "_apply", flaky)
    change = create(make_suggestion("dl-1"), notify=["office"], key="dl-key")
    assert store.commit(change).seq == 1  # third attempt succeeds; the killed ones used no seq
    assert store.load("dl-1") == change.suggestion
    assert count(store, events) == 1 and count(store, outbox) == 1 and count(store, idempotency) == 1

    failures[0] = 5
    with pytest.raises(StoreError, match="deadlock"):
        store.commit(advance(change.suggestion))
    assert store.load("dl-1") == change.suggestion and store.last_seq() == 1


def test_sqlite_writers_on_many_threads_never_see_database_is_locked(store: SqlStore) -> None:
    threads = 8
    for n in range(threads):
        store.commit(create(make_suggestion(f"lk-{n}")))
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            current = store.load(f"lk-{n}")
            for _ in range(15):
                change = advance(current, notify=["office"])
                store.commit(change)
                current = change.suggestion
                store.claim(2, T0, dt.timedelta(seconds=1))
        except BaseException as exc:
            errors.append(exc)

    pool = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(120)
    assert errors == []
    assert seqs(store) == list(range(1, threads * 16 + 1)) and store.last_seq() == threads * 16


# --- outbox ------------------------------------------------------------------------------------------
def test_mark_sent_records_when_the_first_time(any_store: SqlStore) -> None:
    store = any_store
    store.commit(create(make_suggestion("ms-1"), notify=["office", "unit:u1"]))
    assert store.outbox_pending() == 2
    [first, _] = store.claim(5, T0, dt.timedelta(minutes=1))
    assert first.id is not None
    sent_at = dt.datetime(2024, 8, 21, 10, 0, 0, 123_456, tzinfo=SHANGHAI)
    store.mark_sent([first.id], sent_at)
    store.mark_sent([first.id], sent_at + dt.timedelta(hours=1))  # the first time counts
    assert store.outbox_pending() == 1
    [h] = store.scan_histories(None, 10)
    assert [(m.recipient, m.sent_at) for m in h.messages] == [("office", sent_at), ("unit:u1", None)]


# --- scans -------------------------------------------------------------------------------------------
def _without_foreign_keys(store: SqlStore, sql: str, **params: Any) -> None:
    """Run ``sql`` as someone with a SQL console would, foreign keys switched off for the session."""
    with store.engine.connect() as conn:
        name = store.engine.dialect.name
        if name == "sqlite":
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        elif name == "postgresql":
            conn.exec_driver_sql("SET session_replication_role = replica")
        else:
            conn.exec_driver_sql("SET foreign_key_checks = 0")
        conn.execute(sa.text(sql), params)
        conn.commit()
        if name == "sqlite":
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")
        elif name == "postgresql":
            conn.exec_driver_sql("SET session_replication_role = DEFAULT")
        else:
            conn.exec_driver_sql("SET foreign_key_checks = 1")


def test_scan_histories_reads_a_page_in_four_statements_and_shows_deleted_rows(any_store: SqlStore) -> None:
    store = any_store
    for n in range(12):
        first = create(make_suggestion(f"h{n:02d}"), notify=["office"])
        store.commit(first)
        store.commit(advance(first.suggestion, notify=["unit:u1"]))
    store.commit(create(make_suggestion("z-row-only")))
    _without_foreign_keys(store, "DELETE FROM jianyi_suggestion_units WHERE suggestion_id = :sid", sid="h05")
    _without_foreign_keys(store, "DELETE FROM jianyi_suggestions WHERE id = :sid", sid="h05")
    statements = Statements(store.engine)
    page = store.scan_histories("h02", 5)
    selects = [s for s in statements.seen if s.lstrip().upper().startswith("SELECT")]
    # four, and a fifth for the vault records of rows that are gone (an audit must see them)
    assert len(selects) == 5 and "jianyi_personal_data" in selects[-1], selects
    assert [h.suggestion_id for h in page] == ["h03", "h04", "h05", "h06", "h07"]
    statements.seen.clear()
    store.scan_histories("h05", 5)
    assert len([s for s in statements.seen if s.lstrip().upper().startswith("SELECT")]) == 4
    gone = page[2]
    assert gone.row is None and [e.version for e in gone.events] == [1, 2] and len(gone.messages) == 2
    assert all(h.row is not None and h.row.version == 2 for h in page if h is not gone)
    assert [h.suggestion_id for h in store.scan_histories("h10", 100)] == ["h11", "z-row-only"]
    assert store.scan_histories("zz", 100) == [] and store.scan_histories(None, 0) == []


def test_an_undecodable_row_is_reported_in_the_scan_not_raised(any_store: SqlStore) -> None:
    store = any_store
    for sid in ("d-1", "d-2", "d-3"):
        store.commit(create(make_suggestion(sid)))
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE jianyi_suggestions SET data = '{nope' WHERE id = 'd-2'"))
        conn.execute(sa.text("UPDATE jianyi_events SET to_state = 'hacked' WHERE suggestion_id = 'd-3'"))
    page = store.scan_histories(None, 10)
    assert [(h.suggestion_id, h.problem is None) for h in page] == [("d-1", True), ("d-2", False), ("d-3", False)]
    assert "row" in (page[1].problem or "") and "event" in (page[2].problem or "")
    assert page[1].row is None and page[1].events == ()
    with pytest.raises(StoreError, match="cannot be decoded"):
        store.load("d-2")
    with pytest.raises(StoreError, match="cannot be decoded"):
        store.history("d-3")


def test_a_data_document_naming_unknown_fields_or_columns_loads_without_them(store: SqlStore) -> None:
    """A field a newer version added to ``data``, or a column's name there, does not reach the row."""
    store.commit(create(make_suggestion("f-1", title="原标题")))
    before = store.load("f-1")
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE jianyi_suggestions SET data = json_set(data, '$.field_of_tomorrow', 1, "
                             "'$.state', 'hacked', '$.title', '新标题') WHERE id = 'f-1'"))
    loaded = store.load("f-1")
    assert loaded == attrs.evolve(before, title="新标题")
    assert [h.row for h in store.scan_histories(None, 10)] == [loaded]


def test_query_and_count_agree_on_a_unit_filtered_list(any_store: SqlStore) -> None:
    store = any_store
    due = T0 + dt.timedelta(days=5)
    for n in range(30):
        s = make_suggestion(f"q{n:02d}", lead_unit="u1" if n % 2 else "u2", co_units=("u1",) if n % 3 == 0 else (),
                            due_at=due + dt.timedelta(hours=n % 7), registration_number=f"R{30 - n:03d}")
        store.commit(create(s))
    query = Query(unit="u1", order=Order.DUE, limit=4)
    rows, seen = store.query(query), []
    while rows:
        seen += [r.id for r in rows]
        rows = store.query(attrs.evolve(query, after=query.cursor_of(rows[-1])))
    every = sorted(store.query(Query(unit="u1")), key=lambda s: (s.due_at, s.id))
    assert seen == [s.id for s in every] and store.count(query) == len(every) == 20
    desc = Query(lead_unit="u2", co_unit="u1", order=Order.REGISTRATION, descending=True)
    assert [s.id for s in store.query(desc)] == ["q00", "q06", "q12", "q18", "q24"]
    assert store.count(desc) == 5


def test_a_change_carries_its_key_scope_and_fingerprint(any_store: SqlStore) -> None:
    store = any_store
    change = create(make_suggestion("f-1"), key="kf", scope="proposer:p1", fingerprint="ab" * 32)
    store.commit(change)
    assert store.idempotency("proposer:p1", "kf") == change.idempotency
    assert store.idempotency("office", "kf") is None


def test_commit_of_a_plain_change_has_no_key(any_store: SqlStore) -> None:
    store = any_store
    plain = create(make_suggestion("pl-1"))
    assert isinstance(plain, Change) and plain.idempotency is None
    assert store.commit(plain).seq == 1 and count(store, idempotency) == 0


def test_last_seq_reads_the_counter(store: SqlStore) -> None:
    assert store.last_seq() == 0
    store.commit(create(make_suggestion("ls-1")))
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(counters.c.value).where(counters.c.name == EVENT_SEQ)).scalar_one() == 1
    assert store.last_seq() == 1
