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
  there; MariaDB tables use ``utf8mb4_bin`` (see :mod:`jianyi_flow.storage.sql.schema`); SQLite
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
import json.encoder as _json_encoder
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.engine.processors import str_to_datetime
from sqlalchemy.types import TypeEngine

from ...domain.clock import SHANGHAI, InstantTexts, to_utc
from ...errors import ValidationError

__all__ = [
    "CODE_LENGTH",
    "KEY_LENGTH",
    "SQLITE_DATETIME_FORMAT",
    "Code",
    "JsonText",
    "LongText",
    "UtcDateTime",
    "sqlite_utc_bind",
    "sqlite_utc_result",
]

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
        if type(value) is EncodedJson:  # encoded already (and so checked) when the command ran
            return str(value)
        return dumps(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        return json.loads(value)


class EncodedJson(str):
    """JSON text that :class:`JsonText` binds as is (the store encodes some documents early, to fail early)."""

    __slots__ = ()


def dumps(value: Any) -> str:
    """Compact JSON with Chinese kept as is; anything not JSON-ready is a :class:`ValidationError`.

    The text is exactly ``json.dumps(value, ensure_ascii=False, separators=(",", ":"),
    allow_nan=False)``.  Every statement of every command writes some JSON, so the C
    encoder that call builds each time is built once here (without the check for circular
    references, whose marker table could not be shared between threads: a structure that
    contains itself is sent to ``json.dumps``, which reports it).  orjson
    (:mod:`jianyi_flow.domain.jsontext`) is not used here: for these small documents its check and
    fragments cost as much as they save (``python -m benchmarks.json_text``).
    """
    kind = type(value)
    if kind is str:  # the commonest values, written as the encoder writes them, without its set-up
        return _encode_str(value)
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return int.__repr__(value)
    if kind is dict and not value:
        return "{}"
    if _encode_json is not None:
        try:
            return "".join(_encode_json(value, 0))
        except (TypeError, ValueError) as exc:
            raise ValidationError("json", f"value is not JSON-ready: {exc}") from None
        except RecursionError:
            pass  # a cycle, or very deep nesting: json.dumps tells which
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValidationError("json", f"value is not JSON-ready: {exc}") from None


def _not_json(value: Any) -> Any:
    raise TypeError(f"Object of type {value.__class__.__name__} is not JSON serializable")


_encode_str: Callable[[str], str] = _json_encoder.encode_basestring  # what the encoder below runs for a str
_make_encoder: Any = getattr(_json_encoder, "c_make_encoder", None)
_encode_json: Any = None
_encode_spaced: Any = None
if _make_encoder is not None:  # pragma: no branch - CPython has it
    # (markers, default, encoder, indent, key_separator, item_separator, sort_keys, skipkeys, allow_nan)
    _encode_json = _make_encoder(None, _not_json, _encode_str, None, ":", ",", False, False, False)
    # json.dumps(value, ensure_ascii=False): its default separators, NaN allowed
    _encode_spaced = _make_encoder(None, _not_json, _encode_str, None, ": ", ", ", False, False, True)


def dumps_spaced(value: Any) -> str:
    """Exactly ``json.dumps(value, ensure_ascii=False)`` (json's default separators ``", "`` and ``": "``).

    Kept for the texts that were always written that way (the ``units_key`` column, compared
    to skip rewriting a row's unit links).  ``json.dumps`` with an argument builds a
    ``JSONEncoder`` and a C encoder on every call (3.1 µs a row of the simulation); this one
    is built once (0.5 µs; ``python -m benchmarks.json_text``).  A value it cannot write
    goes to ``json.dumps``, which raises as it always did.
    """
    if _encode_spaced is not None:
        try:
            return "".join(_encode_spaced(value, 0))
        except (TypeError, ValueError, RecursionError):
            pass
    return json.dumps(value, ensure_ascii=False)


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


# --- SQLite's UtcDateTime conversions, for statements run straight on the driver -------------
SQLITE_DATETIME_FORMAT = "%(year)04d-%(month)02d-%(day)02d %(hour)02d:%(minute)02d:%(second)02d.%(microsecond)06d"
"""SQLAlchemy's default SQLite storage format: :func:`sqlite_utc_bind` writes exactly this text."""

_UTC = dt.UTC


def sqlite_utc_bind(value: dt.datetime | None) -> str | None:
    """What Core binds for a :class:`UtcDateTime` on SQLite (``process_bind_param`` then SQLite's
    ``DATETIME`` formatting, :data:`SQLITE_DATETIME_FORMAT`), in one step.

    A command binds its time three times or so, and deadlines repeat: the texts are
    memoised by instant (:class:`~jianyi_flow.domain.clock.InstantTexts`, as ``encode_datetime``).
    """
    return None if value is None else _bound_text(value)


def _sqlite_utc_text(value: dt.datetime) -> str:
    return to_utc(value).replace(tzinfo=None).isoformat(" ", "microseconds")


_bound_text = InstantTexts(_sqlite_utc_text)


def sqlite_utc_result(value: Any) -> dt.datetime | None:
    """What Core reads for a :class:`UtcDateTime` on SQLite, in one step.

    Deadlines repeat (every suggestion due on a day shares its end-of-day), so results are
    memoised by their text in a small table, emptied when it grows past 4096 entries.
    """
    if value is None:
        return None
    if type(value) is str:
        found = _READ.get(value)
        if found is not None:
            return found
        result = _sqlite_utc_result(value)
        if result is not None:
            if len(_READ) > 4096:
                _READ.clear()
            _READ[value] = result
        return result
    return _sqlite_utc_result(value)


_READ: dict[str, dt.datetime] = {}


def _sqlite_utc_result(value: Any) -> dt.datetime | None:
    if isinstance(value, str):
        parsed = str_to_datetime(value)
        if parsed is None:
            return None
        value = parsed
    if value.tzinfo is None:
        value = value.replace(tzinfo=_UTC)
    result: dt.datetime = value.astimezone(SHANGHAI)
    return result
