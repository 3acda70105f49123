"""SMART assertion replay memory and the gateway's own generated secrets, shared by replicas

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "smart_assertions",
        sa.Column("client_id", sa.String(length=200), nullable=False),
        sa.Column("jti", sa.String(length=200), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("client_id", "jti", name=op.f("pk_smart_assertions")),
    )
    with op.batch_alter_table("smart_assertions", schema=None) as batch_op:
        batch_op.create_index("ix_smart_assertions_expires", ["expires_at"], unique=False)
    op.create_table(
        "gateway_secrets",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("secret", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_gateway_secrets")),
    )


def downgrade() -> None:
    op.drop_table("gateway_secrets")
    with op.batch_alter_table("smart_assertions", schema=None) as batch_op:
        batch_op.drop_index("ix_smart_assertions_expires")
    op.drop_table("smart_assertions")
