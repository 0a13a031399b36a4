"""The service: job owner, settings and schedule; mailbox states, counters and leases; passes.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the types in mailmover.store.schema.
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)

_JOB_COLUMNS: list[sa.Column[Any]] = [
    sa.Column("owner", sa.Text(), nullable=True),
    sa.Column("settings", sa.JSON(), nullable=True),
    sa.Column("delta_every_hours", sa.Float(), nullable=True),
    sa.Column("updated_at", TIMESTAMP, nullable=True),
]


def _mailbox_columns() -> list[sa.Column[Any]]:
    def counter(name: str, kind: sa.types.TypeEngine[int]) -> sa.Column[Any]:
        return sa.Column(name, kind, nullable=False, server_default="0")

    return [
        sa.Column("source_endpoint", sa.JSON(), nullable=True),
        sa.Column("dest_endpoint", sa.JSON(), nullable=True),
        sa.Column("settings", sa.JSON(), nullable=True),
        sa.Column("line", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("waiting_until", TIMESTAMP, nullable=True),
        sa.Column("next_pass", sa.Text(), nullable=True),
        sa.Column("next_pass_at", TIMESTAMP, nullable=True),
        sa.Column("requested", sa.Text(), nullable=True),
        counter("messages_total", sa.BigInteger()),
        counter("bytes_total", sa.BigInteger()),
        counter("messages_copied", sa.BigInteger()),
        counter("bytes_copied", sa.BigInteger()),
        counter("messages_failed", sa.BigInteger()),
        counter("messages_left", sa.BigInteger()),
        counter("bytes_left", sa.BigInteger()),
        counter("pass_bytes", sa.BigInteger()),
        sa.Column("pass_started_at", TIMESTAMP, nullable=True),
        sa.Column("progress_at", TIMESTAMP, nullable=True),
        sa.Column("lease_owner", sa.Text(), nullable=True),
        sa.Column("lease_expires", TIMESTAMP, nullable=True),
        sa.Column("heartbeat_at", TIMESTAMP, nullable=True),
        counter("attempts", sa.Integer()),
        counter("crashes", sa.Integer()),
        sa.Column("last_pass_at", TIMESTAMP, nullable=True),
        sa.Column("updated_at", TIMESTAMP, nullable=True),
    ]


def upgrade() -> None:
    for column in _JOB_COLUMNS:
        op.add_column("job", column)
    for column in _mailbox_columns():
        op.add_column("mailbox", column)
    op.create_index("ix_mailbox_state", "mailbox", ["state"])
    op.create_table(
        "pass",
        sa.Column("id", ROW_ID, nullable=False),
        sa.Column("mailbox_id", ROW_ID, nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("worker", sa.Text(), nullable=True),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("report", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_pass"),
        sa.ForeignKeyConstraint(
            ["mailbox_id"], ["mailbox.id"], name="fk_pass_mailbox_id_mailbox", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_pass_mailbox_id", "pass", ["mailbox_id"])


def downgrade() -> None:
    op.drop_index("ix_pass_mailbox_id", table_name="pass")
    op.drop_table("pass")
    op.drop_index("ix_mailbox_state", table_name="mailbox")
    with op.batch_alter_table("mailbox") as batch:
        for column in _mailbox_columns():
            batch.drop_column(column.name)
    with op.batch_alter_table("job") as batch:
        for column in _JOB_COLUMNS:
            batch.drop_column(column.name)
