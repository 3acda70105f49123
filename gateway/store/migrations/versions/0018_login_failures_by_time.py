"""failed logins indexed by time, so that housekeeping deletes the stale ones cheaply

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_login_failures_at", "login_failures", ["last_failed_at"])


def downgrade() -> None:
    op.drop_index("ix_login_failures_at", table_name="login_failures")
