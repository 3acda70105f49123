"""shipment readings (compact, de-duplicated by device and time) and persisted deadlines

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Time = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "shipment_readings",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("order_id", sa.String(length=36), nullable=False),
        sa.Column("shipment_id", sa.String(length=100), nullable=False),
        sa.Column("device_id", sa.String(length=100), nullable=False),
        sa.Column("probe", sa.String(length=50), server_default="", nullable=False),
        sa.Column("at", Time, nullable=False),
        sa.Column("until", Time, nullable=True),
        sa.Column("temperature_c", sa.Float(), nullable=True),
        sa.Column("min_c", sa.Float(), nullable=True),
        sa.Column("max_c", sa.Float(), nullable=True),
        sa.Column("mean_c", sa.Float(), nullable=True),
        sa.Column("extra", sa.JSON(), nullable=True),
        sa.Column("inbound_id", sa.String(length=36), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shipment_readings")),
    )
    op.create_index("ux_readings_device_time", "shipment_readings", ["device_id", "at", "probe"], unique=True)
    op.create_index("ix_readings_shipment_time", "shipment_readings", ["order_id", "shipment_id", "at"])
    op.create_table(
        "deadlines",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("order_id", sa.String(length=36), nullable=False),
        sa.Column("shipment_id", sa.String(length=100), nullable=True),
        sa.Column("clock", sa.String(length=50), nullable=False),
        sa.Column("starts_at", Time, nullable=False),
        sa.Column("due_at", Time, nullable=False),
        sa.Column("warned_pct", sa.Integer(), server_default="0", nullable=False),
        sa.Column("stopped_at", Time, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deadlines")),
    )
    op.create_index("ux_deadlines_clock", "deadlines", ["order_id", "shipment_id", "clock"], unique=True)
    op.create_index("ix_deadlines_due", "deadlines", ["stopped_at", "due_at"])


def downgrade() -> None:
    op.drop_index("ix_deadlines_due", table_name="deadlines")
    op.drop_index("ux_deadlines_clock", table_name="deadlines")
    op.drop_table("deadlines")
    op.drop_index("ix_readings_shipment_time", table_name="shipment_readings")
    op.drop_index("ux_readings_device_time", table_name="shipment_readings")
    op.drop_table("shipment_readings")
