"""SQL storage: :class:`SqlStore` on SQLite, PostgreSQL (psycopg 3) and MariaDB (PyMySQL).

:class:`BatchingSqlStore` (:mod:`.batching`) is a :class:`SqlStore` on SQLite whose batches are
buffered and written set-based, for bulk loads and simulations.

The tables are in :mod:`.schema` and are created and upgraded by the Alembic migrations
shipped in the package (:mod:`.migrate`).  See docs/storage.md.
"""

from .batching import BatchingSqlStore
from .engine import create_engine
from .schema import metadata
from .store import SqlStore

__all__ = ["BatchingSqlStore", "SqlStore", "create_engine", "metadata"]
