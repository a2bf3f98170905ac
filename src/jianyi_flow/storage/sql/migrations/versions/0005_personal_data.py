"""Add ``jianyi_personal_data``: proposers' personal data, apart from the hashed history.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07

From this revision on, a suggestion's receive event holds a keyed digest of the proposer's
name, phone, address and account, and the data itself goes to this table (one row per
suggestion; a tombstone without data once erased), so it can be erased without breaking
the history (see docs/security.md, "Personal data").

The upgrade only creates the table: suggestions received before it keep their data inside
their receive events until ``jianyi-flow vault-personal-data URL`` (or
``Flow.vault_personal_data``) moves it, one recorded ``vault_personal_data`` event per
suggestion.  Downgrade drops the table, and with it the only copy of the personal data of
the suggestions received since: it refuses while the table has rows.

The table definition is spelled out here rather than imported, so later changes to the
models cannot change what this revision does.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from jianyi_flow.errors import StoreError
from jianyi_flow.storage.sql.types import Key, LongText, UtcDateTime

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLE = "jianyi_personal_data"


def upgrade() -> None:
    op.create_table(
        _TABLE,
        sa.Column("suggestion_id", Key(), nullable=False),
        sa.Column("name", LongText(), nullable=True),
        sa.Column("phone", LongText(), nullable=True),
        sa.Column("address", LongText(), nullable=True),
        sa.Column("account", LongText(), nullable=True),
        sa.Column("salt", sa.String(64), nullable=True),
        sa.Column("erased_at", UtcDateTime(), nullable=True),
        sa.Column("erased_version", sa.Integer, nullable=True),
        sa.PrimaryKeyConstraint("suggestion_id", name=f"pk_{_TABLE}"),
        comment="Proposers' personal data, kept out of the hashed history; erased rows keep a tombstone.",
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )


def downgrade() -> None:
    count = op.get_bind().execute(sa.text(f"SELECT COUNT(*) FROM {_TABLE}")).scalar_one()
    if count:
        raise StoreError(f"{_TABLE} holds {count} records, the only copy of that personal data: "
                         "refusing to drop it (export or erase it first)")
    op.drop_table(_TABLE)
