"""operators (local users with roles) and the signatures of quarantine reviews

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "operators",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("printed_name", sa.String(length=200), nullable=False),
        sa.Column("password_hash", sa.String(length=300), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_operators")),
    )
    op.create_table(
        "review_signatures",
        sa.Column("quarantine_id", sa.String(length=36), nullable=False),
        sa.Column("operator", sa.String(length=100), nullable=False),
        sa.Column("printed_name", sa.String(length=200), nullable=False),
        sa.Column("meaning", sa.Text(), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["quarantine_id"],
            ["quarantine.quarantine_id"],
            name=op.f("fk_review_signatures_quarantine_id_quarantine"),
        ),
        sa.PrimaryKeyConstraint("quarantine_id", "operator", name=op.f("pk_review_signatures")),
    )


def downgrade() -> None:
    op.drop_table("review_signatures")
    op.drop_table("operators")
