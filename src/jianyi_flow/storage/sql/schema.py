"""The tables, as SQLAlchemy Core objects on one :data:`metadata` (revision :data:`REVISION`).

``jianyi_suggestions`` holds the current row of each suggestion.  Every field a query
filters or sorts on has a column; the other fields (bodies, proposer, reply...) are one
JSON document in ``data``, encoded with the model's ``encode_value``, so a field added to
:class:`~jianyi_flow.domain.model.Suggestion` later needs no migration.  Four columns are
copies of values that live in ``data``, kept for filtering: ``proposer_account``
(``proposer.account``), ``reported_upward`` (``upward_reports`` is not empty),
``forwarded_to_city`` (``forwarded_to_city_at`` is set) and ``units`` (the unit links
below, as text, so a commit can tell whether they changed).

``jianyi_suggestion_units`` links units to suggestions: one row per ``(unit, relation,
suggestion)`` with relation ``lead``, ``co`` (co-handling), ``recommending`` or ``any``
(one row per unit the suggestion involves in any way, for ``Query.unit``).  Each row
carries copies of the suggestion's ``due_at``, ``received_at`` and
``registration_number``, so a unit's list in any order is one index range scan.

``jianyi_events`` is the append-only history (``seq`` is the event's place in the store's
log, gapless); ``jianyi_outbox`` the messages to deliver; ``jianyi_idempotency`` the
commands done under a key, keyed by ``(scope, key)``; ``jianyi_counters`` the last
``seq`` given; ``jianyi_meta`` a few named values; ``jianyi_personal_data`` the
proposers' personal data, apart from the hashed history (one row per suggestion, a
tombstone without data once erased: :mod:`jianyi_flow.domain.personal`).

Indexes, each for a query :class:`~jianyi_flow.Flow` runs (every one ends with the id, so
the order is total and a keyset cursor continues it):

* suggestions ``(due_at, id)`` — due order: the overdue and due-soon lists and
  ``Flow.tick`` (``state IN open AND due_at < now``, ``overdue_unflagged`` filtered on the
  rows the range finds).  Closed suggestions have no due time, so it holds open ones only.
* suggestions ``(received_at, id)`` — received order, the default of ``Flow.list_suggestions``.
* suggestions ``(registration_number, id)`` — registration order (registered rows only).
* suggestions ``(area, due_at, id)`` and ``(area, received_at, id)``, the same for
  ``topic`` — an area's or a topic's list in due order (supervision) and received order.
* suggestions ``(proposer_account, received_at, id)`` — a proposer's own suggestions;
  ``(received_by, received_at, id)`` — what an information officer submitted.
* units: primary key ``(unit, relation, suggestion_id)`` — a unit's list in id order;
  ``(unit, relation, due_at, suggestion_id)``, ``(unit, relation, received_at,
  suggestion_id)``, ``(unit, relation, registration_number, suggestion_id)`` — a unit's
  list in the other orders, for each relation; ``(suggestion_id)`` — a commit finds the
  suggestion's unit rows to update their copies.
* events: primary key ``(suggestion_id, version)`` — a history, and an audit's ordered
  pass; unique ``(seq)`` — a log position is used once.
* outbox ``(sent_at, id)`` — claiming reads unsent messages oldest first without walking
  the sent ones, which stay as a delivery log; ``(suggestion_id, id)`` — an audit reads
  the messages of a page of suggestions in order.

No index leads with ``state`` or ``campaign``: ``state IN (...)`` looks to a planner like a
few cheap equality lookups and would win over the ordered range, then sort; one running
campaign is most of the table.  Both are filters on the rows an ordered index finds.

MariaDB tables are InnoDB with ``utf8mb4``; id, key and code columns use a NO PAD binary
collation (see :mod:`.types`).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from .types import KEY_LENGTH, JsonText, Key, LongText, UtcDateTime

__all__ = [
    "EVENT_SEQ",
    "RELATIONS",
    "REVISION",
    "TABLES",
    "counters",
    "events",
    "idempotency",
    "meta",
    "metadata",
    "outbox",
    "personal_data",
    "suggestion_units",
    "suggestions",
]

REVISION = "0005"
"""The migration revision these tables are: a store opens only a database at this revision."""

EVENT_SEQ = "event_seq"
"""The ``jianyi_counters`` row holding the last ``seq`` given to an event."""

RELATIONS = ("lead", "co", "recommending", "any")
"""How a unit relates to a suggestion in ``jianyi_suggestion_units``."""

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
"""Table options for MariaDB/MySQL (ignored by other databases); key columns set their own collation."""

# Counters and outbox ids grow for as long as the campaign runs: BIGINT, except on SQLite
# where only INTEGER PRIMARY KEY is the auto-incrementing rowid.
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

NAME_LENGTH = 128
"""Actor ids, recipients, registration numbers, portal accounts, versions of definitions."""

suggestions = sa.Table(
    "jianyi_suggestions",
    metadata,
    sa.Column("id", Key(), primary_key=True),
    sa.Column("campaign", Key(), nullable=True),
    sa.Column("state", Key(32), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("area", Key(), nullable=False),
    sa.Column("topic", Key(), nullable=True),
    sa.Column("lead_unit", Key(), nullable=True),
    sa.Column("recommending_unit", Key(), nullable=True),
    sa.Column("proposer_account", Key(NAME_LENGTH), nullable=True),
    sa.Column("received_by", Key(NAME_LENGTH), nullable=True),
    sa.Column("registration_number", Key(NAME_LENGTH), nullable=True),
    sa.Column("received_at", UtcDateTime(), nullable=False),
    sa.Column("due_at", UtcDateTime(), nullable=True),
    sa.Column("due_provisional", sa.Boolean(), nullable=False),
    sa.Column("reported_upward", sa.Boolean(), nullable=False),
    sa.Column("forwarded_to_city", sa.Boolean(), nullable=False),
    sa.Column("overdue_flagged_at", UtcDateTime(), nullable=True),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("units", LongText(), nullable=False),
    sa.Column("data", JsonText(), nullable=False),
    sa.Index("ix_jianyi_suggestions_due", "due_at", "id"),
    sa.Index("ix_jianyi_suggestions_received", "received_at", "id"),
    sa.Index("ix_jianyi_suggestions_registration", "registration_number", "id"),
    sa.Index("ix_jianyi_suggestions_area", "area", "due_at", "id"),
    sa.Index("ix_jianyi_suggestions_area_received", "area", "received_at", "id"),
    sa.Index("ix_jianyi_suggestions_topic", "topic", "due_at", "id"),
    sa.Index("ix_jianyi_suggestions_topic_received", "topic", "received_at", "id"),
    sa.Index("ix_jianyi_suggestions_proposer", "proposer_account", "received_at", "id"),
    sa.Index("ix_jianyi_suggestions_received_by", "received_by", "received_at", "id"),
    comment="Current row of each suggestion; queried fields are columns, the rest is JSON in data.",
    **MYSQL_OPTIONS,
)

suggestion_units = sa.Table(
    "jianyi_suggestion_units",
    metadata,
    sa.Column("unit", Key(), primary_key=True),
    sa.Column("relation", Key(16), primary_key=True),
    sa.Column("suggestion_id", Key(), sa.ForeignKey("jianyi_suggestions.id"), primary_key=True),
    sa.Column("due_at", UtcDateTime(), nullable=True),
    sa.Column("received_at", UtcDateTime(), nullable=False),
    sa.Column("registration_number", Key(NAME_LENGTH), nullable=True),
    sa.Index("ix_jianyi_suggestion_units_due", "unit", "relation", "due_at", "suggestion_id"),
    sa.Index("ix_jianyi_suggestion_units_received", "unit", "relation", "received_at", "suggestion_id"),
    sa.Index("ix_jianyi_suggestion_units_registration", "unit", "relation", "registration_number", "suggestion_id"),
    sa.Index("ix_jianyi_suggestion_units_suggestion", "suggestion_id"),
    comment="Each unit's relation (lead, co, recommending, any) to each suggestion, with its sort keys.",
    **MYSQL_OPTIONS,
)

events = sa.Table(
    "jianyi_events",
    metadata,
    sa.Column("suggestion_id", Key(), sa.ForeignKey("jianyi_suggestions.id"), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("kind", Key(), nullable=False),
    sa.Column("from_state", Key(32), nullable=True),
    sa.Column("to_state", Key(32), nullable=False),
    sa.Column("actor_id", Key(NAME_LENGTH), nullable=False),
    sa.Column("actor_role", Key(32), nullable=False),
    sa.Column("actor_unit", Key(), nullable=True),
    sa.Column("actor_name", LongText(), nullable=True),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("reason", LongText(), nullable=True),
    sa.Column("changes", JsonText(), nullable=False),
    sa.Column("payload", JsonText(), nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("notices", JsonText(), nullable=False),
    sa.Column("workflow", Key(NAME_LENGTH), nullable=True),
    sa.Column("policy", Key(NAME_LENGTH), nullable=True),
    sa.Column("mac", sa.String(64), nullable=True),
    sa.Index("uq_jianyi_events_seq", "seq", unique=True),
    comment="Append-only history; (suggestion_id, version) is the key, hashes chain each suggestion's events.",
    **MYSQL_OPTIONS,
)

# No foreign key on suggestion_id: like MemoryStore, the store delivers whatever messages a
# Change carries, and the relay must not depend on the suggestion tables.
outbox = sa.Table(
    "jianyi_outbox",
    metadata,
    sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
    sa.Column("topic", Key(), nullable=False),
    sa.Column("suggestion_id", Key(), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("recipient", Key(NAME_LENGTH), nullable=False),
    sa.Column("payload", JsonText(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("leased_until", UtcDateTime(), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("sent_at", UtcDateTime(), nullable=True),
    sa.Index("ix_jianyi_outbox_unsent", "sent_at", "id"),
    sa.Index("ix_jianyi_outbox_suggestion", "suggestion_id", "id"),
    comment="Messages to deliver at least once; rows stay after sending as a delivery log.",
    **MYSQL_OPTIONS,
)

# No foreign key on suggestion_id: the record is written first in a commit (racing retries
# of one key wait for each other on it), before the row of a new suggestion exists.
idempotency = sa.Table(
    "jianyi_idempotency",
    metadata,
    sa.Column("scope", Key(KEY_LENGTH), primary_key=True),
    sa.Column("key", Key(KEY_LENGTH), primary_key=True),
    sa.Column("suggestion_id", Key(), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("command", Key(), nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    comment="Idempotency keys of commands already done, and what each produced.",
    **MYSQL_OPTIONS,
)

counters = sa.Table(
    "jianyi_counters",
    metadata,
    sa.Column("name", Key(), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
    comment="Counters kept in the commit's transaction: event_seq is the last seq given to an event.",
    **MYSQL_OPTIONS,
)

meta = sa.Table(
    "jianyi_meta",
    metadata,
    sa.Column("name", Key(KEY_LENGTH), primary_key=True),
    sa.Column("value", LongText(), nullable=False),
    comment="A few named values kept beside the suggestions (a simulation's identity...).",
    **MYSQL_OPTIONS,
)

# No foreign key: a tombstone outlives nothing, but an audit must see a record whose row is gone.
personal_data = sa.Table(
    "jianyi_personal_data",
    metadata,
    sa.Column("suggestion_id", Key(), primary_key=True),
    sa.Column("name", LongText(), nullable=True),
    sa.Column("phone", LongText(), nullable=True),
    sa.Column("address", LongText(), nullable=True),
    sa.Column("account", LongText(), nullable=True),
    sa.Column("salt", sa.String(64), nullable=True),
    sa.Column("erased_at", UtcDateTime(), nullable=True),
    sa.Column("erased_version", sa.Integer, nullable=True),
    comment="Proposers' personal data, kept out of the hashed history; erased rows keep a tombstone.",
    **MYSQL_OPTIONS,
)

TABLES: tuple[sa.Table, ...] = (suggestions, suggestion_units, events, outbox, idempotency, counters, meta,
                                personal_data)
"""All tables, parents first (create in this order, delete in reverse)."""
