"""poll schedule: what pollers ask partners' APIs about, when, with which validators and cursor

Revision ID: 0012
Revises: 0008
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Time = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "poll_schedule",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("poller", sa.String(length=100), nullable=False),
        sa.Column("partner", sa.String(length=100), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("order_id", sa.String(length=36), nullable=True),
        sa.Column("next_at", Time, nullable=False),
        sa.Column("claim", sa.String(length=36), nullable=True),
        sa.Column("claimed_until", Time, nullable=True),
        sa.Column("etag", sa.String(length=500), nullable=True),
        sa.Column("last_modified", sa.String(length=100), nullable=True),
        sa.Column("seen", sa.Text(), nullable=True),
        sa.Column("last_event_at", Time, nullable=True),
        sa.Column("failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("done_at", Time, nullable=True),
        sa.Column("created_at", Time, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_poll_schedule")),
    )
    op.create_index("ux_poll_schedule_key", "poll_schedule", ["poller", "partner", "key"], unique=True)
    op.create_index("ix_poll_schedule_due", "poll_schedule", ["poller", "partner", "done_at", "next_at"])


def downgrade() -> None:
    op.drop_index("ix_poll_schedule_due", table_name="poll_schedule")
    op.drop_index("ux_poll_schedule_key", table_name="poll_schedule")
    op.drop_table("poll_schedule")
