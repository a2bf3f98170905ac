"""Every shipped store runs the same contract kit (jianyi_flow.testing.StoreContract).

MemoryStore is the reference; SqlStore runs on a SQLite file, in-memory SQLite,
PostgreSQL and MariaDB (see tests/dbs.py for how the server tests get a private schema).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dbs import mysql_migrated, mysql_url, postgres_migrated, postgres_url, sqlite_copy, sqlite_template, wipe
from jianyi_flow import MemoryStore
from jianyi_flow.sql import SqlStore
from jianyi_flow.testing import StoreContract

__all__ = ["mysql_migrated", "mysql_url", "postgres_migrated", "postgres_url", "sqlite_template"]  # fixtures


class TestMemoryStore(StoreContract):
    def make_store(self) -> MemoryStore:
        return MemoryStore()


class TestSqliteFileStore(StoreContract):
    url: str

    @pytest.fixture(autouse=True)
    def _database(self, sqlite_template: Path, tmp_path: Path) -> None:
        self.url = sqlite_copy(sqlite_template, tmp_path)

    def make_store(self) -> SqlStore:
        return SqlStore(self.url)


class TestSqliteMemoryStore(StoreContract):
    def make_store(self) -> SqlStore:
        return SqlStore.open("sqlite://")


@pytest.mark.postgres
class TestPostgresStore(StoreContract):
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
    url: str

    @pytest.fixture(autouse=True)
    def _database(self, mysql_migrated: str) -> None:
        self.url = mysql_migrated

    def make_store(self) -> SqlStore:
        store = SqlStore(self.url)
        wipe(store.engine)
        return store
