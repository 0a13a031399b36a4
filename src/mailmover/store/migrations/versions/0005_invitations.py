"""Ask each user: one-time links where a mailbox's user gives their own password.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the types in mailmover.store.schema.
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "invitation",
        sa.Column("id", ROW_ID, nullable=False),
        sa.Column("mailbox_id", ROW_ID, nullable=False),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("sides", sa.Text(), nullable=False),
        sa.Column("token_hash", sa.Text(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.Column("sent_at", TIMESTAMP, nullable=True),
        sa.Column("sends", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("used_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_invitation"),
        sa.ForeignKeyConstraint(
            ["mailbox_id"],
            ["mailbox.id"],
            name="fk_invitation_mailbox_id_mailbox",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("mailbox_id", name="uq_invitation_mailbox_id"),
        sa.UniqueConstraint("token_hash", name="uq_invitation_token_hash"),
    )


def downgrade() -> None:
    op.drop_table("invitation")
