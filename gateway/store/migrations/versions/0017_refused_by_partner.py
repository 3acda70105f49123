"""refused requests indexed by partner and time, so that the hourly cap on keeping them is counted
in the database, shared by every replica, without reading the partner's accepted traffic

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_inbound_refused",
        "inbound_messages",
        ["partner", "received_at"],
        sqlite_where=sa.text("outcome = 'refused'"),
        postgresql_where=sa.text("outcome = 'refused'"),
    )


def downgrade() -> None:
    op.drop_index("ix_inbound_refused", table_name="inbound_messages")
