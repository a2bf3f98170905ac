"""SQL storage: :class:`SqlStore` on SQLite, PostgreSQL (psycopg 3) and MariaDB (PyMySQL).

Needs the ``sql`` extra (``pip install 'jianyi_flow[sql]'``; ``[postgres]`` or ``[mysql]``
add the drivers).  The tables are in :mod:`jianyi_flow.sql.schema` and are created and
upgraded by the Alembic migrations shipped in the package (:mod:`jianyi_flow.db`).
See docs/storage.md.
"""

from .engine import create_engine
from .schema import metadata
from .store import SqlStore

__all__ = ["SqlStore", "create_engine", "metadata"]
