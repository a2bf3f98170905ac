"""Alembic environment for jianyi_flow's own tables.

Run through :mod:`jianyi_flow.storage.sql.migrate` (which passes an open connection in
``config.attributes["connection"]``) or with Alembic's command line given
``script_location`` and ``sqlalchemy.url``.  Revisions are recorded in
``jianyi_flow_alembic_version`` and autogenerate only looks at jianyi_flow's tables, so a
host application's schema and its ``alembic_version`` are never touched.
"""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from jianyi_flow.storage.sql.engine import create_engine
from jianyi_flow.storage.sql.migrate import VERSION_TABLE, foreign_keys_deferred, is_jianyi_flow_table
from jianyi_flow.storage.sql.schema import metadata

config = context.config


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """Compare only jianyi_flow's tables: the database may hold the host application's too."""
    if type_ == "table":
        return is_jianyi_flow_table(name)
    return True


def run_offline() -> None:
    """Emit the SQL as a script (``alembic upgrade head --sql``) instead of running it."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
        version_table=VERSION_TABLE,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        include_name=include_name,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite can only ALTER by copying tables
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set sqlalchemy.url, or run the migrations through jianyi_flow.sql.upgrade(url)")
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn, foreign_keys_deferred(conn), conn.begin():
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
