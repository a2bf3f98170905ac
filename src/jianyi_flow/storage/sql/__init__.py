"""SQL storage: :class:`SqlStore` on SQLite, PostgreSQL (psycopg 3) and MariaDB (PyMySQL).

The tables are in :mod:`.schema` and are created and upgraded by the Alembic migrations
shipped in the package (:mod:`.migrate`).  See docs/storage.md.
"""

from .engine import create_engine
from .schema import metadata
from .store import SqlStore

__all__ = ["SqlStore", "create_engine", "metadata"]
