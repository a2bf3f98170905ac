"""SqlStore.batch(): many commands in one transaction, each a savepoint of its own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

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
from jianyi_flow.errors import ConcurrencyConflict, DuplicateSuggestion, NotFound
from jianyi_flow.sql import SqlStore
from jianyi_flow.testing import advance, create, make_suggestion


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, sqlite_template: Path, tmp_path: Path) -> Iterator[SqlStore]:  # noqa: F811
    yield from backend_store(request, sqlite_template, tmp_path)


def test_a_batch_commits_everything_at_the_end_and_reads_see_its_own_writes(store: SqlStore) -> None:
    a, b = create(make_suggestion("B-1")), create(make_suggestion("B-2"))
    with store.batch():
        store.commit(a)
        store.commit(b)
        assert store.load("B-1") == a.suggestion  # this thread reads the open batch
        moved = advance(a.suggestion, research_notes="批量中的修改")
        store.commit(moved)
        assert store.load("B-1").version == 2
    assert store.load("B-1") == moved.suggestion
    assert [e.version for e in store.history("B-1")] == [1, 2]
    assert store.load("B-2") == b.suggestion


def test_a_failed_command_inside_a_batch_is_rolled_back_alone(store: SqlStore) -> None:
    first = create(make_suggestion("B-3"))
    with store.batch():
        store.commit(first)
        with pytest.raises(DuplicateSuggestion):
            store.commit(create(make_suggestion("B-3")))
        stale = advance(first.suggestion, research_notes="x")
        store.commit(stale)
        with pytest.raises(ConcurrencyConflict):
            store.commit(advance(first.suggestion, research_notes="y"))  # same expected version again
        store.commit(create(make_suggestion("B-4")))
    assert store.load("B-3") == stale.suggestion
    assert len(store.history("B-3")) == 2
    assert store.load("B-4").version == 1


def test_an_exception_out_of_the_batch_rolls_all_of_it_back(store: SqlStore) -> None:
    with pytest.raises(RuntimeError), store.batch():
        store.commit(create(make_suggestion("B-5")))
        raise RuntimeError("the portal crashed mid-batch")
    with pytest.raises(NotFound):
        store.load("B-5")
    assert store.history("B-5") == []


def test_nested_batches_join_the_outer_one(store: SqlStore) -> None:
    with pytest.raises(RuntimeError), store.batch():
        with store.batch():
            store.commit(create(make_suggestion("B-6")))
        raise RuntimeError("outer fails after the inner block ended")
    assert store.history("B-6") == []
