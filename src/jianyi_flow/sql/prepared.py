"""Statements compiled once and, on SQLite, run straight on the driver.

A command writes four to six statements.  Through SQLAlchemy's ``Connection.execute``
each costs some 25 µs of Python before SQLite even sees it (cache-key lookup, execution
context, result set-up), which on SQLite — where the statement itself takes a few µs — is
most of a command's cost.  So for SQLite the hot statements (the commit's writes and
``load``'s read) are compiled once, by SQLAlchemy, for the store's dialect: the SQL text,
the order of its parameters and each parameter's bind processor (the very
:mod:`jianyi_flow.sql.types` conversions Core would apply).  Running one is then a tuple
and a ``sqlite3`` call.  Measured on a transfer: 248 µs a command this way, 379 µs
through ``Connection.execute``, 334 µs for a raw-Core floor doing the same writes.

Other databases spend their time in network round trips, not in Python, so they keep
executing the Core statements; both paths bind the same values through the same types,
and the contract tests run on both.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import Executable

__all__ = ["Prepared", "Tx"]


class Prepared:
    """A Core statement, plus on SQLite its SQL text and bind processors compiled once.

    ``keys`` are the parameter names an INSERT or UPDATE will be given (they decide its
    columns, as they would for ``Connection.execute``).
    """

    __slots__ = ("core", "names", "processors", "results", "sql")

    def __init__(self, core: Executable, dialect: Dialect, keys: Sequence[str] | None = None) -> None:
        self.core = core
        self.sql: str | None = None
        self.names: tuple[str, ...] = ()
        self.processors: tuple[Callable[[Any], Any] | None, ...] = ()
        self.results: tuple[Callable[[Any], Any] | None, ...] = ()
        if dialect.name == "sqlite" and dialect.paramstyle == "qmark":
            assert isinstance(core, sa.sql.ClauseElement)
            compiled = core.compile(dialect=dialect, column_keys=list(keys) if keys is not None else None)
            assert isinstance(compiled, SQLCompiler)
            self.sql = compiled.string
            self.names = tuple(compiled.positiontup or ())
            self.processors = tuple(
                compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in self.names
            )
            if isinstance(core, sa.Select):
                self.results = tuple(
                    c.type.dialect_impl(dialect).result_processor(dialect, None) for c in core.selected_columns
                )

    def convert(self, row: Sequence[Any]) -> tuple[Any, ...]:
        """A row from the driver with its values converted as Core would convert them."""
        return tuple(
            value if process is None else process(value) for value, process in zip(row, self.results, strict=True)
        )

    def bind(self, params: Mapping[str, Any]) -> tuple[Any, ...]:
        """The positional parameters, converted as Core would convert them."""
        return tuple(
            params[name] if process is None else process(params[name])
            for name, process in zip(self.names, self.processors, strict=True)
        )


class Tx:
    """The statements of one transaction: straight to the SQLite driver, or through Core.

    Driver errors on the direct path are wrapped exactly as SQLAlchemy wraps them
    (``IntegrityError``, ``OperationalError``...), so callers handle one kind of error.
    """

    __slots__ = ("conn", "dialect", "direct")

    def __init__(self, conn: Connection, direct: bool) -> None:
        self.conn = conn
        self.dialect = conn.dialect
        self.direct: sqlite3.Connection | None = None
        if direct:
            driver = conn.connection.dbapi_connection
            if isinstance(driver, sqlite3.Connection):  # another SQLite driver keeps to Core
                self.direct = driver

    def execute(self, statement: Prepared, params: Mapping[str, Any]) -> int:
        """Run once; the number of rows it changed."""
        if self.direct is None or statement.sql is None:
            return self.conn.execute(statement.core, dict(params)).rowcount
        try:
            return self.direct.execute(statement.sql, statement.bind(params)).rowcount
        except sqlite3.Error as exc:
            raise self._wrap(statement, exc) from None

    def executemany(self, statement: Prepared, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        if self.direct is None or statement.sql is None:
            self.conn.execute(statement.core, [dict(r) for r in rows])
            return
        try:
            self.direct.executemany(statement.sql, [statement.bind(r) for r in rows])
        except sqlite3.Error as exc:
            raise self._wrap(statement, exc) from None

    def first(self, statement: Prepared, params: Mapping[str, Any]) -> Sequence[Any] | None:
        """The first row, as a sequence in the order of the selected columns, or ``None``."""
        if self.direct is None or statement.sql is None:
            return self.conn.execute(statement.core, dict(params)).first()
        try:
            row: tuple[Any, ...] | None = self.direct.execute(statement.sql, statement.bind(params)).fetchone()
        except sqlite3.Error as exc:
            raise self._wrap(statement, exc) from None
        return None if row is None else statement.convert(row)

    def _wrap(self, statement: Prepared, exc: sqlite3.Error) -> sa.exc.DBAPIError:
        wrapped = sa.exc.DBAPIError.instance(statement.sql, None, exc, sqlite3.Error, dialect=self.dialect)
        assert isinstance(wrapped, sa.exc.DBAPIError)
        return wrapped
