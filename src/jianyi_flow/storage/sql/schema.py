"""The tables, as SQLAlchemy Core objects on one :data:`metadata`.

``jianyi_suggestions`` holds the current row of each suggestion.  Every field a query
filters or sorts on has its own column; the other fields (bodies, proposer, reply...)
are one JSON document in ``data``, encoded with the model's own ``encode_value`` so a
field added to :class:`~jianyi_flow.domain.model.Suggestion` later needs no migration.

Units: :class:`~jianyi_flow.storage.base.Query` ``unit`` matches the lead, a co-handling or the
recommending unit.  Co-handling units are a list, which no index over one column can
search, so ``jianyi_suggestion_units`` lists every unit of every suggestion (one row per
pair) and a unit filter is one index lookup on ``(unit, suggestion_id)``.  The store only
rewrites those rows when the units actually change (``units_key``, the units as JSON,
tells it: see :mod:`jianyi_flow.storage.sql.store`), so ordinary commands pay nothing for them.

Indexes follow the queries :class:`~jianyi_flow.Flow` runs, and are chosen so that the
planner picks the right one *without statistics* (nobody runs ``ANALYZE`` on a SQLite
file, and a PostgreSQL table is not analysed until autovacuum gets to it):

* ``ix_jianyi_suggestions_due (due_at, id)`` — the overdue / due-soon scans,
  ``WHERE state IN (...) AND due_at < :now ORDER BY due_at, id LIMIT n``, read the index
  in order and stop after ``n`` rows.  ``due_at`` leads (not ``state``) because an
  ``IN`` over nine open states on a ``(state, due_at)`` index needs a sort, and closed
  suggestions have no ``due_at`` so the index holds only open ones anyway.
* ``overdue_flagged_at`` is a column (migration 0003), not in ``data``, so that the daily
  ``Flow.tick`` asks only for rows it has not yet flagged for their current due time
  (``Query.overdue_unflagged``: ``overdue_flagged_at IS NULL OR due_at IS NULL OR
  overdue_flagged_at <> due_at``), a filter on the rows the due index finds, not a new index.
* ``area``, ``topic`` — each ``(column, due_at, id)``: an equality filter on its own
  (prefix), and the same filter on the supervision scan still read in due order.  A plain
  ``(area)`` index looks more selective than a range to a planner without statistics, and
  it would pick it and sort every row of the area.
* No index on ``campaign`` or ``lead_unit`` (migration 0002 dropped them): every command
  that moves a deadline rewrites the entry of each index holding ``due_at``, no query
  filters on the lead unit, and the campaign filter of tick / overdue / due soon walks
  the due index just as well in a database of one running campaign (the row is read
  anyway, for its state).  An index on ``campaign`` alone would be worse than none: the
  planner would prefer it to the due range, then sort.
* No index leads with ``state``, for the same reason: ``state IN (...)`` looks like a few
  equality lookups and wins over the due-time range, then sorts.  Listing by state alone
  (no due bound, no other filter) reads the table.
* outbox ``(sent_at, id)`` — claiming scans unsent messages oldest first without
  walking the sent ones, which are kept as a delivery log.

MariaDB tables are InnoDB with ``utf8mb4`` (Chinese and emoji) and the binary collation
``utf8mb4_bin``: ids must be case-sensitive (``"A1"`` and ``"a1"`` are two suggestions)
and ordered by code point like Python strings.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from .types import KEY_LENGTH, Code, JsonText, LongText, UtcDateTime

__all__ = [
    "TABLES",
    "events",
    "idempotency",
    "metadata",
    "outbox",
    "suggestion_units",
    "suggestions",
]

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)
"""Every jianyi_flow table.  A host application's Alembic can include it (see docs/storage.md)."""

MYSQL_OPTIONS: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}
"""Table options for MariaDB/MySQL (ignored by other databases)."""

# The outbox id grows for as long as the campaign runs: BIGINT, except on SQLite where only
# INTEGER PRIMARY KEY is the auto-incrementing rowid.
_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

suggestions = sa.Table(
    "jianyi_suggestions",
    metadata,
    sa.Column("id", Code(), primary_key=True),
    sa.Column("campaign", Code(), nullable=True),
    sa.Column("state", Code(32), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("area", Code(), nullable=False),
    sa.Column("topic", Code(), nullable=True),
    sa.Column("lead_unit", Code(), nullable=True),
    sa.Column("recommending_unit", Code(), nullable=True),
    sa.Column("registration_number", sa.String(128), nullable=True),
    sa.Column("due_at", UtcDateTime(), nullable=True),
    sa.Column("received_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("overdue_flagged_at", UtcDateTime(), nullable=True),
    sa.Column("units_key", LongText(), nullable=False),
    sa.Column("data", JsonText(), nullable=False),
    sa.Index("ix_jianyi_suggestions_due", "due_at", "id"),
    sa.Index("ix_jianyi_suggestions_area", "area", "due_at", "id"),
    sa.Index("ix_jianyi_suggestions_topic", "topic", "due_at", "id"),
    comment="Current row of each suggestion; queried fields are columns, the rest is JSON in data.",
    **MYSQL_OPTIONS,
)

suggestion_units = sa.Table(
    "jianyi_suggestion_units",
    metadata,
    sa.Column("suggestion_id", Code(), sa.ForeignKey("jianyi_suggestions.id"), primary_key=True),
    sa.Column("unit", Code(), primary_key=True),
    sa.Index("ix_jianyi_suggestion_units_unit", "unit", "suggestion_id"),
    comment="Every unit (lead, co-handling, recommending) of every suggestion, for Query.unit.",
    **MYSQL_OPTIONS,
)

events = sa.Table(
    "jianyi_events",
    metadata,
    sa.Column("suggestion_id", Code(), sa.ForeignKey("jianyi_suggestions.id"), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("kind", Code(), nullable=False),
    sa.Column("from_state", Code(32), nullable=True),
    sa.Column("to_state", Code(32), nullable=False),
    sa.Column("actor_id", sa.String(128), nullable=False),
    sa.Column("actor_role", Code(32), nullable=False),
    sa.Column("actor_unit", Code(), nullable=True),
    sa.Column("actor_name", LongText(), nullable=True),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("reason", LongText(), nullable=True),
    sa.Column("changes", JsonText(), nullable=False),
    sa.Column("payload", JsonText(), nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    comment="Append-only history; (suggestion_id, version) is the key, hashes chain each suggestion's events.",
    **MYSQL_OPTIONS,
)

# No foreign key on suggestion_id: like MemoryStore, the store delivers whatever messages a
# Change carries, and the relay must not depend on the suggestion tables.
outbox = sa.Table(
    "jianyi_outbox",
    metadata,
    sa.Column("id", _BIG_ID, primary_key=True, autoincrement=True),
    sa.Column("topic", Code(), nullable=False),
    sa.Column("suggestion_id", Code(), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("recipient", sa.String(128), nullable=False),
    sa.Column("payload", JsonText(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("leased_until", UtcDateTime(), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("sent_at", UtcDateTime(), nullable=True),
    sa.Index("ix_jianyi_outbox_unsent", "sent_at", "id"),
    comment="Messages to deliver at least once; rows stay after sending as a delivery log.",
    **MYSQL_OPTIONS,
)

idempotency = sa.Table(
    "jianyi_idempotency",
    metadata,
    sa.Column("key", sa.String(KEY_LENGTH), primary_key=True),
    sa.Column("suggestion_id", Code(), sa.ForeignKey("jianyi_suggestions.id"), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("command", Code(), nullable=False),
    comment="Idempotency keys of commands already done, and what each produced.",
    **MYSQL_OPTIONS,
)

TABLES: tuple[sa.Table, ...] = (suggestions, suggestion_units, events, outbox, idempotency)
"""All tables, parents first (create in this order, delete in reverse)."""
