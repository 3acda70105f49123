"""idempotency keys remember what their message said

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29

A message id is now answered from the first answer only when the message says the same thing
again: each key keeps the SHA-256 of its message's fingerprint (what the message says, as its
adapter reads it, without what does not change its meaning). Keys written before this revision
have none, and any message under them is still taken for a repeat. Rejected messages no longer keep their id (a
corrected resend under the same id is processed anew), so their keys are dropped here.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("content_hash", sa.String(length=64), nullable=True))
    op.execute("DELETE FROM idempotency_keys WHERE outcome = 'rejected'")


def downgrade() -> None:
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_column("content_hash")
