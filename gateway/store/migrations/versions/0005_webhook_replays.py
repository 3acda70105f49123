"""webhook replay memory: each signed webhook attempt taken once, shared by replicas

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "webhook_receipts",
        sa.Column("scope", sa.String(length=200), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("scope", "key", name=op.f("pk_webhook_receipts")),
    )
    op.create_index("ix_webhook_receipts_expires", "webhook_receipts", ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_webhook_receipts_expires", table_name="webhook_receipts")
    op.drop_table("webhook_receipts")
