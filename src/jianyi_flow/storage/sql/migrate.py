"""Schema management: the Alembic migrations shipped inside the package, run programmatically.

The migrations live in ``jianyi_flow/migrations`` and record their revision in their own
version table, ``jianyi_flow_alembic_version``, so a host application that uses Alembic
for its own tables keeps its ``alembic_version`` untouched and both histories advance
independently.  No ``alembic.ini`` is needed::

    from jianyi_flow.storage.sql.migrate import upgrade
    upgrade("postgresql+psycopg://app@db/campaign")      # or: jianyi-flow db upgrade URL

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
    (``history``, ``upgrade --sql``...).  Revision ``0003`` moves values between rows and
    cannot be printed as SQL: it raises :class:`~jianyi_flow.errors.StoreError` in that mode.
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
    try:
        with _engine(url_or_engine) as engine, engine.begin() as conn:
            getattr(command, action)(alembic_config(conn), *args)
    except CommandError as exc:
        raise StoreError(f"migration {action} failed: {exc}") from None
    except sa.exc.SQLAlchemyError as exc:
        detail = getattr(exc, "orig", None) or exc
        raise StoreError(f"migration {action} failed: {type(exc).__name__}: {detail}") from None


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
