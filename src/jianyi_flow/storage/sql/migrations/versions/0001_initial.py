"""The initial schema: suggestions, their units, events, outbox, idempotency keys.

Revision ID: 0001
Revises:
Create Date: 2024-08-21

Written by hand and checked by tests/test_migrations.py, which runs it on an empty
SQLite, PostgreSQL and MariaDB database and asks Alembic's autogenerate to compare the
result with :data:`jianyi_flow.storage.sql.schema.metadata` (no difference allowed).  The table
definitions are spelled out here rather than imported, so later changes to the models
cannot change what this revision created.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from jianyi_flow.storage.sql.types import Code, JsonText, LongText, UtcDateTime

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MYSQL: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}


def upgrade() -> None:
    op.create_table(
        "jianyi_suggestions",
        sa.Column("id", Code(64), nullable=False),
        sa.Column("campaign", Code(64), nullable=True),
        sa.Column("state", Code(32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("area", Code(64), nullable=False),
        sa.Column("topic", Code(64), nullable=True),
        sa.Column("lead_unit", Code(64), nullable=True),
        sa.Column("recommending_unit", Code(64), nullable=True),
        sa.Column("registration_number", sa.String(128), nullable=True),
        sa.Column("due_at", UtcDateTime(), nullable=True),
        sa.Column("received_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("units_key", LongText(), nullable=False),
        sa.Column("data", JsonText(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_jianyi_suggestions"),
        comment="Current row of each suggestion; queried fields are columns, the rest is JSON in data.",
        **_MYSQL,
    )
    op.create_index("ix_jianyi_suggestions_due", "jianyi_suggestions", ["due_at", "id"])
    for column in ("campaign", "area", "lead_unit", "topic"):
        op.create_index(f"ix_jianyi_suggestions_{column}", "jianyi_suggestions", [column, "due_at", "id"])

    op.create_table(
        "jianyi_suggestion_units",
        sa.Column("suggestion_id", Code(64), nullable=False),
        sa.Column("unit", Code(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["suggestion_id"],
            ["jianyi_suggestions.id"],
            name="fk_jianyi_suggestion_units_suggestion_id_jianyi_suggestions",
        ),
        sa.PrimaryKeyConstraint("suggestion_id", "unit", name="pk_jianyi_suggestion_units"),
        comment="Every unit (lead, co-handling, recommending) of every suggestion, for Query.unit.",
        **_MYSQL,
    )
    op.create_index("ix_jianyi_suggestion_units_unit", "jianyi_suggestion_units", ["unit", "suggestion_id"])

    op.create_table(
        "jianyi_events",
        sa.Column("suggestion_id", Code(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("kind", Code(64), nullable=False),
        sa.Column("from_state", Code(32), nullable=True),
        sa.Column("to_state", Code(32), nullable=False),
        sa.Column("actor_id", sa.String(128), nullable=False),
        sa.Column("actor_role", Code(32), nullable=False),
        sa.Column("actor_unit", Code(64), nullable=True),
        sa.Column("actor_name", LongText(), nullable=True),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("reason", LongText(), nullable=True),
        sa.Column("changes", JsonText(), nullable=False),
        sa.Column("payload", JsonText(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["suggestion_id"], ["jianyi_suggestions.id"], name="fk_jianyi_events_suggestion_id_jianyi_suggestions"
        ),
        sa.PrimaryKeyConstraint("suggestion_id", "version", name="pk_jianyi_events"),
        comment="Append-only history; (suggestion_id, version) is the key, hashes chain each suggestion's events.",
        **_MYSQL,
    )

    op.create_table(
        "jianyi_outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("topic", Code(64), nullable=False),
        sa.Column("suggestion_id", Code(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("recipient", sa.String(128), nullable=False),
        sa.Column("payload", JsonText(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("leased_until", UtcDateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("sent_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_jianyi_outbox"),
        comment="Messages to deliver at least once; rows stay after sending as a delivery log.",
        **_MYSQL,
    )
    op.create_index("ix_jianyi_outbox_unsent", "jianyi_outbox", ["sent_at", "id"])

    op.create_table(
        "jianyi_idempotency",
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("suggestion_id", Code(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("command", Code(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["suggestion_id"], ["jianyi_suggestions.id"], name="fk_jianyi_idempotency_suggestion_id_jianyi_suggestions"
        ),
        sa.PrimaryKeyConstraint("key", name="pk_jianyi_idempotency"),
        comment="Idempotency keys of commands already done, and what each produced.",
        **_MYSQL,
    )


def downgrade() -> None:
    op.drop_table("jianyi_idempotency")
    op.drop_index("ix_jianyi_outbox_unsent", table_name="jianyi_outbox")
    op.drop_table("jianyi_outbox")
    op.drop_table("jianyi_events")
    op.drop_index("ix_jianyi_suggestion_units_unit", table_name="jianyi_suggestion_units")
    op.drop_table("jianyi_suggestion_units")
    for name in ("topic", "lead_unit", "area", "campaign", "due"):
        op.drop_index(f"ix_jianyi_suggestions_{name}", table_name="jianyi_suggestions")
    op.drop_table("jianyi_suggestions")
