"""What only SqlStore has: opening, SQLite settings, error translation, commit_many, retries, cost.

The behaviour every store shares is in the contract kit (tests/test_store_contract.py).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import StaticPool

from dbs import mysql_migrated, mysql_url, postgres_migrated, postgres_url, sqlite_copy, sqlite_template, wipe
from jianyi_flow import SHANGHAI, FakeClock, Flow
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
from jianyi_flow.storage.base import Change, Query, iter_events
from jianyi_flow.storage.sql.schema import events, idempotency, outbox, suggestion_units, suggestions
from jianyi_flow.testing import OFFICE_ACTOR, T0, StoreContract, advance, create, make_suggestion, message

__all__ = ["mysql_migrated", "mysql_url", "postgres_migrated", "postgres_url", "sqlite_template"]  # fixtures

BACKENDS = [
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("mysql", marks=pytest.mark.mysql),
]


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    return sqlite_copy(sqlite_template, tmp_path)


@pytest.fixture
def store(sqlite_url: str) -> Iterator[SqlStore]:
    with SqlStore(sqlite_url) as store:
        yield store


@pytest.fixture(params=BACKENDS)
def any_store(request: pytest.FixtureRequest, sqlite_url: str) -> Iterator[SqlStore]:
    """A SqlStore on each backend, empty."""
    if request.param == "sqlite":
        url = sqlite_url
    else:
        url = str(request.getfixturevalue(f"{request.param}_migrated"))
    with SqlStore(url) as store:
        wipe(store.engine)
        yield store


def count(store: SqlStore, table: sa.Table) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def row_counts(store: SqlStore) -> dict[str, int]:
    return {t.name: count(store, t) for t in (suggestions, suggestion_units, events, outbox, idempotency)}


# --- opening ------------------------------------------------------------------------------------
def test_sqlite_connections_get_wal_foreign_keys_and_a_busy_timeout(store: SqlStore) -> None:
    store.commit(create(make_suggestion("p-1")))
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
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


def test_repr_hides_the_password() -> None:
    store = SqlStore("postgresql+psycopg://app:s3cret@127.0.0.1:1/x")
    assert "s3cret" not in repr(store) and "127.0.0.1" in repr(store)
    store.close()


@pytest.mark.mysql
def test_mariadb_connects_in_utf8mb4(mysql_migrated: str) -> None:
    with SqlStore(mysql_migrated) as store:
        assert store.engine.url.query["charset"] == "utf8mb4"
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT @@character_set_client").scalar() == "utf8mb4"
            level = conn.exec_driver_sql("SELECT @@tx_isolation").scalar()
            assert str(level).replace("-", " ") == "READ COMMITTED"


# --- errors ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://postgres@127.0.0.1:1/test?connect_timeout=2",
        "mysql+pymysql://root@127.0.0.1:1/test?connect_timeout=2",
        "sqlite:////nonexistent-dir/jianyi.db",
    ],
)
def test_an_unreachable_database_raises_store_error(url: str) -> None:
    with pytest.raises(StoreError) as caught:
        store = SqlStore(url)
        try:
            store.load("x")
        finally:
            store.close()
    assert not isinstance(caught.value.__cause__, sa.exc.SQLAlchemyError)


def test_a_closed_store_raises_store_error(store: SqlStore) -> None:
    store.close()
    store.close()  # twice is fine
    calls = [
        lambda: store.load("x"),
        lambda: store.history("x"),
        lambda: store.query(Query()),
        lambda: store.idempotency("k"),
        lambda: store.commit(create(make_suggestion("x"))),
        lambda: store.claim(1, T0, dt.timedelta(minutes=1)),
        lambda: store.mark_sent([1]),
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
    assert "jianyi_events" in str(caught.value)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE jianyi_events_gone RENAME TO jianyi_events")
    assert store.load("mid-1") == first.suggestion
    assert [s.id for s in store.query(Query(unit="u1"))] == ["mid-1"]
    assert store.idempotency("mid-key") is None
    assert row_counts(store) == before


def test_naive_datetimes_are_refused_before_anything_is_written(store: SqlStore) -> None:
    naive = dt.datetime(2024, 8, 21, 9, 0)
    with pytest.raises(ValidationError, match="due_at"):
        store.commit(create(make_suggestion("n-1", due_at=naive)))
    with pytest.raises(ValidationError):
        store.commit(create(make_suggestion("n-2", received_at=naive, updated_at=naive)))
    with pytest.raises(ValidationError):
        store.commit(create(make_suggestion("n-3"), messages=[message("n-3", 1, at=naive)]))
    with pytest.raises(ValidationError):
        store.query(Query(due_before=naive))
    with pytest.raises(ValidationError):
        store.claim(1, naive, dt.timedelta(minutes=1))
    with pytest.raises(ValidationError):
        store.mark_sent([1], at=naive)
    with pytest.raises(ValidationError, match="at"):
        store.mark_sent([], at=naive)  # even with nothing to mark
    assert sum(row_counts(store).values()) == 0


def test_a_payload_json_cannot_hold_is_refused_and_nothing_is_written(store: SqlStore) -> None:
    first = create(make_suggestion("j-1"))
    store.commit(first)
    before = row_counts(store)
    bad = advance(first.suggestion, messages=[message("j-1", 2, payload={"units": {"u1", "u2"}})])
    with pytest.raises(ValidationError, match="JSON"):
        store.commit(bad)
    assert store.load("j-1") == first.suggestion and row_counts(store) == before


# --- commit_many ----------------------------------------------------------------------------------
def test_commit_many_applies_changes_in_order(any_store: SqlStore) -> None:
    store = any_store
    existing = create(make_suggestion("cm-0", lead_unit="old"), key="cm-k0")
    store.commit(existing)
    a = create(make_suggestion("cm-1", lead_unit="a"), notify=["office"], key="cm-k1")
    a2 = advance(a.suggestion, kind="transfer", lead_unit="b", co_units=("c",), notify=["unit:b"], key="cm-k2")
    a3 = advance(a2.suggestion, kind="research", research_notes="调研")
    b = create(make_suggestion("cm-2", co_units=("a",)))
    e2 = advance(existing.suggestion, kind="transfer", lead_unit="new", co_units=("a",))
    store.commit_many([a, a2, b, a3, e2])

    assert store.load("cm-1") == a3.suggestion
    assert store.load("cm-2") == b.suggestion
    assert store.load("cm-0") == e2.suggestion
    assert [e.version for e in store.history("cm-1")] == [1, 2, 3]

    def unit(u: str) -> list[str]:
        return [s.id for s in store.query(Query(unit=u))]

    assert (unit("a"), unit("b"), unit("c"), unit("old"), unit("new")) == (
        ["cm-0", "cm-2"], ["cm-1"], ["cm-1"], [], ["cm-0"])
    record = store.idempotency("cm-k2")
    assert record is not None and (record.suggestion_id, record.version, record.command) == ("cm-1", 2, "transfer")
    assert [m.recipient for m in store.claim(10, T0, dt.timedelta(minutes=1))] == ["office", "unit:b"]
    store.commit_many([])


@pytest.mark.parametrize("failure", ["stale", "duplicate", "duplicate in batch", "key", "key in batch", "unknown"])
def test_commit_many_is_all_or_nothing(any_store: SqlStore, failure: str) -> None:
    store = any_store
    existing = create(make_suggestion("an-0"), key="an-key")
    store.commit(existing)
    store.commit(advance(existing.suggestion))
    before = row_counts(store)
    good = [
        create(make_suggestion("an-1", lead_unit="u1"), notify=["office"], key="an-k1"),
        create(make_suggestion("an-2"), notify=["office"]),
    ]
    bad: dict[str, tuple[Change, type[JianyiFlowError]]] = {
        "stale": (advance(existing.suggestion), ConcurrencyConflict),
        "duplicate": (create(make_suggestion("an-0")), DuplicateSuggestion),
        "duplicate in batch": (create(make_suggestion("an-1")), DuplicateSuggestion),
        "key": (create(make_suggestion("an-3"), key="an-key"), IdempotencyKeyReused),
        "key in batch": (create(make_suggestion("an-3"), key="an-k1"), IdempotencyKeyReused),
        "unknown": (advance(make_suggestion("an-9")), NotFound),
    }
    change, error = bad[failure]
    with pytest.raises(error):
        store.commit_many([*good, advance(good[0].suggestion, lead_unit="u2"), change])
    assert row_counts(store) == before
    with pytest.raises(NotFound):
        store.load("an-1")


# --- retries --------------------------------------------------------------------------------------
class _Deadlock(Exception):
    sqlstate = "40P01"


def test_a_transaction_killed_by_a_deadlock_is_retried(store: SqlStore, monkeypatch: pytest.MonkeyPatch) -> None:
    real = store._apply
    failures = [2]

    def flaky(conn: sa.Connection, plan: Any) -> None:
        real(conn, plan)  # the writes happen, then the database kills the transaction
        if failures[0]:
            failures[0] -= 1
            raise sa.exc.OperationalError("COMMIT", {}, _Deadlock("deadlock detected"))

    monkeypatch.setattr(store, "_apply", flaky)
    change = create(make_suggestion("dl-1"), notify=["office"], key="dl-key")
    store.commit(change)  # third attempt succeeds
    assert store.load("dl-1") == change.suggestion
    assert count(store, events) == 1 and count(store, outbox) == 1

    failures[0] = 5
    with pytest.raises(StoreError, match="deadlock"):
        store.commit(advance(change.suggestion))
    assert store.load("dl-1") == change.suggestion


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
    assert count(store, events) == threads * 16


# --- outbox and export ----------------------------------------------------------------------------
def test_mark_sent_records_when(store: SqlStore) -> None:
    store.commit(create(make_suggestion("ms-1"), notify=["office", "unit:u1"]))
    assert store.outbox_pending() == 2
    [first, _] = store.claim(5, T0, dt.timedelta(minutes=1))
    assert first.id is not None
    sent_at = dt.datetime(2024, 8, 21, 10, 0, 0, 123_456, tzinfo=SHANGHAI)
    store.mark_sent([first.id], at=sent_at)
    store.mark_sent([first.id], at=sent_at + dt.timedelta(hours=1))  # the first time counts
    assert store.outbox_pending() == 1
    with store.engine.connect() as conn:
        recorded = conn.execute(sa.select(outbox.c.sent_at).where(outbox.c.id == first.id)).scalar_one()
    assert recorded == sent_at


def test_mark_sent_without_at_takes_the_stores_clock(sqlite_url: str) -> None:
    clock = FakeClock(dt.datetime(2024, 12, 30, 23, 59, 30, tzinfo=SHANGHAI))
    with SqlStore(sqlite_url, clock=clock) as store:
        store.commit(create(make_suggestion("ms-2"), notify=["office", "unit:u1"]))
        [first, second] = store.claim(5, T0, dt.timedelta(minutes=1))
        assert first.id is not None and second.id is not None
        store.mark_sent([first.id])
        clock.advance(minutes=1)
        store.mark_sent([second.id])
        with store.engine.connect() as conn:
            recorded = dict(conn.execute(sa.select(outbox.c.id, outbox.c.sent_at)).all())
    assert recorded == {first.id: dt.datetime(2024, 12, 30, 23, 59, 30, tzinfo=SHANGHAI),
                        second.id: dt.datetime(2024, 12, 31, 0, 0, 30, tzinfo=SHANGHAI)}


def test_mark_sent_refuses_a_clock_that_gives_naive_times(sqlite_url: str) -> None:
    class NaiveClock:
        def now(self) -> dt.datetime:
            return dt.datetime(2024, 8, 21, 9, 0)

    with SqlStore.open(sqlite_url, clock=NaiveClock()) as store:
        store.commit(create(make_suggestion("ms-3"), notify=["office"]))
        [only] = store.claim(5, T0, dt.timedelta(minutes=1))
        assert only.id is not None
        with pytest.raises(ValidationError, match=r"clock\.now\(\)"):
            store.mark_sent([only.id])
        assert store.outbox_pending() == 1


def test_export_events_pages_whole_histories(store: SqlStore) -> None:
    flow = Flow(store, FakeClock(T0), ids=iter(f"x{n:03d}" for n in range(100)).__next__)
    for _ in range(25):
        s = flow.receive(StoreContract.draft(), OFFICE_ACTOR)
        flow.register(s.id, OFFICE_ACTOR)
    exported = list(iter_events(store, page=7))
    expected = [e for sid in sorted(f"x{n:03d}" for n in range(25)) for e in store.history(sid)]
    assert exported == expected and len(exported) == 50
    assert store.export_events("x023", 10) == store.history("x024")
    assert store.export_events("x024", 10) == []
