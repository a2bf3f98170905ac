"""Move ``overdue_flagged_at`` out of the ``data`` document into a column of its own.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26

``Flow.tick`` runs every day and asks for the open rows past due.  Most of them it has
already flagged overdue on an earlier day (one ``flag_overdue`` event per due time), and
it read each of them back only to find that out in Python.  With the flag time in a
column, the query says ``overdue_flagged_at IS NULL OR due_at IS NULL OR
overdue_flagged_at <> due_at`` (``Query.overdue_unflagged``) and the database skips them
while it walks the due index.

Upgrade adds the column (unless an earlier attempt did: SQLite and MariaDB commit an
``ALTER TABLE`` at once, so a backfill that failed half-way resumes), then pages through
the table by id (1,000 rows at a time, so a large table is never held in memory at once):
each row's ``data`` document loses the key, and its value goes to the column, read as the
store before this revision read it (ISO text; a naive text taken as the machine's local
time).  A value that is not such text stops the upgrade with the row's id; fix the row and
run it again.  Downgrade puts each value back into its document at the place the store
before this revision wrote it (after ``extended``), so that store reads the documents on
its fast path, and drops the column.

On PostgreSQL the whole upgrade is one transaction, and ``ADD COLUMN`` holds an exclusive
lock on ``jianyi_suggestions`` until it ends: plan a short maintenance window for a large
table.  Every process that writes suggestions must run the same version of the package:
an older one would write the flag into ``data``, where this one no longer looks (tick
would flag those rows again).  It moves values between rows, so it cannot be printed as
SQL (``--sql``): run it against the database (``jianyi-flow db upgrade URL``).

The table definitions are spelled out here rather than imported, so later changes to the
models cannot change what this revision does.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import context, op

from jianyi_flow.errors import StoreError
from jianyi_flow.storage.sql.types import Code, UtcDateTime

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLE = "jianyi_suggestions"
_FIELD = "overdue_flagged_at"
_PAGE = 1000
_BEFORE = "extended"
"""The data field the store before 0003 wrote just before ``overdue_flagged_at``."""

_rows = sa.table(
    _TABLE,
    sa.column("id", Code()),
    sa.column("data", sa.Text()),
    sa.column(_FIELD, UtcDateTime()),
)


def _dumps(document: Any) -> str:
    """The text the store writes (``jianyi_flow.storage.sql.types.dumps``, spelled out)."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _with_after(document: dict[str, Any], before: str, value: Any) -> Any:
    """The document's items with ``overdue_flagged_at`` inserted right after ``before``."""
    for key, item in document.items():
        yield key, item
        if key == before:
            yield _FIELD, value


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


def _online() -> None:
    if context.is_offline_mode():
        raise StoreError("migration 0003 moves values between rows: run it against the database "
                         "(jianyi-flow db upgrade URL), it cannot be printed as SQL")


def upgrade() -> None:
    _online()
    bind = op.get_bind()
    if _FIELD not in {c["name"] for c in sa.inspect(bind).get_columns(_TABLE)}:
        op.add_column(_TABLE, sa.Column(_FIELD, UtcDateTime(), nullable=True))
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
            try:  # as the store before 0003 read it (``model.decode_datetime``)
                flagged = None if value is None else dt.datetime.fromisoformat(value).astimezone(dt.UTC)
            except (TypeError, ValueError):
                raise StoreError(f"migration 0003: suggestion {sid!r} has overdue_flagged_at {value!r} in its data, "
                                 "not an ISO date-time; correct it and run the upgrade again") from None
            changes.append({"w_id": sid, "w_flagged": flagged, "w_data": _dumps(document)})
        if changes:
            bind.execute(update, changes)


def downgrade() -> None:
    _online()
    bind = op.get_bind()
    update = sa.update(_rows).where(_rows.c.id == sa.bindparam("w_id")).values(data=sa.bindparam("w_data"))
    for page in _pages([_rows.c.id, _rows.c.data, _rows.c[_FIELD]]):
        changes = []
        for sid, text, flagged in page:
            document = json.loads(text)
            if not isinstance(document, dict):
                continue
            value = None if flagged is None else flagged.astimezone(dt.UTC).isoformat()
            if _BEFORE in document:  # where the older store wrote it
                document = dict(_with_after(document, _BEFORE, value))
            else:
                document[_FIELD] = value
            changes.append({"w_id": sid, "w_data": _dumps(document)})
        if changes:
            bind.execute(update, changes)
    op.drop_column(_TABLE, _FIELD)
