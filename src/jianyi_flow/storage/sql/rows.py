"""How :class:`~jianyi_flow.storage.sql.store.SqlStore` lays out what it stores, and the conversions both ways.

A :class:`~jianyi_flow.storage.base.Change` becomes a :class:`Plan`: the checked parameters
of every statement its commit runs (:func:`plan_change`), so a bad value is a
:class:`~jianyi_flow.errors.ValidationError` before the database is touched.  A row read
back becomes a :class:`~jianyi_flow.domain.model.Suggestion`, an
:class:`~jianyi_flow.domain.model.Event`, an outbox message or a vault record
(``*_from_row``); a stored value that cannot be decoded is reported for its row
(:func:`decode_stored`, :func:`history_from_rows`), never as a bare exception.

Each suggestion field is either a column of its own (:data:`COLUMN_FIELDS`, the ones queries
filter and sort by) or an entry of the row's ``data`` JSON document (:data:`DATA_FIELDS`).
Shared by ``SqlStore`` and ``BatchingSqlStore``; not part of the public API (``jianyi_flow.sql`` is).
"""

from __future__ import annotations

import datetime as dt
import enum
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import attrs
import sqlalchemy as sa

from ...domain.clock import SHANGHAI, require_aware, to_utc
from ...domain.codec import DATETIME_FIELDS, FIELD_DECODERS, FIELD_ENCODERS, SUGGESTION_FIELDS, replace, suggestion_of
from ...domain.model import Actor, Event, Role, State, Suggestion
from ...domain.personal import PersonalRecord
from ...errors import JianyiFlowError, StoreError, ValidationError
from ..base import Change, IdempotencyRecord, OutboxMessage, StoredHistory, check_change
from .schema import events, idempotency, outbox, suggestions
from .types import CODE_LENGTH, Key, dumps, loads

T = TypeVar("T")

COLUMN_FIELDS: tuple[str, ...] = (
    "id",
    "campaign",
    "state",
    "version",
    "area",
    "topic",
    "lead_unit",
    "recommending_unit",
    "received_by",
    "registration_number",
    "received_at",
    "due_at",
    "due_provisional",
    "overdue_flagged_at",
    "updated_at",
)
"""Suggestion fields stored in a column of their own (and read back from it)."""

DATA_FIELDS: tuple[str, ...] = tuple(name for name in SUGGESTION_FIELDS if name not in COLUMN_FIELDS)
"""Suggestion fields stored in the ``data`` JSON document (new model fields land here)."""

_INT_MAX = 2**31 - 1
BIGINT_MAX = 2**63 - 1
"""The largest value a ``BIGINT`` column holds (an outbox message id is one)."""

_DATA_SET = frozenset(DATA_FIELDS)
DERIVED_COLUMNS = ("units", "proposer_account", "reported_upward", "forwarded_to_city")
"""The row's columns that are not a field of the suggestion (its vault may hold the account)."""
SET_NAMES = tuple(c.name for c in suggestions.columns if c.name != "id")
"""The columns a row ``UPDATE`` may set."""
UNIT_KEYS = ("due_at", "received_at", "registration_number")
"""The row's sort keys that its unit rows copy."""
UPDATES_MAX = 256
"""How many row ``UPDATE`` statements (one per set of changed columns) a store builds at most."""
DATA_AT = len(COLUMN_FIELDS)
"""The position of ``data`` in a row read back (after the column fields)."""
PERSONAL_COLUMNS = ("suggestion_id", "name", "phone", "address", "account", "salt", "erased_at", "erased_version")
"""The vault table's columns in the order every read of it selects them (see :func:`personal_from_row`)."""
ACCOUNT_AT = DATA_AT + 1 + DERIVED_COLUMNS.index("proposer_account")
"""The position of the ``proposer_account`` column in a row read back with its derived columns."""
VAULT_AT = DATA_AT + 1 + len(DERIVED_COLUMNS)
"""The position of the vault record's columns in a row ``SqlStore.load`` reads (after the derived ones)."""
_ROW_DATETIMES = tuple(name for name in COLUMN_FIELDS if name in DATETIME_FIELDS)
_ROW_REQUIRED = frozenset(name for name in _ROW_DATETIMES if not suggestions.c[name].nullable)
_DATA_DATETIMES = tuple(name for name in DATA_FIELDS if name in DATETIME_FIELDS)
_DATA_VALUES = operator.attrgetter(*DATA_FIELDS)
_DATA_ENCODERS = tuple((name, FIELD_ENCODERS[name]) for name in DATA_FIELDS if name in FIELD_ENCODERS)
_DATA_DECODERS = tuple((name, FIELD_DECODERS[name]) for name in DATA_FIELDS if name in FIELD_DECODERS)
"""The ``data`` fields whose values are converted to and from JSON (the others are stored as they are)."""


def _key_columns(table: sa.Table) -> tuple[tuple[str, int, bool], ...]:
    return tuple((c.name, c.type.length, bool(c.nullable)) for c in table.columns if isinstance(c.type, Key))


_ROW_KEYS = _key_columns(suggestions)
_EVENT_KEYS = _key_columns(events)
_OUTBOX_KEYS = _key_columns(outbox)
_IDEMPOTENCY_KEYS = _key_columns(idempotency)


@attrs.frozen
class Plan:
    """One Change, checked and encoded: the parameters of every statement its commit runs."""

    change: Change
    row: dict[str, Any]
    units: list[dict[str, Any]]
    copies: dict[str, Any]
    event: dict[str, Any]
    messages: list[dict[str, Any]]
    record: dict[str, Any] | None
    personal: dict[str, Any] | None = None
    redacted: tuple[dict[str, Any], ...] = ()

    @property
    def create(self) -> bool:
        return self.change.expected_version == 0


@attrs.frozen
class Loaded:
    """What a commit needs to know of a row read in its transaction: its columns and unit links."""

    version: int
    values: dict[str, Any]
    """The row's column values (``data`` aside), comparable with a :class:`Plan`'s ``row``."""
    links: frozenset[tuple[str, str]] | None
    """The unit rows the stored ``units`` stand for (``None`` if they do not agree with the row)."""


# --- checking and encoding a change -------------------------------------------------------------------------
def plan_change(change: Change) -> Plan:
    """Every statement's parameters for ``change``, checked: a bad value raises before the database is touched."""
    check_change(change)
    s, e = change.suggestion, change.event
    if change.expected_version > _INT_MAX - 1:  # the version columns are 32-bit
        raise ValidationError("change.expected_version", f"must be a whole number from 0 to {_INT_MAX - 1}",
                              code="out_of_range", details={"min": 0, "max": _INT_MAX - 1})
    try:
        row = row_params(s)
        event = _event_params(e)
        messages = [_message_params(m) for m in change.messages]
        record = None if change.idempotency is None else _record_params(change.idempotency, s.id)
        personal = None if change.personal_data is None else _personal_params(change.personal_data, s.id)
        redacted = tuple({"w_version": e.version, "w_hash": e.hash, "n_changes": dumps(dict(e.changes)),
                          "n_actor_id": e.actor.id, "n_actor_unit": e.actor.unit, "n_actor_name": e.actor.name}
                         for e in change.redacted)
    except (AttributeError, TypeError, ValueError) as exc:
        if isinstance(exc, JianyiFlowError):
            raise
        raise ValidationError("change", f"a value cannot be stored: {exc}") from None
    copies = {"w_id": s.id, "n_due_at": row["due_at"], "n_received_at": row["received_at"],
              "n_registration_number": row["registration_number"]}
    units = [{"unit": unit, "relation": relation, "suggestion_id": s.id, "due_at": row["due_at"],
              "received_at": row["received_at"], "registration_number": row["registration_number"]}
             for relation, unit in _unit_links(s)]
    return Plan(change, row, units, copies, event, messages, record, personal, redacted)


def _personal_params(record: PersonalRecord, sid: str) -> dict[str, Any]:
    if not isinstance(record, PersonalRecord) or record.suggestion_id != sid:
        raise ValidationError("change.personal_data", "must be the PersonalRecord of the change's suggestion")
    if record.erased_at is not None:
        require_aware(record.erased_at, "change.personal_data.erased_at")
    if record.erased_version is not None and not _whole(record.erased_version, 1, _INT_MAX):
        raise ValidationError("change.personal_data.erased_version", f"must be a whole number from 1 to {_INT_MAX}",
                              code="out_of_range", details={"min": 1, "max": _INT_MAX})
    for name, value in (*record.fields().items(), ("salt", record.salt)):
        if value is not None and not isinstance(value, str):
            raise ValidationError(f"change.personal_data.{name}", "must be text", code="not_text")
    return {"suggestion_id": sid, **record.fields(), "salt": record.salt, "erased_at": record.erased_at,
            "erased_version": record.erased_version}


def personal_from_row(row: Sequence[Any]) -> PersonalRecord:
    """A vault record from its columns, in the table's order."""
    suggestion_id, name, phone, address, account, salt, erased_at, erased_version = row
    version = None if erased_version is None else int(erased_version)
    return PersonalRecord(suggestion_id, name, phone, address, account, salt, _maybe_instant(erased_at), version)


_FROM_VAULT: Any = object()
"""``resolve_personal``'s default: the proposer's account is the vault's."""


def resolve_personal(s: Suggestion, record: PersonalRecord | None, account: Any = _FROM_VAULT) -> Suggestion:
    """``s`` with its proposer's data from the vault record; ``account``, when given, is the row's
    ``proposer_account`` column, read as the account so that an audit compares the index with the vault."""
    if not s.proposer.vaulted:
        return s
    proposer = s.proposer if record is None or s.proposer.erased else record.resolve(s.proposer)
    if account is not _FROM_VAULT and account != proposer.account:
        proposer = attrs.evolve(proposer, account=account)
    return s if proposer is s.proposer else replace(s, {"proposer": proposer})


def _whole(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _check_keys(values: Mapping[str, Any], columns: Sequence[tuple[str, int, bool]], where: str) -> None:
    for name, length, nullable in columns:
        value = values.get(name)
        if value is None:
            if not nullable:
                raise ValidationError(f"{where}.{name}", "is required", code="required")
        elif not isinstance(value, str):
            raise ValidationError(f"{where}.{name}", "must be text", code="not_text")
        elif len(value) > length:
            raise ValidationError(f"{where}.{name}", f"is at most {length} characters", code="too_long",
                                  details={"max_length": length, "length": len(value)})


def _enum_value(kind: type[enum.Enum], value: object, field: str) -> Any:
    try:
        return kind(value).value
    except ValueError:
        raise ValidationError(field, f"is not a {kind.__name__}: {value!r}") from None


def _units(s: Suggestion) -> str:
    """The ``units`` column of ``s``: its lead, recommending and co-handling units as JSON."""
    return dumps([s.lead_unit, s.recommending_unit, list(s.co_units)])


def loaded_row(s: Suggestion, row: Sequence[Any]) -> Loaded:
    """What a commit needs of row ``s`` as read by ``SqlStore.load`` (its derived columns last)."""
    values = {name: getattr(s, name) for name in COLUMN_FIELDS}
    units, account, upward, city = row[DATA_AT + 1:VAULT_AT]
    values.update(units=units, proposer_account=account, reported_upward=bool(upward), forwarded_to_city=bool(city))
    links = frozenset(_unit_links(s)) if units == _units(s) else None
    return Loaded(s.version, values, links)


def _unit_links(s: Suggestion) -> list[tuple[str, str]]:
    """``(relation, unit)`` of every unit row of ``s``, as :func:`~jianyi_flow.storage.base.matches` relates them."""
    links: list[tuple[str, str]] = []
    if s.lead_unit is not None:
        links.append(("lead", s.lead_unit))
    if s.recommending_unit is not None:
        links.append(("recommending", s.recommending_unit))
    links += [("co", unit) for unit in dict.fromkeys(s.co_units)]
    links += [("any", unit) for unit in s.units()]
    return links


def row_params(s: Suggestion) -> dict[str, Any]:
    row: dict[str, Any] = {name: getattr(s, name) for name in COLUMN_FIELDS}
    row["state"] = _enum_value(State, s.state, "suggestion.state")
    if not _whole(s.version, 1, _INT_MAX):
        raise ValidationError("suggestion.version", f"must be a whole number from 1 to {_INT_MAX}",
                              code="out_of_range", details={"min": 1, "max": _INT_MAX})
    if not isinstance(s.due_provisional, bool):
        raise ValidationError("suggestion.due_provisional", "must be true or false")
    for name in _ROW_DATETIMES:
        if row[name] is not None:
            row[name] = to_utc(row[name], f"suggestion.{name}")
        elif name in _ROW_REQUIRED:  # a NOT NULL column: refused here, not by the database
            raise ValidationError(f"suggestion.{name}", "is required", code="required")
    for name in _DATA_DATETIMES:
        if getattr(s, name) is not None:
            require_aware(getattr(s, name), f"suggestion.{name}")
    if s.extension_request is not None:
        require_aware(s.extension_request.requested_at, "suggestion.extension_request.requested_at")
    if not isinstance(s.co_units, tuple) or not all(isinstance(u, str) for u in s.co_units):
        raise ValidationError("suggestion.co_units", "must be a tuple of unit codes")
    row["proposer_account"] = s.proposer.account
    row["reported_upward"] = bool(s.upward_reports)
    row["forwarded_to_city"] = s.forwarded_to_city_at is not None
    _check_keys(row, _ROW_KEYS, "suggestion")
    for unit in s.co_units:
        if len(unit) > CODE_LENGTH:
            raise ValidationError("suggestion.co_units", f"codes are at most {CODE_LENGTH} characters")
    row["units"] = _units(s)
    row["data"] = _data(s)
    return row


def _data(s: Suggestion) -> str:
    """The ``data`` column of ``s``: its :data:`DATA_FIELDS` as JSON."""
    # one read of every field, then only the fields that need it are converted
    data = dict(zip(DATA_FIELDS, _DATA_VALUES(s), strict=True))
    for name, encode in _DATA_ENCODERS:
        value = data[name]
        if value is not None:
            data[name] = encode(value)
    return dumps(data)


def _event_params(e: Event) -> dict[str, Any]:
    actor = e.actor
    if not isinstance(actor, Actor):
        raise ValidationError("event.actor", "must be an Actor")
    if actor.name is not None and not isinstance(actor.name, str):
        raise ValidationError("event.actor.name", "must be text")
    if e.reason is not None and not isinstance(e.reason, str):
        raise ValidationError("event.reason", "must be text")
    for name in ("prev_hash", "hash") + (("mac",) if e.mac is not None else ()):
        value = getattr(e, name)
        if not isinstance(value, str) or len(value) > 64:
            raise ValidationError(f"event.{name}", "must be hexadecimal text of at most 64 characters")
    params = {
        "suggestion_id": e.suggestion_id,
        "version": e.version,
        "kind": e.kind,
        "from_state": None if e.from_state is None else _enum_value(State, e.from_state, "event.from_state"),
        "to_state": _enum_value(State, e.to_state, "event.to_state"),
        "actor_id": actor.id,
        "actor_role": _enum_value(Role, actor.role, "event.actor.role"),
        "actor_unit": actor.unit,
        "actor_name": actor.name,
        "at": to_utc(e.at, "event.at"),
        "reason": e.reason,
        "changes": dumps(dict(e.changes)),
        "payload": dumps(dict(e.payload)),
        "prev_hash": e.prev_hash,
        "hash": e.hash,
        "notices": dumps(list(e.notices)),
        "workflow": e.workflow,
        "policy": e.policy,
        "mac": e.mac,
    }
    _check_keys(params, _EVENT_KEYS, "event")
    return params


def _message_params(m: OutboxMessage) -> dict[str, Any]:
    if not _whole(m.version, 1, _INT_MAX):
        raise ValidationError("message.version", f"must be a whole number from 1 to {_INT_MAX}",
                              code="out_of_range", details={"min": 1, "max": _INT_MAX})
    params = {
        "topic": m.topic,
        "suggestion_id": m.suggestion_id,
        "version": m.version,
        "recipient": m.recipient,
        "payload": dumps(dict(m.payload)),
        "created_at": to_utc(m.created_at, "message.created_at"),
    }
    _check_keys(params, _OUTBOX_KEYS, "message")
    return params


def _record_params(record: IdempotencyRecord, sid: str) -> dict[str, Any]:
    if not isinstance(record, IdempotencyRecord):
        raise ValidationError("change.idempotency", "must be an IdempotencyRecord")
    if not _whole(record.version, 0, _INT_MAX):
        raise ValidationError("idempotency.version", f"must be a whole number from 0 to {_INT_MAX}",
                              code="out_of_range", details={"min": 0, "max": _INT_MAX})
    params = {"scope": record.scope, "key": record.key, "suggestion_id": record.suggestion_id,
              "version": record.version, "command": record.command, "fingerprint": record.fingerprint}
    _check_keys(params, _IDEMPOTENCY_KEYS, "idempotency")
    if not isinstance(record.fingerprint, str) or len(record.fingerprint) > 64:
        raise ValidationError("idempotency.fingerprint", "must be text of at most 64 characters")
    return params


# --- decoding what was stored -------------------------------------------------------------------------------
_STATE_OF = FIELD_DECODERS["state"]
"""A stored state's member (a table lookup)."""


def _instant(value: Any) -> dt.datetime:
    """A stored datetime (text on SQLite, naive UTC on MariaDB, aware on PostgreSQL) as an aware one in Shanghai."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if not isinstance(value, dt.datetime):
        raise TypeError(f"not a datetime: {value!r}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    result: dt.datetime = value.astimezone(SHANGHAI)
    return result


def _maybe_instant(value: Any) -> dt.datetime | None:
    return None if value is None else _instant(value)


def suggestion_from_row(row: Sequence[Any]) -> Suggestion:
    fields = dict(zip(COLUMN_FIELDS, row, strict=False))
    fields["state"] = _STATE_OF(fields["state"])
    fields["version"] = int(fields["version"])
    fields["due_provisional"] = bool(fields["due_provisional"])
    for name in _ROW_DATETIMES:
        fields[name] = _maybe_instant(fields[name])
    data = loads(row[len(COLUMN_FIELDS)])
    if not isinstance(data, dict):
        raise TypeError("data is not a JSON object")
    if not data.keys() <= _DATA_SET:  # names this version does not know (or that are columns) are left out
        data = {name: value for name, value in data.items() if name in _DATA_SET}
    for name, decode in _DATA_DECODERS:  # only the fields that need it are converted
        value = data.get(name)
        if value is not None:
            data[name] = decode(value)
    fields.update(data)
    return suggestion_of(fields)


def event_from_row(row: Any) -> Event:
    notices = loads(row.notices)
    changes, payload = loads(row.changes), loads(row.payload)
    if not isinstance(notices, list) or not isinstance(changes, dict) or not isinstance(payload, dict):
        raise TypeError("changes, payload or notices is not the JSON it should be")
    return Event(
        suggestion_id=row.suggestion_id,
        version=int(row.version),
        kind=row.kind,
        from_state=None if row.from_state is None else _STATE_OF(row.from_state),
        to_state=_STATE_OF(row.to_state),
        actor=Actor(id=row.actor_id, role=Role(row.actor_role), unit=row.actor_unit, name=row.actor_name),
        at=_instant(row.at),
        reason=row.reason,
        changes=changes,
        payload=payload,
        prev_hash=row.prev_hash,
        hash=row.hash,
        notices=tuple(notices),
        workflow=row.workflow,
        policy=row.policy,
        seq=int(row.seq),
        mac=row.mac,
    )


def message_from_row(row: Any) -> OutboxMessage:
    payload = loads(row.payload)
    if not isinstance(payload, dict):
        raise TypeError("payload is not a JSON object")
    return OutboxMessage(
        topic=row.topic,
        suggestion_id=row.suggestion_id,
        version=int(row.version),
        recipient=row.recipient,
        created_at=_instant(row.created_at),
        payload=payload,
        id=int(row.id),
        attempts=int(row.attempts),
        sent_at=_maybe_instant(row.sent_at),
    )


_DECODE_ERRORS = (ValueError, TypeError, KeyError, AttributeError)


def decode_stored(decode: Callable[[Any], T], row: Any, sid: object, what: str) -> T:
    try:
        return decode(row)
    except _DECODE_ERRORS as exc:
        raise StoreError(f"a stored {what} of suggestion {sid!r} cannot be decoded: {first_line(exc)}") from None


def history_from_rows(sid: str, row: Any, found: list[Any], messages: list[Any], record: Any = None) -> StoredHistory:
    what = "vault record"
    try:
        personal = None if record is None else personal_from_row(record)
        what = "row"
        suggestion = None if row is None else resolve_personal(suggestion_from_row(row), personal, row[ACCOUNT_AT])
        what = "event"
        decoded = tuple(event_from_row(r) for r in found)
        what = "outbox message"
        sent = tuple(message_from_row(r) for r in messages)
    except _DECODE_ERRORS as exc:
        return StoredHistory(sid, None, (), (), problem=f"a stored {what} cannot be decoded: {first_line(exc)}")
    return StoredHistory(sid, suggestion, decoded, sent, personal=personal)


def first_line(exc: object) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
