"""Column types that make SQLite, PostgreSQL and MariaDB store the same values the same way.

Three things differ between the databases and would otherwise make a row read back, or
compare, differently from how it was written:

* **Time zones.**  SQLite has no datetime type and SQLAlchemy's emulation drops
  ``tzinfo``; MariaDB's ``DATETIME`` has no zone and, without a precision, no
  microseconds.  :class:`UtcDateTime` refuses naive values, stores the UTC instant
  (``TIMESTAMP WITH TIME ZONE`` on PostgreSQL, ``DATETIME(6)`` on MariaDB, ISO text on
  SQLite, which sorts and compares like the instants) and gives back aware values in
  Asia/Shanghai, the zone the rest of the library reports in.
* **Comparing and ordering text.**  Ids, keys and codes are compared byte for byte and
  ordered by code point, as Python compares strings: ``"A1"`` and ``"a1"`` are two ids,
  and so are ``"k"`` and ``"k "``.  :class:`Key` columns get ``COLLATE "C"`` on PostgreSQL
  (its default collation may be a linguistic one) and a binary *NO PAD* collation on
  MariaDB (``utf8mb4_nopad_bin``) and MySQL (``utf8mb4_0900_bin``): MariaDB's
  ``utf8mb4_bin`` is PAD SPACE, it ignores trailing spaces, so ``"k"`` and ``"k "`` would
  be one key.  SQLite compares bytes already.
* **Long text.**  MariaDB's ``TEXT`` holds only 64 KiB, less than a suggestion's bodies
  in Chinese (3 bytes a character), so long text is ``LONGTEXT`` there.

JSON is kept as text rather than in each database's JSON type: the three JSON types
disagree on key order, number formatting and validation, while the library only reads
whole documents back, never queries inside them.  Text round-trips exactly everywhere
and stays readable in a SQL console (Chinese is not escaped).

:class:`Code` is the code type of revisions 0001–0003 (binary PAD SPACE on MariaDB);
those migrations keep using it so that they build what they always built.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeEngine

from ...domain.clock import SHANGHAI, to_utc
from ...errors import ValidationError

__all__ = [
    "CODE_LENGTH",
    "KEY_LENGTH",
    "Code",
    "JsonText",
    "Key",
    "LongText",
    "UtcDateTime",
    "dumps",
    "loads",
    "mysql_key_collation",
]

CODE_LENGTH = 64
"""Ids and codes (suggestion id, unit, area, topic, campaign...): Flow allows 32 characters."""

KEY_LENGTH = 255
"""Idempotency keys and their scopes: Flow allows 128 characters; 255 utf8mb4 characters fit an InnoDB key."""

MARIADB_KEY_COLLATION = "utf8mb4_nopad_bin"
MYSQL_KEY_COLLATION = "utf8mb4_0900_bin"

_MYSQL = ("mysql", "mariadb")


def _is_mysql(dialect: Dialect) -> bool:
    return dialect.name in _MYSQL


def mysql_key_collation(dialect: Dialect) -> str:
    """The binary NO PAD collation of ``dialect``'s server: MariaDB's or MySQL 8's."""
    return MARIADB_KEY_COLLATION if getattr(dialect, "is_mariadb", True) else MYSQL_KEY_COLLATION


class Key(sa.types.TypeDecorator[str]):
    """An id, key or code: compared byte for byte and ordered by code point on every database."""

    impl = sa.String
    cache_ok = True

    def __init__(self, length: int = CODE_LENGTH) -> None:
        super().__init__(length)
        self.length = length

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.VARCHAR(self.length, collation="C"))
        if _is_mysql(dialect):
            return dialect.type_descriptor(mysql.VARCHAR(self.length, collation=mysql_key_collation(dialect)))
        return dialect.type_descriptor(sa.String(self.length))


class Code(sa.types.TypeDecorator[str]):
    """The code type of revisions 0001–0003: ``COLLATE "C"`` on PostgreSQL, the table's collation elsewhere."""

    impl = sa.String
    cache_ok = True

    def __init__(self, length: int = CODE_LENGTH) -> None:
        super().__init__(length)
        self.length = length

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.VARCHAR(self.length, collation="C"))
        return dialect.type_descriptor(sa.String(self.length))


class LongText(sa.types.TypeDecorator[str]):
    """Unbounded text: ``TEXT`` on SQLite and PostgreSQL, ``LONGTEXT`` on MariaDB (``TEXT`` stops at 64 KiB)."""

    impl = sa.Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if _is_mysql(dialect):
            return dialect.type_descriptor(mysql.LONGTEXT())
        return dialect.type_descriptor(sa.Text())


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
"""The JSON writer of every stored document: compact, Chinese kept as is, no NaN."""


def dumps(value: Any) -> str:
    """``value`` as compact JSON text; anything not JSON-ready is a :class:`ValidationError`."""
    try:
        return _ENCODER.encode(value)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValidationError("json", f"value is not JSON-ready: {exc}", code="not_json") from None


def loads(text: str) -> Any:
    """The value of a stored JSON text (errors are the caller's to report)."""
    return json.loads(text)


class JsonText(sa.types.TypeDecorator[Any]):
    """A JSON document stored as :class:`LongText` (see the module docstring for why not a JSON type).

    ``None`` is stored as SQL ``NULL``.  A value :func:`dumps` cannot write (a set, a
    datetime, NaN) raises :class:`~jianyi_flow.errors.ValidationError`.
    """

    impl = sa.Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if _is_mysql(dialect):
            return dialect.type_descriptor(mysql.LONGTEXT())
        return dialect.type_descriptor(sa.Text())

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else dumps(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else loads(value)


class UtcDateTime(sa.types.TypeDecorator[dt.datetime]):
    """An aware datetime stored as its UTC instant, read back in Asia/Shanghai.

    Naive datetimes are refused with :class:`~jianyi_flow.errors.ValidationError`: the
    library never guesses which zone a wall-clock time was meant in.
    """

    impl = sa.DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.TIMESTAMP(timezone=True))
        if _is_mysql(dialect):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(sa.DateTime())

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        utc = to_utc(value)
        return utc if dialect.name == "postgresql" else utc.replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # a value written by hand in a SQL console
            value = dt.datetime.fromisoformat(value)
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        result: dt.datetime = value.astimezone(SHANGHAI)
        return result
