"""Every shipped store runs the same contract kit (jianyi_flow.testing.StoreContract).

MemoryStore is the reference.  SqlStore runs the kit on a SQLite file, in-memory SQLite,
PostgreSQL and MariaDB (see tests/dbs.py for how the server tests get a private schema);
BatchingSqlStore on a SQLite file and in-memory SQLite (tests/test_batching_store.py tests
its buffer).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from dbs import mysql_migrated, mysql_url, postgres_migrated, postgres_url, sqlite_copy, sqlite_template, wipe
from jianyi_flow import MemoryStore
from jianyi_flow.errors import ValidationError
from jianyi_flow.sql import BatchingSqlStore, SqlStore
from jianyi_flow.storage.base import Order, Query, TransactingStore, matches
from jianyi_flow.testing import StoreContract, make_suggestion

__all__ = ["mysql_migrated", "mysql_url", "postgres_migrated", "postgres_url", "sqlite_template"]  # fixtures

SQL_CAPABILITIES = (*StoreContract.capabilities, TransactingStore)


class TestMemoryStore(StoreContract):
    def make_store(self) -> MemoryStore:
        return MemoryStore()


class TestSqliteFileStore(StoreContract):
    capabilities = SQL_CAPABILITIES
    url: str

    @pytest.fixture(autouse=True)
    def _database(self, sqlite_template: Path, tmp_path: Path) -> None:
        self.url = sqlite_copy(sqlite_template, tmp_path)

    def make_store(self) -> SqlStore:
        return SqlStore(self.url)


class TestSqliteMemoryStore(StoreContract):
    capabilities = SQL_CAPABILITIES

    def make_store(self) -> SqlStore:
        return SqlStore.open("sqlite://")


class TestBatchingSqliteFileStore(StoreContract):
    capabilities = SQL_CAPABILITIES
    url: str

    @pytest.fixture(autouse=True)
    def _database(self, sqlite_template: Path, tmp_path: Path) -> None:
        self.url = sqlite_copy(sqlite_template, tmp_path)

    def make_store(self) -> BatchingSqlStore:
        return BatchingSqlStore(self.url)


class TestBatchingSqliteMemoryStore(StoreContract):
    capabilities = SQL_CAPABILITIES

    def make_store(self) -> BatchingSqlStore:
        return BatchingSqlStore.open("sqlite://")


@pytest.mark.postgres
class TestPostgresStore(StoreContract):
    capabilities = SQL_CAPABILITIES
    url: str

    @pytest.fixture(autouse=True)
    def _database(self, postgres_migrated: str) -> None:
        self.url = postgres_migrated

    def make_store(self) -> SqlStore:
        store = SqlStore(self.url)
        wipe(store.engine)
        return store


@pytest.mark.mysql
class TestMariaDbStore(StoreContract):
    capabilities = SQL_CAPABILITIES
    url: str

    @pytest.fixture(autouse=True)
    def _database(self, mysql_migrated: str) -> None:
        self.url = mysql_migrated

    def make_store(self) -> SqlStore:
        store = SqlStore(self.url)
        wipe(store.engine)
        return store


def test_matches_compares_due_bounds_by_instant_and_refuses_a_naive_bound() -> None:
    """The filter third-party stores may reuse: at a DST fold, wall time is not the order; naive is an error."""
    york = ZoneInfo("America/New_York")
    second_0130 = dt.datetime(2024, 11, 3, 1, 30, tzinfo=york, fold=1)  # 06:30Z
    first_0145 = dt.datetime(2024, 11, 3, 1, 45, tzinfo=york)  # 05:45Z
    row = make_suggestion("F-1", due_at=second_0130)
    assert not matches(Query(due_before=first_0145), row)
    assert matches(Query(due_after=first_0145), row)
    assert matches(Query(due_before=first_0145.replace(fold=1)), row)
    with pytest.raises(ValidationError, match=r"query\.due_before"):
        matches(Query(due_before=dt.datetime(2030, 1, 1)), row)


def test_a_cursor_compares_the_instant_not_the_wall_time() -> None:
    """A cursor time in another zone continues after the same instant (the reference the kit holds stores to)."""
    york = ZoneInfo("America/New_York")
    row = make_suggestion("F-2", due_at=dt.datetime(2024, 11, 3, 1, 30, tzinfo=york, fold=1))
    cursor_before = dt.datetime(2024, 11, 3, 1, 45, tzinfo=york)  # 05:45Z: before the row
    assert matches(Query(order=Order.DUE, after=(cursor_before, "F-2")), row)
    assert not matches(Query(order=Order.DUE, after=(cursor_before.replace(fold=1), "F-2")), row)
    assert not matches(Query(order=Order.DUE, descending=True, after=(cursor_before, "F-2")), row)
