"""Opening databases the way the store needs them, per backend.

* **SQLite** connections get four settings (:data:`SQLITE_PRAGMAS`):
  ``journal_mode=WAL``, so readers keep reading while a writer commits;
  ``synchronous=NORMAL``, which with WAL loses no committed transaction on a crash of the
  process and syncs once per checkpoint instead of once per commit;
  ``foreign_keys=ON``, because SQLite leaves the schema's foreign keys unchecked otherwise;
  ``busy_timeout``, so a writer waits for another writer's transaction to end instead of
  failing at once with "database is locked".
  An in-memory database (``sqlite://``) exists once per connection, so it is opened on a
  :class:`~sqlalchemy.pool.StaticPool`: every thread uses the one connection, and the
  store takes turns on it.
* **MariaDB/MySQL** connects with ``charset=utf8mb4`` (plain ``utf8`` cannot hold emoji)
  and runs at ``READ COMMITTED``: InnoDB's default ``REPEATABLE READ`` takes gap locks
  when a commit rewrites a suggestion's unit rows, which makes unrelated writers deadlock.
* **PostgreSQL** (psycopg 3) needs nothing special: ``READ COMMITTED`` with row locks is
  what optimistic concurrency wants.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.pool import StaticPool

from ...errors import StoreError, ValidationError

__all__ = [
    "BUSY_TIMEOUT_MS",
    "SQLITE_PRAGMAS",
    "create_engine",
    "is_memory_sqlite",
    "prepare_sqlite",
    "sqlite_file",
]

BUSY_TIMEOUT_MS = 30_000
"""How long a SQLite writer waits for another writer's transaction to finish."""

SQLITE_PRAGMAS: tuple[str, ...] = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}",
)
"""The per-connection SQLite settings (see the module docstring); the first two are for files only."""

_PREPARED = "jianyi_flow_sqlite_prepared"
"""Key in a pooled connection's ``info``: the settings were applied to it."""


def _url(url: str | URL) -> URL:
    try:
        return make_url(url)
    except sa.exc.ArgumentError as exc:
        raise ValidationError("url", f"not a database URL: {exc}") from None


def is_memory_sqlite(url: URL) -> bool:
    """Whether ``url`` names an in-memory SQLite database (one per connection)."""
    if url.get_backend_name() != "sqlite":
        return False
    database = url.database or ""
    return database in ("", ":memory:") or url.query.get("mode") == "memory" or database.startswith("file::memory:")


def sqlite_file(url: str) -> str | None:
    """The file a ``sqlite:///path`` URL names; ``None`` for another database, in-memory SQLite or a bad URL.

    A URI filename (``sqlite:///file:path?mode=ro&uri=true``) names the file of its path.
    """
    try:
        parsed = make_url(url)
    except (sa.exc.ArgumentError, ValueError):
        return None
    if parsed.get_backend_name() != "sqlite" or is_memory_sqlite(parsed) or not parsed.database:
        return None
    database = parsed.database
    if parsed.query.get("uri") in ("true", "1") and database.startswith("file:"):
        path = urllib.parse.urlsplit(database).path  # file:name, file:/abs or file:///abs
        return urllib.parse.unquote(path) or None
    return database


def _pragmas(memory: bool) -> tuple[str, ...]:
    return SQLITE_PRAGMAS[2:] if memory else SQLITE_PRAGMAS


def prepare_sqlite(conn: Connection) -> None:
    """Apply the SQLite settings to ``conn`` once per pooled connection (for engines the store did not create)."""
    if conn.info.get(_PREPARED):
        return
    for pragma in _pragmas(is_memory_sqlite(conn.engine.url)):
        conn.exec_driver_sql(pragma)
    conn.info[_PREPARED] = True


def create_engine(url: str | URL, **kwargs: Any) -> Engine:
    """An :class:`~sqlalchemy.engine.Engine` for ``url`` set up as the module docstring says.

    ``kwargs`` go to :func:`sqlalchemy.create_engine` (pool sizes, ``echo``...).
    """
    parsed = _url(url)
    backend = parsed.get_backend_name()
    try:
        if backend == "sqlite":
            memory = is_memory_sqlite(parsed)
            if memory:
                kwargs.setdefault("poolclass", StaticPool)
                connect_args = dict(kwargs.pop("connect_args", {}))
                connect_args.setdefault("check_same_thread", False)
                kwargs["connect_args"] = connect_args
            engine = sa.create_engine(parsed, **kwargs)
            pragmas = _pragmas(memory)

            @event.listens_for(engine, "connect")
            def _on_connect(dbapi_connection: Any, record: Any) -> None:
                cursor = dbapi_connection.cursor()
                try:
                    for pragma in pragmas:
                        cursor.execute(pragma)
                finally:
                    cursor.close()
                record.info[_PREPARED] = True

            return engine
        if backend in ("mysql", "mariadb"):
            if "charset" not in parsed.query:
                parsed = parsed.update_query_dict({"charset": "utf8mb4"})
            kwargs.setdefault("isolation_level", "READ COMMITTED")
            kwargs.setdefault("pool_pre_ping", True)
            kwargs.setdefault("pool_recycle", 3600)  # below MariaDB's default wait_timeout
            return sa.create_engine(parsed, **kwargs)
        kwargs.setdefault("pool_pre_ping", True)
        return sa.create_engine(parsed, **kwargs)
    except (ImportError, sa.exc.SQLAlchemyError) as exc:
        # e.g. the driver is not installed: pip install 'jianyi_flow[postgres]'
        raise StoreError(f"cannot open {parsed.render_as_string(hide_password=True)}: {exc}") from None
