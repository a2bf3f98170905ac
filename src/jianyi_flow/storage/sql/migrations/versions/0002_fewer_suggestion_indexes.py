"""Drop the two suggestion indexes no query needs: ``(campaign, due_at, id)`` and ``(lead_unit, due_at, id)``.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

Every command that moves a deadline rewrites the entries of every index holding
``due_at``.  ``ix_jianyi_suggestions_lead_unit`` served no query at all
(:class:`~jianyi_flow.storage.base.Query` filters on a unit through ``jianyi_suggestion_units``).
``ix_jianyi_suggestions_campaign`` served the campaign filter that ``Flow.tick``,
``overdue`` and ``due_soon`` add, but those queries must read each row anyway to test its
state, and in a database that holds one running campaign (or old campaigns whose
suggestions are closed and so have no due time) the due index ``(due_at, id)`` walks the
same rows in the same order.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DROPPED = ("campaign", "lead_unit")


def upgrade() -> None:
    for name in _DROPPED:
        op.drop_index(f"ix_jianyi_suggestions_{name}", table_name="jianyi_suggestions")


def downgrade() -> None:
    for name in _DROPPED:
        op.create_index(f"ix_jianyi_suggestions_{name}", "jianyi_suggestions", [name, "due_at", "id"])
