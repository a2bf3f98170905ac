"""The event log, scoped idempotency keys, sortable unit links, NO PAD keys, metadata.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

What changes, and how existing rows are carried over:

* ``jianyi_suggestions`` gains the columns lists filter and sort on: ``proposer_account``
  (from ``data.proposer.account``), ``received_by`` and ``due_provisional`` (moved out of
  ``data`` when a document has them; else ``NULL`` and false), ``reported_upward`` (whether
  ``data.upward_reports`` is not empty), ``forwarded_to_city`` (whether
  ``data.forwarded_to_city_at`` is set) and ``units`` (the unit links as text, which
  replaces ``units_key``); new indexes for received, registration, area/topic in received
  order, proposer and receiver lists.
* ``jianyi_suggestion_units`` is rebuilt: one row per ``(unit, relation, suggestion)``
  (relations ``lead``, ``co``, ``recommending``, ``any``) with copies of ``due_at``,
  ``received_at`` and ``registration_number``, filled from every suggestion.
* ``jianyi_events`` gains ``seq`` (the place in the store's log), ``notices``, ``workflow``,
  ``policy`` and ``mac``.  Existing events are numbered 1..n in the order
  ``(at, suggestion_id, version)``, and the counter ``jianyi_counters.event_seq`` starts at n;
  their ``notices`` are ``[]`` and the other three ``NULL`` (their hashes did not cover them).
* ``jianyi_idempotency`` is keyed by ``(scope, key)``: the scope of an existing key is the
  actor of the event it produced (``role:id@unit``, as ``Actor.key``); its ``fingerprint``
  is empty, since the request it answered was never stored.  The foreign key to the
  suggestion goes (the record is now written before a new suggestion's row).
* outbox ``(suggestion_id, id)`` index, for an audit's ordered pass.
* ``jianyi_counters`` and ``jianyi_meta`` are new.
* MariaDB/MySQL: every id, key and code column gets the binary NO PAD collation
  (``utf8mb4_nopad_bin``; MySQL 8: ``utf8mb4_0900_bin``), so ``"k"`` and ``"k "`` differ;
  PostgreSQL: the text columns compared by the store that were not ``COLLATE "C"`` yet
  (``registration_number``, ``actor_id``, ``recipient``, idempotency ``key``) get it.

The suggestions are read a page of 1,000 at a time by id; a ``data`` document that is not
a JSON object stops the upgrade with the row's id (fix the row and run it again: each step
checks what an earlier, interrupted attempt already did on SQLite and MariaDB, which commit
DDL at once).  On PostgreSQL the whole upgrade is one transaction.  It moves values
between rows, so it cannot be printed as SQL (``--sql``).

Downgrade restores the 0003 tables (the old unit rows and ``units_key`` are rebuilt from the
suggestions; ``received_by`` and ``due_provisional`` go back into ``data``).  It refuses to
run when two scopes used the same idempotency key, which the 0003 table cannot hold.
Events written at 0004 lose ``seq``, ``notices``, ``workflow``, ``policy`` and ``mac``: a
downgrade is for backing out of a failed deployment.

The table definitions are spelled out here rather than imported, so later changes to the
schema cannot change what this revision does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import context, op

from jianyi_flow.errors import StoreError
from jianyi_flow.storage.sql.types import Code, JsonText, Key, LongText, UtcDateTime

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MYSQL: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}
_PAGE = 1000
_S, _U, _E, _O, _I = (
    "jianyi_suggestions", "jianyi_suggestion_units", "jianyi_events", "jianyi_outbox", "jianyi_idempotency")
_EVENTS_FK = "fk_jianyi_events_suggestion_id_jianyi_suggestions"
_KEYS_FK = "fk_jianyi_idempotency_suggestion_id_jianyi_suggestions"
_UNITS_FK = "fk_jianyi_suggestion_units_suggestion_id_jianyi_suggestions"
_SEQ_HELPER = "jianyi_event_seq_0004"

# (table, column, type at 0003, type at 0004, nullable): the columns the store compares as keys
_KEY_COLUMNS: tuple[tuple[str, str, Any, Any, bool], ...] = (
    (_S, "id", Code(64), Key(64), False),
    (_S, "campaign", Code(64), Key(64), True),
    (_S, "state", Code(32), Key(32), False),
    (_S, "area", Code(64), Key(64), False),
    (_S, "topic", Code(64), Key(64), True),
    (_S, "lead_unit", Code(64), Key(64), True),
    (_S, "recommending_unit", Code(64), Key(64), True),
    (_S, "registration_number", sa.String(128), Key(128), True),
    (_E, "suggestion_id", Code(64), Key(64), False),
    (_E, "kind", Code(64), Key(64), False),
    (_E, "from_state", Code(32), Key(32), True),
    (_E, "to_state", Code(32), Key(32), False),
    (_E, "actor_id", sa.String(128), Key(128), False),
    (_E, "actor_role", Code(32), Key(32), False),
    (_E, "actor_unit", Code(64), Key(64), True),
    (_O, "topic", Code(64), Key(64), False),
    (_O, "suggestion_id", Code(64), Key(64), False),
    (_O, "recipient", sa.String(128), Key(128), False),
    (_I, "key", sa.String(255), Key(255), False),
    (_I, "suggestion_id", Code(64), Key(64), False),
    (_I, "command", Code(64), Key(64), False),
)

_NEW_SUGGESTION_INDEXES = (
    ("ix_jianyi_suggestions_received", ["received_at", "id"]),
    ("ix_jianyi_suggestions_registration", ["registration_number", "id"]),
    ("ix_jianyi_suggestions_area_received", ["area", "received_at", "id"]),
    ("ix_jianyi_suggestions_topic_received", ["topic", "received_at", "id"]),
    ("ix_jianyi_suggestions_proposer", ["proposer_account", "received_at", "id"]),
    ("ix_jianyi_suggestions_received_by", ["received_by", "received_at", "id"]),
)

_rows = sa.table(
    _S,
    sa.column("id", Key()),
    sa.column("lead_unit", Key()),
    sa.column("recommending_unit", Key()),
    sa.column("registration_number", Key(128)),
    sa.column("received_at", UtcDateTime()),
    sa.column("due_at", UtcDateTime()),
    sa.column("data", sa.Text()),
    sa.column("proposer_account", Key(128)),
    sa.column("received_by", Key(128)),
    sa.column("due_provisional", sa.Boolean()),
    sa.column("reported_upward", sa.Boolean()),
    sa.column("forwarded_to_city", sa.Boolean()),
    sa.column("units", sa.Text()),
    sa.column("units_key", sa.Text()),
)


def _compact(value: Any) -> str:
    """The text the 0004 store writes (``jianyi_flow.storage.sql.types.dumps``, spelled out)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _online() -> None:
    if context.is_offline_mode():
        raise StoreError("migration 0004 moves values between rows: run it against the database "
                         "(jianyi-flow db upgrade URL), it cannot be printed as SQL")


def _is_mysql() -> bool:
    return op.get_bind().dialect.name in ("mysql", "mariadb")


def _columns(table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}


def _tables() -> set[str]:
    return set(sa.inspect(op.get_bind()).get_table_names())


def _foreign_keys(table: str) -> set[str]:
    return {fk["name"] for fk in sa.inspect(op.get_bind()).get_foreign_keys(table) if fk["name"]}


def _indexes(table: str) -> set[str]:
    return {ix["name"] for ix in sa.inspect(op.get_bind()).get_indexes(table) if ix["name"]}


def _pages(columns: Sequence[Any]) -> Iterator[Sequence[Any]]:
    """Every suggestion's ``columns`` (the first is the id), a page at a time, by id."""
    bind = op.get_bind()
    after: str | None = None
    while True:
        stmt = sa.select(*columns).order_by(_rows.c.id).limit(_PAGE)
        if after is not None:
            stmt = stmt.where(_rows.c.id > after)
        page = bind.execute(stmt).all()
        if not page:
            return
        yield page
        after = page[-1][0]


def _document(sid: str, text: str) -> dict[str, Any]:
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise StoreError(f"migration 0004: suggestion {sid!r} has a data document that is not a JSON object; "
                         "correct it and run the upgrade again")
    return document


def _links(lead: str | None, recommending: str | None, co: list[str]) -> list[tuple[str, str]]:
    """``(relation, unit)`` of a suggestion's unit rows, as the 0004 store writes them."""
    links: list[tuple[str, str]] = []
    if lead is not None:
        links.append(("lead", lead))
    if recommending is not None:
        links.append(("recommending", recommending))
    links += [("co", unit) for unit in dict.fromkeys(co)]
    links += [("any", unit) for unit in _any_units(lead, recommending, co)]
    return links


def _any_units(lead: str | None, recommending: str | None, co: list[str]) -> list[str]:
    """``Suggestion.units()``: recommending, lead and co-handling units, each once."""
    found = [u for u in (recommending, lead) if u]
    return list(dict.fromkeys([*found, *co]))


# --- upgrade ------------------------------------------------------------------------------------------------
def upgrade() -> None:
    _online()
    mysql = _is_mysql()
    if mysql:  # a column in a foreign key cannot change its collation: drop them, put back the one that stays
        if _EVENTS_FK in _foreign_keys(_E):
            op.drop_constraint(_EVENTS_FK, _E, type_="foreignkey")
        if _KEYS_FK in _foreign_keys(_I):
            op.drop_constraint(_KEYS_FK, _I, type_="foreignkey")
        if _KEYS_FK in _indexes(_I):  # the index InnoDB made for that key
            op.drop_index(_KEYS_FK, table_name=_I)
    if "units_key" in _columns(_S) and _U in _tables() and "relation" not in _columns(_U):
        op.drop_table(_U)
    _change_key_types(upgrade=True)
    _add_columns()
    _create_tables()
    _fill_suggestions()
    _fill_events()
    _fill_idempotency()
    with op.batch_alter_table(_S) as batch:
        for name in ("due_provisional", "reported_upward", "forwarded_to_city"):
            batch.alter_column(name, existing_type=sa.Boolean(), nullable=False)
        batch.alter_column("units", existing_type=LongText(), nullable=False)
        batch.drop_column("units_key")
    with op.batch_alter_table(_E) as batch:
        batch.alter_column("seq", existing_type=sa.BigInteger(), nullable=False)
        batch.alter_column("notices", existing_type=JsonText(), nullable=False)
    with op.batch_alter_table(_I) as batch:
        if not mysql and _KEYS_FK in _foreign_keys(_I):
            batch.drop_constraint(_KEYS_FK, type_="foreignkey")
        batch.alter_column("scope", existing_type=Key(255), nullable=False)
        batch.alter_column("fingerprint", existing_type=sa.String(64), nullable=False)
        batch.drop_constraint("pk_jianyi_idempotency", type_="primary")
        batch.create_primary_key("pk_jianyi_idempotency", ["scope", "key"])
    for name, columns in _NEW_SUGGESTION_INDEXES:
        op.create_index(name, _S, columns)
    op.create_index("uq_jianyi_events_seq", _E, ["seq"], unique=True)
    op.create_index("ix_jianyi_outbox_suggestion", _O, ["suggestion_id", "id"])
    if mysql:
        op.create_foreign_key(_EVENTS_FK, _E, _S, ["suggestion_id"], ["id"])


def _change_key_types(*, upgrade: bool) -> None:
    """MariaDB: every key column to NO PAD (or back); PostgreSQL: the plain text ones to ``COLLATE "C"``."""
    name = op.get_bind().dialect.name
    if name == "sqlite":
        return  # SQLite compares bytes whatever the declared type
    for table, column, old, new, nullable in _KEY_COLUMNS:
        if name == "postgresql" and isinstance(old, Code):
            continue  # already COLLATE "C"
        op.alter_column(table, column, type_=new if upgrade else old, existing_type=old if upgrade else new,
                        existing_nullable=nullable)


def _add_columns() -> None:
    column: sa.Column[Any]
    have = _columns(_S)
    for column in (
        sa.Column("proposer_account", Key(128), nullable=True),
        sa.Column("received_by", Key(128), nullable=True),
        sa.Column("due_provisional", sa.Boolean(), nullable=True),
        sa.Column("reported_upward", sa.Boolean(), nullable=True),
        sa.Column("forwarded_to_city", sa.Boolean(), nullable=True),
        sa.Column("units", LongText(), nullable=True),
    ):
        if column.name not in have:
            op.add_column(_S, column)
    have = _columns(_E)
    for column in (
        sa.Column("seq", sa.BigInteger(), nullable=True),
        sa.Column("notices", JsonText(), nullable=True),
        sa.Column("workflow", Key(128), nullable=True),
        sa.Column("policy", Key(128), nullable=True),
        sa.Column("mac", sa.String(64), nullable=True),
    ):
        if column.name not in have:
            op.add_column(_E, column)
    have = _columns(_I)
    for column in (sa.Column("scope", Key(255), nullable=True), sa.Column("fingerprint", sa.String(64), nullable=True)):
        if column.name not in have:
            op.add_column(_I, column)


def _create_tables() -> None:
    tables = _tables()
    if _U not in tables:
        op.create_table(
            _U,
            sa.Column("unit", Key(64), nullable=False),
            sa.Column("relation", Key(16), nullable=False),
            sa.Column("suggestion_id", Key(64), nullable=False),
            sa.Column("due_at", UtcDateTime(), nullable=True),
            sa.Column("received_at", UtcDateTime(), nullable=False),
            sa.Column("registration_number", Key(128), nullable=True),
            sa.ForeignKeyConstraint(["suggestion_id"], ["jianyi_suggestions.id"], name=_UNITS_FK),
            sa.PrimaryKeyConstraint("unit", "relation", "suggestion_id", name="pk_jianyi_suggestion_units"),
            comment="Each unit's relation (lead, co, recommending, any) to each suggestion, with its sort keys.",
            **_MYSQL,
        )
        op.create_index("ix_jianyi_suggestion_units_due", _U, ["unit", "relation", "due_at", "suggestion_id"])
        op.create_index("ix_jianyi_suggestion_units_received", _U,
                        ["unit", "relation", "received_at", "suggestion_id"])
        op.create_index("ix_jianyi_suggestion_units_registration", _U,
                        ["unit", "relation", "registration_number", "suggestion_id"])
        op.create_index("ix_jianyi_suggestion_units_suggestion", _U, ["suggestion_id"])
    if "jianyi_counters" not in tables:
        op.create_table(
            "jianyi_counters",
            sa.Column("name", Key(64), nullable=False),
            sa.Column("value", sa.BigInteger(), nullable=False),
            sa.PrimaryKeyConstraint("name", name="pk_jianyi_counters"),
            comment="Counters kept in the commit's transaction: event_seq is the last seq given to an event.",
            **_MYSQL,
        )
    if "jianyi_meta" not in tables:
        op.create_table(
            "jianyi_meta",
            sa.Column("name", Key(255), nullable=False),
            sa.Column("value", LongText(), nullable=False),
            sa.PrimaryKeyConstraint("name", name="pk_jianyi_meta"),
            comment="A few named values kept beside the suggestions (a simulation's identity...).",
            **_MYSQL,
        )
    if _SEQ_HELPER in tables:
        op.drop_table(_SEQ_HELPER)


def _fill_suggestions() -> None:
    bind = op.get_bind()
    units = sa.table(_U, sa.column("unit", Key()), sa.column("relation", Key(16)), sa.column("suggestion_id", Key()),
                     sa.column("due_at", UtcDateTime()), sa.column("received_at", UtcDateTime()),
                     sa.column("registration_number", Key(128)))
    bind.execute(units.delete())  # an interrupted attempt may have written some
    update = (
        sa.update(_rows)
        .where(_rows.c.id == sa.bindparam("w_id"))
        .values({name: sa.bindparam(f"n_{name}") for name in (
            "proposer_account", "received_by", "due_provisional", "reported_upward", "forwarded_to_city", "units",
            "data")})
    )
    columns = [_rows.c.id, _rows.c.data, _rows.c.lead_unit, _rows.c.recommending_unit, _rows.c.due_at,
               _rows.c.received_at, _rows.c.registration_number]
    for page in _pages(columns):
        changes, links = [], []
        for sid, text, lead, recommending, due_at, received_at, registration in page:
            document = _document(sid, text)
            moved = {name: document.pop(name) for name in ("received_by", "due_provisional") if name in document}
            proposer = document.get("proposer")
            co = [u for u in document.get("co_units") or [] if isinstance(u, str)]
            changes.append({
                "w_id": sid,
                "n_proposer_account": proposer.get("account") if isinstance(proposer, dict) else None,
                "n_received_by": moved.get("received_by"),
                "n_due_provisional": bool(moved.get("due_provisional", False)),
                "n_reported_upward": bool(document.get("upward_reports")),
                "n_forwarded_to_city": document.get("forwarded_to_city_at") is not None,
                "n_units": _compact([lead, recommending, co]),
                "n_data": _compact(document) if moved else text,
            })
            links += [{"unit": unit, "relation": relation, "suggestion_id": sid, "due_at": due_at,
                       "received_at": received_at, "registration_number": registration}
                      for relation, unit in _links(lead, recommending, co)]
        bind.execute(update, changes)
        if links:
            bind.execute(units.insert(), links)


def _fill_events() -> None:
    """Number the existing events 1..n by (at, suggestion_id, version), set-based, and start the counter at n."""
    bind = op.get_bind()
    helper = op.create_table(
        _SEQ_HELPER,
        sa.Column("suggestion_id", Key(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("suggestion_id", "version", name="pk_jianyi_event_seq_0004"),
        **_MYSQL,
    )
    assert helper is not None
    events = sa.table(_E, sa.column("suggestion_id", Key()), sa.column("version", sa.Integer()),
                      sa.column("at", UtcDateTime()), sa.column("seq", sa.BigInteger()),
                      sa.column("notices", sa.Text()))
    numbered = sa.select(
        events.c.suggestion_id, events.c.version,
        sa.func.row_number().over(order_by=(events.c.at, events.c.suggestion_id, events.c.version)),
    )
    bind.execute(helper.insert().from_select(["suggestion_id", "version", "seq"], numbered))
    position = (
        sa.select(helper.c.seq)
        .where(helper.c.suggestion_id == events.c.suggestion_id, helper.c.version == events.c.version)
        .scalar_subquery()
    )
    bind.execute(events.update().values(seq=position, notices="[]"))
    op.drop_table(_SEQ_HELPER)
    counters = sa.table("jianyi_counters", sa.column("name", Key()), sa.column("value", sa.BigInteger()))
    last = bind.execute(sa.select(sa.func.coalesce(sa.func.max(events.c.seq), 0))).scalar_one()
    bind.execute(counters.delete())
    bind.execute(counters.insert().values(name="event_seq", value=int(last)))


def _fill_idempotency() -> None:
    """The scope of each key: the actor of the event it produced (``role:id@unit``); no fingerprint."""
    bind = op.get_bind()
    keys = sa.table(_I, sa.column("suggestion_id", Key()), sa.column("version", sa.Integer()),
                    sa.column("scope", Key(255)), sa.column("fingerprint", sa.String(64)))
    events = sa.table(_E, sa.column("suggestion_id", Key()), sa.column("version", sa.Integer()),
                      sa.column("actor_id", sa.String()), sa.column("actor_role", sa.String()),
                      sa.column("actor_unit", sa.String()))
    unit = events.c.actor_unit
    actor_key = events.c.actor_role + ":" + events.c.actor_id + sa.case(
        (sa.or_(unit.is_(None), unit == ""), ""), else_="@" + unit)
    scope = (
        sa.select(actor_key)
        .where(events.c.suggestion_id == keys.c.suggestion_id, events.c.version == keys.c.version)
        .scalar_subquery()
    )
    bind.execute(keys.update().values(scope=sa.func.coalesce(scope, ""), fingerprint=""))


# --- downgrade ----------------------------------------------------------------------------------------------
def downgrade() -> None:
    _online()
    mysql = _is_mysql()
    bind = op.get_bind()
    keys = sa.table(_I, sa.column("key", sa.String()), sa.column("scope", sa.String()))
    shared = bind.execute(
        sa.select(keys.c.key).group_by(keys.c.key).having(sa.func.count() > 1).limit(1)).scalar_one_or_none()
    if shared is not None:
        raise StoreError(f"migration 0004 downgrade: idempotency key {shared!r} was used by several actors, "
                         "which revision 0003 cannot hold; delete the records you no longer need first")
    if mysql and _EVENTS_FK in _foreign_keys(_E):
        op.drop_constraint(_EVENTS_FK, _E, type_="foreignkey")
    op.drop_index("ix_jianyi_outbox_suggestion", table_name=_O)
    op.drop_index("uq_jianyi_events_seq", table_name=_E)
    for name, _ in _NEW_SUGGESTION_INDEXES:
        op.drop_index(name, table_name=_S)
    op.drop_table(_U)
    op.drop_table("jianyi_counters")
    op.drop_table("jianyi_meta")
    with op.batch_alter_table(_I) as batch:
        batch.drop_constraint("pk_jianyi_idempotency", type_="primary")
        batch.create_primary_key("pk_jianyi_idempotency", ["key"])
        batch.drop_column("scope")
        batch.drop_column("fingerprint")
    with op.batch_alter_table(_E) as batch:
        for name in ("seq", "notices", "workflow", "policy", "mac"):
            batch.drop_column(name)
    op.add_column(_S, sa.Column("units_key", LongText(), nullable=True))
    _change_key_types(upgrade=False)
    op.create_table(
        _U,
        sa.Column("suggestion_id", Code(64), nullable=False),
        sa.Column("unit", Code(64), nullable=False),
        sa.ForeignKeyConstraint(["suggestion_id"], ["jianyi_suggestions.id"], name=_UNITS_FK),
        sa.PrimaryKeyConstraint("suggestion_id", "unit", name="pk_jianyi_suggestion_units"),
        comment="Every unit (lead, co-handling, recommending) of every suggestion, for Query.unit.",
        **_MYSQL,
    )
    op.create_index("ix_jianyi_suggestion_units_unit", _U, ["unit", "suggestion_id"])
    units = sa.table(_U, sa.column("suggestion_id", Code()), sa.column("unit", Code()))
    update = sa.update(_rows).where(_rows.c.id == sa.bindparam("w_id")).values(
        units_key=sa.bindparam("n_units_key"), data=sa.bindparam("n_data"))
    columns = [_rows.c.id, _rows.c.data, _rows.c.lead_unit, _rows.c.recommending_unit, _rows.c.received_by,
               _rows.c.due_provisional]
    for page in _pages(columns):
        changes, links = [], []
        for sid, text, lead, recommending, received_by, provisional in page:
            document = _document(sid, text)
            if received_by is not None or provisional:  # back into the document, where 0004 found them
                document = {**document, "received_by": received_by, "due_provisional": bool(provisional)}
                text = _compact(document)
            co = [u for u in document.get("co_units") or [] if isinstance(u, str)]
            found = _any_units(lead, recommending, co)
            changes.append({"w_id": sid, "n_units_key": json.dumps(found, ensure_ascii=False), "n_data": text})
            links += [{"suggestion_id": sid, "unit": unit} for unit in found]
        bind.execute(update, changes)
        if links:
            bind.execute(units.insert(), links)
    with op.batch_alter_table(_S) as batch:
        batch.alter_column("units_key", existing_type=LongText(), nullable=False)
        for name in ("proposer_account", "received_by", "due_provisional", "reported_upward", "forwarded_to_city",
                     "units"):
            batch.drop_column(name)
    if mysql:
        op.create_foreign_key(_EVENTS_FK, _E, _S, ["suggestion_id"], ["id"])
    with op.batch_alter_table(_I) as batch:  # SQLite adds a foreign key by copying the table
        batch.create_foreign_key(_KEYS_FK, _S, ["suggestion_id"], ["id"])
