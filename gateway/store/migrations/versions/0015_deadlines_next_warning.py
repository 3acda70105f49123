"""each clock's next warning, indexed: the sweep reads the clocks that are due, not every one

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from gateway.coldchain.steps import next_warning

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Time = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("deadlines", sa.Column("next_at", Time, nullable=True))
    op.create_index("ix_deadlines_next", "deadlines", ["next_at"])
    d = sa.table(
        "deadlines",
        sa.column("id", sa.Integer),
        sa.column("clock", sa.String),
        sa.column("starts_at", Time),
        sa.column("due_at", Time),
        sa.column("warned_pct", sa.Integer),
        sa.column("stopped_at", Time),
        sa.column("next_at", Time),
    )
    conn = op.get_bind()
    running = conn.execute(
        sa.select(d.c.id, d.c.clock, d.c.starts_at, d.c.due_at, d.c.warned_pct).where(
            d.c.stopped_at.is_(None), d.c.warned_pct < 100
        )
    ).all()
    for row in running:
        due = next_warning(row.clock, row.starts_at, row.due_at, row.warned_pct)
        conn.execute(sa.update(d).where(d.c.id == row.id).values(next_at=due))


def downgrade() -> None:
    op.drop_index("ix_deadlines_next", table_name="deadlines")
    op.drop_column("deadlines", "next_at")
