"""SqlStore.batch(): many commits in one transaction, each a savepoint of its own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from dbs import (  # noqa: F401 - fixtures
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
from jianyi_flow.errors import (
    ConcurrencyConflict,
    DuplicateSuggestion,
    IdempotencyKeyReused,
    NotFound,
    StoreError,
)
from jianyi_flow.sql import SqlStore
from jianyi_flow.storage.base import BatchingStore, Query
from jianyi_flow.testing import advance, create, make_suggestion


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, sqlite_template: Path, tmp_path: Path) -> Iterator[SqlStore]:  # noqa: F811
    yield from backend_store(request, sqlite_template, tmp_path)


def seqs(store: SqlStore) -> list[tuple[str, int, int]]:
    return [(e.suggestion_id, e.version, e.seq or 0) for h in store.scan_histories(None, 1000) for e in h.events]


def test_a_batch_commits_everything_at_the_end_and_reads_see_its_own_writes(store: SqlStore) -> None:
    assert isinstance(store, BatchingStore)
    a, b = create(make_suggestion("B-1", lead_unit="u1")), create(make_suggestion("B-2"))
    with store.batch():
        store.commit(a)
        store.commit(b)
        assert store.load("B-1") == a.suggestion  # this thread reads the open batch
        assert [s.id for s in store.query(Query(unit="u1"))] == ["B-1"]
        moved = advance(a.suggestion, research_notes="批量中的修改")
        assert store.commit(moved).seq == 3
        assert store.load("B-1").version == 2 and store.last_seq() == 3
    assert store.load("B-1") == moved.suggestion
    assert [e.version for e in store.history("B-1")] == [1, 2]
    assert store.load("B-2") == b.suggestion


def test_a_failed_commit_inside_a_batch_is_rolled_back_alone_and_uses_no_seq(store: SqlStore) -> None:
    first = create(make_suggestion("B-3"), key="K1")
    with store.batch():
        store.commit(first)
        with pytest.raises(DuplicateSuggestion):
            store.commit(create(make_suggestion("B-3")))
        stale = advance(first.suggestion, research_notes="x")
        store.commit(stale)
        with pytest.raises(ConcurrencyConflict):
            store.commit(advance(first.suggestion, research_notes="y"))  # same expected version again
        with pytest.raises(IdempotencyKeyReused):
            store.commit(create(make_suggestion("B-9"), key="K1", notify=["office"]))
        with pytest.raises(NotFound):
            store.commit(advance(make_suggestion("B-8")))
        store.commit(create(make_suggestion("B-4")))
    assert store.load("B-3") == stale.suggestion
    assert len(store.history("B-3")) == 2
    assert store.load("B-4").version == 1
    with pytest.raises(NotFound):
        store.load("B-9")
    assert seqs(store) == [("B-3", 1, 1), ("B-3", 2, 2), ("B-4", 1, 3)]
    assert store.outbox_pending() == 0 and store.last_seq() == 3


def test_an_exception_out_of_the_batch_rolls_all_of_it_back(store: SqlStore) -> None:
    with pytest.raises(RuntimeError), store.batch():
        store.commit(create(make_suggestion("B-5")))
        raise RuntimeError("the portal crashed mid-batch")
    with pytest.raises(NotFound):
        store.load("B-5")
    assert store.history("B-5") == [] and store.last_seq() == 0


def test_nested_batches_join_the_outer_one(store: SqlStore) -> None:
    with pytest.raises(RuntimeError), store.batch():
        with store.batch():
            store.commit(create(make_suggestion("B-6")))
        raise RuntimeError("outer fails after the inner block ended")
    assert store.history("B-6") == []


def test_a_database_failure_inside_a_batch_fails_the_whole_batch(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure the savepoint cannot contain (here a lost connection) fails every later commit and the end."""
    real = store._apply

    class Lost(Exception):
        pass

    def failing(conn: sa.Connection, plan: Any) -> Any:
        if plan.row["id"] == "B-7b":
            raise sa.exc.OperationalError("INSERT", {}, Lost("server closed the connection"))
        return real(conn, plan)

    monkeypatch.setattr(store, "_apply", failing)
    with pytest.raises(StoreError, match="rolled back"), store.batch():
        store.commit(create(make_suggestion("B-7a")))
        with pytest.raises(StoreError, match="server closed"):
            store.commit(create(make_suggestion("B-7b")))
        with pytest.raises(StoreError, match="failed earlier"):
            store.commit(create(make_suggestion("B-7c")))
    for sid in ("B-7a", "B-7b", "B-7c"):
        with pytest.raises(NotFound):
            store.load(sid)
    assert store.last_seq() == 0


def test_other_threads_do_not_join_a_batch(store: SqlStore) -> None:
    import threading

    seen: list[object] = []
    with store.batch():
        store.commit(create(make_suggestion("B-8")))
        if store.engine.dialect.name != "sqlite":  # SQLite's batch holds the one write lock: others wait for it
            reader = threading.Thread(target=lambda: seen.append(store.history("B-8")))
            reader.start()
            reader.join(30)
            assert seen == [[]]  # not committed yet: another thread does not see it
    assert len(store.history("B-8")) == 1
