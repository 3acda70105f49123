"""consumers' settled marks indexed by time, so that housekeeping deletes the old ones cheaply

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_consumed_events_at", "consumed_events", ["consumed_at"])


def downgrade() -> None:
    op.drop_index("ix_consumed_events_at", table_name="consumed_events")
