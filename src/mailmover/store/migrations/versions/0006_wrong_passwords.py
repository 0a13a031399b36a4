"""Wrong passwords counted in the database, shared by every web and runner process; and
when a mailbox's logins were last seen to succeed.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the types in mailmover.store.schema.
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("mailbox", sa.Column("logins_checked_at", TIMESTAMP, nullable=True))
    op.create_table(
        "signin_failure",
        sa.Column("id", ROW_ID, nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_signin_failure"),
    )
    op.create_index(
        "ix_signin_failure_kind_key_at", "signin_failure", ["kind", "key", "at"], unique=False
    )
    op.create_index("ix_signin_failure_at", "signin_failure", ["at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_signin_failure_at", table_name="signin_failure")
    op.drop_index("ix_signin_failure_kind_key_at", table_name="signin_failure")
    op.drop_table("signin_failure")
    with op.batch_alter_table("mailbox") as batch:
        batch.drop_column("logins_checked_at")
