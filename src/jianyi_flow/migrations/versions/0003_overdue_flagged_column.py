"""Move ``overdue_flagged_at`` out of the ``data`` document into a column of its own.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26

``Flow.tick`` runs every day and asks for the open rows past due.  Most of them it has
already flagged overdue on an earlier day (one ``flag_overdue`` event per due time), and
it read each of them back only to find that out in Python.  With the flag time in a
column, the query says ``overdue_flagged_at IS NULL OR due_at IS NULL OR
overdue_flagged_at <> due_at`` (``Query.overdue_unflagged``) and the database skips them
while it walks the due index.  Measured: see docs/storage.md.

Upgrade adds the column, then pages through the table by id (1,000 rows at a time, so a
large table is never held in memory at once): each row's ``data`` document loses the key,
and its value (ISO text in UTC, or null) goes to the column.  Downgrade puts the value back
into the document, as the last key (the store before this revision reads a document in any
key order), and drops the column.  The table definitions are spelled out here rather than
imported, so later changes to the models cannot change what this revision does.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from jianyi_flow.sql.types import Code, UtcDateTime

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLE = "jianyi_suggestions"
_FIELD = "overdue_flagged_at"
_PAGE = 1000

_rows = sa.table(
    _TABLE,
    sa.column("id", Code()),
    sa.column("data", sa.Text()),
    sa.column(_FIELD, UtcDateTime()),
)


def _dumps(document: Any) -> str:
    """The text the store writes (``jianyi_flow.sql.types.dumps``, spelled out)."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _pages(columns: Sequence[Any]) -> Any:
    """Every row's ``columns``, a page at a time, by id (keyset paging: no row is read twice)."""
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


def upgrade() -> None:
    op.add_column(_TABLE, sa.Column(_FIELD, UtcDateTime(), nullable=True))
    bind = op.get_bind()
    update = (
        sa.update(_rows)
        .where(_rows.c.id == sa.bindparam("w_id"))
        .values({_FIELD: sa.bindparam("w_flagged"), "data": sa.bindparam("w_data")})
    )
    for page in _pages([_rows.c.id, _rows.c.data]):
        changes = []
        for sid, text in page:
            document = json.loads(text)
            if not isinstance(document, dict) or _FIELD not in document:
                continue
            value = document.pop(_FIELD)
            flagged = None if value is None else dt.datetime.fromisoformat(value)
            changes.append({"w_id": sid, "w_flagged": flagged, "w_data": _dumps(document)})
        if changes:
            bind.execute(update, changes)


def downgrade() -> None:
    bind = op.get_bind()
    update = sa.update(_rows).where(_rows.c.id == sa.bindparam("w_id")).values(data=sa.bindparam("w_data"))
    for page in _pages([_rows.c.id, _rows.c.data, _rows.c[_FIELD]]):
        changes = []
        for sid, text, flagged in page:
            document = json.loads(text)
            if not isinstance(document, dict):
                continue
            document[_FIELD] = None if flagged is None else flagged.astimezone(dt.UTC).isoformat()
            changes.append({"w_id": sid, "w_data": _dumps(document)})
        if changes:
            bind.execute(update, changes)
    op.drop_column(_TABLE, _FIELD)
