"""Column types that make SQLite, PostgreSQL and MariaDB store the same values the same way.

Three things differ between the databases and would otherwise make a row read back
differently from how it was written:

* **Time zones.**  SQLite has no datetime type and SQLAlchemy's emulation silently drops
  ``tzinfo``; MariaDB's ``DATETIME`` has no zone and, without a precision, no
  microseconds.  :class:`UtcDateTime` refuses naive values, stores the UTC instant
  (``TIMESTAMP WITH TIME ZONE`` on PostgreSQL, ``DATETIME(6)`` on MariaDB, ISO text on
  SQLite) and gives back aware values in Asia/Shanghai, the zone the rest of the library
  reports in, so a loaded row compares equal to the one committed.
* **Text ordering.**  Ids are ordered and paged (``after_id``) the way Python orders
  strings, by code point.  PostgreSQL's default collation may be a linguistic one
  (``en_US.UTF-8`` puts ``"a"`` before ``"B"``), so code columns use ``COLLATE "C"``
  there; MariaDB tables use ``utf8mb4_bin`` (see :mod:`jianyi_flow.sql.schema`); SQLite
  compares bytes already.
* **Long text.**  MariaDB's ``TEXT`` holds only 64 KiB, less than a suggestion's bodies
  in Chinese (3 bytes a character), so long text is ``LONGTEXT`` there.

JSON is kept as text written by ``json.dumps(ensure_ascii=False)`` rather than each
database's JSON type: the three JSON types disagree on key order, number formatting and
validation (MariaDB's is a ``LONGTEXT`` with a ``CHECK``), while the library only ever
reads whole documents back, never queries inside them.  Text round-trips exactly
everywhere and stays readable in a SQL console (Chinese is not escaped).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeEngine

from ..clock import SHANGHAI
from ..errors import ValidationError

__all__ = ["CODE_LENGTH", "KEY_LENGTH", "Code", "JsonText", "LongText", "UtcDateTime"]

CODE_LENGTH = 64
"""Ids and codes (suggestion id, unit, area, topic, campaign...): Flow allows 32 characters."""

KEY_LENGTH = 255
"""Idempotency keys: Flow allows 128 characters; 255 utf8mb4 characters still fit an InnoDB key."""

_MYSQL = ("mysql", "mariadb")


def _is_mysql(dialect: Dialect) -> bool:
    return dialect.name in _MYSQL


class Code(sa.types.TypeDecorator[str]):
    """A short identifier compared by code point on every database (``COLLATE "C"`` on PostgreSQL)."""

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


class JsonText(sa.types.TypeDecorator[Any]):
    """A JSON document stored as :class:`LongText` (see the module docstring for why not a JSON type).

    ``None`` is stored as SQL ``NULL``.  A value ``json.dumps`` cannot write (a set, a
    datetime, NaN) raises :class:`~jianyi_flow.errors.ValidationError`: payloads and
    event changes must be JSON-ready, which the hash chain relies on too.
    """

    impl = sa.Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if _is_mysql(dialect):
            return dialect.type_descriptor(mysql.LONGTEXT())
        return dialect.type_descriptor(sa.Text())

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return dumps(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        return json.loads(value)


def dumps(value: Any) -> str:
    """Compact JSON with Chinese kept as is; anything not JSON-ready is a :class:`ValidationError`."""
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValidationError("json", f"value is not JSON-ready: {exc}") from None


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


def to_utc(value: object, field: str = "datetime") -> dt.datetime:
    """``value`` as an aware UTC datetime; :class:`ValidationError` if it is not an aware datetime."""
    if not isinstance(value, dt.datetime):
        raise ValidationError(field, "must be a datetime")
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValidationError(field, "must be timezone-aware (naive datetimes are ambiguous)")
    return value.astimezone(dt.UTC)
