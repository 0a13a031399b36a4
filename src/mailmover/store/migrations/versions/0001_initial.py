"""The first schema: job, mailbox, folder, message, event.

Revision ID: 0001
Revises:
Create Date: 2026-05-09
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the types in mailmover.store.schema: a migration never changes
# when the live schema does.
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "job",
        sa.Column("id", ROW_ID, nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_job"),
        sa.UniqueConstraint("name", name="uq_job_name"),
    )
    op.create_table(
        "mailbox",
        sa.Column("id", ROW_ID, nullable=False),
        sa.Column("job_id", ROW_ID, nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("dest", sa.Text(), nullable=False),
        sa.Column("source_secret", sa.LargeBinary(), nullable=True),
        sa.Column("dest_secret", sa.LargeBinary(), nullable=True),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", TIMESTAMP, nullable=True),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_mailbox"),
        sa.ForeignKeyConstraint(
            ["job_id"], ["job.id"], name="fk_mailbox_job_id_job", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("job_id", "source", "dest", name="uq_mailbox_job_id_source_dest"),
    )
    op.create_table(
        "folder",
        sa.Column("id", ROW_ID, nullable=False),
        sa.Column("mailbox_id", ROW_ID, nullable=False),
        sa.Column("source_name", sa.Text(), nullable=False),
        sa.Column("dest_name", sa.Text(), nullable=False),
        sa.Column("source_uidvalidity", sa.BigInteger(), nullable=True),
        sa.Column("dest_uidvalidity", sa.BigInteger(), nullable=True),
        sa.Column("source_uidnext", sa.BigInteger(), nullable=True),
        sa.Column("highestmodseq", sa.BigInteger(), nullable=True),
        sa.Column("subscribed", sa.Boolean(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("messages_total", sa.BigInteger(), nullable=False),
        sa.Column("bytes_total", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_folder"),
        sa.ForeignKeyConstraint(
            ["mailbox_id"], ["mailbox.id"], name="fk_folder_mailbox_id_mailbox", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("mailbox_id", "source_name", name="uq_folder_mailbox_id_source_name"),
    )
    op.create_table(
        "message",
        sa.Column("id", ROW_ID, nullable=False),
        sa.Column("folder_id", ROW_ID, nullable=False),
        sa.Column("source_uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("source_uid", sa.BigInteger(), nullable=False),
        sa.Column("dest_uidvalidity", sa.BigInteger(), nullable=True),
        sa.Column("dest_uid", sa.BigInteger(), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("internaldate", TIMESTAMP, nullable=False),
        sa.Column("message_id", sa.Text(), nullable=True),
        sa.Column("digest", sa.LargeBinary(), nullable=True),
        sa.Column("flags", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_message"),
        sa.ForeignKeyConstraint(
            ["folder_id"], ["folder.id"], name="fk_message_folder_id_folder", ondelete="CASCADE"
        ),
        sa.UniqueConstraint(
            "folder_id",
            "source_uidvalidity",
            "source_uid",
            name="uq_message_folder_id_source_uidvalidity_source_uid",
        ),
    )
    op.create_index("ix_message_folder_id_state", "message", ["folder_id", "state"])
    op.create_table(
        "event",
        sa.Column("id", ROW_ID, nullable=False),
        sa.Column("mailbox_id", ROW_ID, nullable=True),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("level", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_event"),
        sa.ForeignKeyConstraint(
            ["mailbox_id"], ["mailbox.id"], name="fk_event_mailbox_id_mailbox", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_event_mailbox_id", "event", ["mailbox_id"])


def downgrade() -> None:
    op.drop_index("ix_event_mailbox_id", table_name="event")
    op.drop_table("event")
    op.drop_index("ix_message_folder_id_state", table_name="message")
    op.drop_table("message")
    op.drop_table("folder")
    op.drop_table("mailbox")
    op.drop_table("job")
