"""Opening databases the way the store needs them, per backend.

* **SQLite** gets ``journal_mode=WAL`` (readers do not block the writer),
  ``foreign_keys=ON`` (off by default in SQLite), ``busy_timeout`` (wait for the write
  lock instead of failing at once) and ``synchronous=NORMAL`` (safe with WAL, one fsync
  per checkpoint instead of per commit), set on every new connection.  Three settings are
  for speed, measured on the campaign simulation: ``temp_store=MEMORY`` keeps the
  savepoint journal of :meth:`SqlStore.batch` in memory (SQLite writes the pages a
  command changes to it, and past 64 KiB it becomes a temporary *file*, written with two
  system calls a page for every later command of the batch); ``cache_size`` of
  :data:`CACHE_KIB` (SQLite's default is 2 MiB, a small part of a campaign's rows and
  indexes: the rest is read again through system calls); and ``wal_autocheckpoint`` of
  :data:`WAL_CHECKPOINT_PAGES` (40 MiB of log between checkpoints instead of 4 MiB: a page
  changed many times is copied back once, and the checkpoint's two fsyncs come a tenth as
  often).  An in-memory
  database (``sqlite://``) exists once per connection, so it is opened on a
  :class:`~sqlalchemy.pool.StaticPool`: every thread uses the one connection, and the
  store serialises access to it.
* **MariaDB/MySQL** connects with ``charset=utf8mb4`` (plain ``utf8`` cannot hold emoji)
  and runs the store's transactions at ``READ COMMITTED``: InnoDB's default
  ``REPEATABLE READ`` takes gap locks when the store rewrites a suggestion's unit rows,
  which makes unrelated writers deadlock.
* **PostgreSQL** (psycopg 3) needs nothing special: ``READ COMMITTED`` with row locks is
  what optimistic concurrency wants.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.pool import StaticPool

from ...errors import StoreError, ValidationError

__all__ = [
    "BUSY_TIMEOUT_MS",
    "CACHE_KIB",
    "WAL_CHECKPOINT_PAGES",
    "create_engine",
    "is_memory_sqlite",
    "prepare_sqlite_connection",
]

BUSY_TIMEOUT_MS = 30_000
"""How long a SQLite writer waits for another writer's transaction to finish."""

CACHE_KIB = 65_536
"""SQLite page cache per connection, in KiB (``PRAGMA cache_size=-CACHE_KIB``): filled only as pages are read."""

WAL_CHECKPOINT_PAGES = 10_000
"""Pages of write-ahead log (4 KiB each) after which a commit copies them back into the database file."""

_PRAGMAS_DONE = "jianyi_flow_pragmas"


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


def prepare_sqlite_connection(dbapi_connection: Any, memory: bool) -> None:
    """The per-connection SQLite settings (see the module docstring)."""
    cursor = dbapi_connection.cursor()
    try:
        if not memory:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA temp_store=MEMORY")
    finally:
        cursor.close()


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

            @event.listens_for(engine, "connect")
            def _on_connect(dbapi_connection: Any, record: Any) -> None:
                prepare_sqlite_connection(dbapi_connection, memory)
                record.info[_PRAGMAS_DONE] = True

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


def pragmas_done(info: dict[Any, Any]) -> bool:
    return bool(info.get(_PRAGMAS_DONE))


def mark_pragmas_done(info: dict[Any, Any]) -> None:
    info[_PRAGMAS_DONE] = True
