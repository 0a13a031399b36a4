"""The fleet: connections held by each running mailbox, servers on hold after throttling.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column(
        "mailbox", sa.Column("connections", sa.Integer(), nullable=False, server_default="0")
    )
    op.create_table(
        "server_hold",
        sa.Column("server", sa.Text(), nullable=False),
        sa.Column("until", TIMESTAMP, nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("server", name="pk_server_hold"),
    )


def downgrade() -> None:
    op.drop_table("server_hold")
    with op.batch_alter_table("mailbox") as batch:
        batch.drop_column("connections")
