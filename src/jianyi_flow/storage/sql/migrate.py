"""Schema management: the Alembic migrations shipped inside the package, run programmatically.

The migrations live in ``jianyi_flow/storage/sql/migrations`` and record their revision in
their own version table, ``jianyi_flow_alembic_version``, so a host application that uses
Alembic for its own tables keeps its ``alembic_version`` untouched and both histories
advance independently.  No ``alembic.ini`` is needed::

    from jianyi_flow.storage.sql.migrate import upgrade
    upgrade("postgresql+psycopg://app@db/campaign")      # or: jianyi-flow db upgrade URL

A :class:`~jianyi_flow.storage.sql.SqlStore` opens only a database at the revision its
package writes (:data:`~jianyi_flow.storage.sql.schema.REVISION`, the head here).

On SQLite, foreign keys are not enforced while the migrations run and are checked when
they end (``PRAGMA foreign_key_check``): SQLite changes a table's definition by copying it
into a new table, and dropping the old one would otherwise be refused while other tables
refer to it (SQLite's documented procedure for schema changes).

A host application's own ``env.py`` should skip these tables when it autogenerates
(``include_name=jianyi_flow.storage.sql.migrate.host_include_name``); see docs/storage.md.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import URL, Connection, Engine

from ...errors import StoreError
from .engine import create_engine
from .schema import metadata

__all__ = [
    "MIGRATIONS_DIR",
    "VERSION_TABLE",
    "alembic_config",
    "current",
    "downgrade",
    "foreign_keys_deferred",
    "head",
    "host_include_name",
    "is_jianyi_flow_table",
    "metadata",
    "upgrade",
]

VERSION_TABLE = "jianyi_flow_alembic_version"
"""Where the applied jianyi_flow revision is recorded (not the host's ``alembic_version``)."""

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(connection: Connection | None = None, url: str | None = None) -> Config:
    """An Alembic :class:`~alembic.config.Config` for the shipped migrations, built in code.

    With ``connection`` the migrations run on it (inside its transaction); with ``url``
    ``env.py`` opens its own engine.  Useful for Alembic commands this module does not wrap
    (``history``, ``upgrade --sql``...).  Revisions ``0003`` and ``0004`` move values between
    rows and cannot be printed as SQL: they raise :class:`~jianyi_flow.errors.StoreError` in that mode.
    """
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["connection"] = connection
    return cfg


@contextlib.contextmanager
def _engine(url_or_engine: str | URL | Engine) -> Iterator[Engine]:
    if isinstance(url_or_engine, Engine):
        yield url_or_engine
        return
    engine = create_engine(url_or_engine)
    try:
        yield engine
    finally:
        engine.dispose()


def _run(url_or_engine: str | URL | Engine, action: str, *args: Any) -> None:
    if action == "upgrade" and args and args[0] in ("head", head()) and current(url_or_engine) == head():
        return  # nothing to run: no schema change, so no foreign-key check of data it did not touch
    try:
        with _engine(url_or_engine) as engine, engine.connect() as conn, foreign_keys_deferred(conn):
            with conn.begin():
                getattr(command, action)(alembic_config(conn), *args)
    except CommandError as exc:
        raise StoreError(f"migration {action} failed: {exc}") from None
    except sa.exc.SQLAlchemyError as exc:
        detail = getattr(exc, "orig", None) or exc
        raise StoreError(f"migration {action} failed: {type(exc).__name__}: {detail}") from None


@contextlib.contextmanager
def foreign_keys_deferred(conn: Connection) -> Iterator[None]:
    """On SQLite: foreign keys unenforced inside the block, checked and enforced again after it."""
    if conn.dialect.name != "sqlite":
        yield
        return
    enforced = conn.exec_driver_sql("PRAGMA foreign_keys").scalar()
    conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
    conn.commit()
    try:
        yield
        broken = conn.exec_driver_sql("PRAGMA foreign_key_check").first()
        if broken is not None:
            raise StoreError(f"after the migration, table {broken[0]} row {broken[1]} refers to a missing "
                             f"row of {broken[2]}")
    finally:
        conn.rollback()
        if enforced:
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")
        conn.commit()


def upgrade(url_or_engine: str | URL | Engine, revision: str = "head") -> None:
    """Bring the jianyi_flow tables to ``revision`` (the newest by default); safe to run again."""
    _run(url_or_engine, "upgrade", revision)


def downgrade(url_or_engine: str | URL | Engine, revision: str) -> None:
    """Go back to ``revision`` (``"base"`` drops every jianyi_flow table and its data)."""
    _run(url_or_engine, "downgrade", revision)


def current(url_or_engine: str | URL | Engine) -> str | None:
    """The revision the database is at, or ``None`` if the migrations never ran there."""
    try:
        with _engine(url_or_engine) as engine, engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
            return context.get_current_revision()
    except sa.exc.SQLAlchemyError as exc:
        raise StoreError(f"reading the schema revision failed: {type(exc).__name__}: {exc}") from None


def head() -> str:
    """The newest revision shipped with this version of the package."""
    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert revision is not None
    return revision


def is_jianyi_flow_table(name: str | None) -> bool:
    """Whether ``name`` is one of this package's tables (including its version table)."""
    return name == VERSION_TABLE or (name is not None and name in metadata.tables)


def host_include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """An Alembic ``include_name`` hook for a host's ``env.py``: leave jianyi_flow's tables out.

    Without it, the host's autogenerate sees tables its own metadata lacks and proposes
    dropping them.
    """
    if type_ == "table":
        return not is_jianyi_flow_table(name)
    return True
