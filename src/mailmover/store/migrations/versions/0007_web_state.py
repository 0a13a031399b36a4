"""What the web app keeps between requests, in the database, shared by every web process:
drafts of the wizard and of batch uploads, OAuth2 sign-ins on their way.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the types in mailmover.store.schema.
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "web_draft",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("owner_id", ROW_ID, nullable=False),
        sa.Column("touched_at", TIMESTAMP, nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("job", sa.Text(), nullable=True),
        sa.Column("making_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_web_draft"),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["account.id"], name="fk_web_draft_owner_id_account", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_web_draft_touched_at", "web_draft", ["touched_at"], unique=False)
    op.create_table(
        "web_pending",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("touched_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_web_pending"),
    )
    op.create_index("ix_web_pending_touched_at", "web_pending", ["touched_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_web_pending_touched_at", table_name="web_pending")
    op.drop_table("web_pending")
    op.drop_index("ix_web_draft_touched_at", table_name="web_draft")
    op.drop_table("web_draft")
