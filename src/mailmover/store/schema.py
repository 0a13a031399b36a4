"""The job state tables, in SQLAlchemy Core, portable between SQLite and PostgreSQL.

The Alembic migrations in ``migrations/versions`` must produce exactly this
schema; a unit test compares the two.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

#: Constraint names are spelled out so that migrations can refer to them on any database.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

#: Row ids: 64-bit on PostgreSQL; SQLite only auto-increments a column typed INTEGER.
RowId = BigInteger().with_variant(Integer(), "sqlite")


def sqlite_datetime(value: datetime | None) -> str | None:
    """The text SQLAlchemy's SQLite DATETIME stores for an aware ``value``, as UTC.

    ``YYYY-MM-DD HH:MM:SS.ffffff``, made in one C call: writing message rows
    spends most of its time here. ValueError for a naive datetime.
    """
    if value is None:
        return None
    if value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()} cannot be stored")
    # without the "+00:00" that follows
    return value.astimezone(UTC).isoformat(" ", "microseconds")[:26]


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp, stored as UTC and always read back aware in UTC.

    SQLite has no timezone type, so the value is stored there as naive UTC.
    Naive datetimes are refused rather than guessed at.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} cannot be stored; give a tzinfo")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def bind_processor(self, dialect: Dialect) -> Callable[[datetime | None], Any] | None:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)
        return sqlite_datetime

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


job = Table(
    "job",
    metadata,
    Column("id", RowId, primary_key=True),
    Column("name", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("state", Text, nullable=False),
    # The service's columns (0002): who owns the job, its settings and its schedule.
    Column("owner", Text, nullable=True),
    # PassSettings.to_dict() of the whole job.
    Column("settings", JSON, nullable=True),
    # Delta passes every this many hours until the job is completed; None: none scheduled.
    Column("delta_every_hours", Float, nullable=True),
    Column("updated_at", UTCDateTime, nullable=True),
    # The account the job belongs to (0004); None for jobs made outside the web app.
    # No foreign key: SQLite cannot add one to an existing table, and accounts are
    # disabled, never deleted.
    Column("owner_id", RowId, nullable=True),
    UniqueConstraint("name"),
    Index(None, "owner_id"),
)

mailbox = Table(
    "mailbox",
    metadata,
    Column("id", RowId, primary_key=True),
    Column("job_id", RowId, ForeignKey("job.id", ondelete="CASCADE"), nullable=False),
    # Endpoint URLs without the password, e.g. imaps://alice@mail.example.com:993
    Column("source", Text, nullable=False),
    Column("dest", Text, nullable=False),
    # Encrypted credentials; never plain text.
    Column("source_secret", LargeBinary, nullable=True),
    Column("dest_secret", LargeBinary, nullable=True),
    Column("state", Text, nullable=False),
    Column("error", Text, nullable=True),
    Column("started_at", UTCDateTime, nullable=True),
    Column("finished_at", UTCDateTime, nullable=True),
    # The service's columns (0002). Endpoints as data (settings.endpoint_dict), no secret.
    Column("source_endpoint", JSON, nullable=True),
    Column("dest_endpoint", JSON, nullable=True),
    # Per-mailbox overrides of the job's settings (a batch row's options).
    Column("settings", JSON, nullable=True),
    # The batch file line this mailbox came from, for messages a person can follow.
    Column("line", Integer, nullable=True),
    # Why the mailbox is in its state, in words ("Gmail's daily limit", a failure reason).
    Column("reason", Text, nullable=True),
    Column("waiting_until", UTCDateTime, nullable=True),
    # The pass to run next: full, delta, retry_errors...; None when nothing is due.
    Column("next_pass", Text, nullable=True),
    Column("next_pass_at", UTCDateTime, nullable=True),
    # pause | cancel, asked for by a person; the worker holding the lease acts on it.
    Column("requested", Text, nullable=True),
    # Counters, written by the worker as batches are recorded.
    Column("messages_total", BigInteger, nullable=False, server_default="0"),
    Column("bytes_total", BigInteger, nullable=False, server_default="0"),
    Column("messages_copied", BigInteger, nullable=False, server_default="0"),
    Column("bytes_copied", BigInteger, nullable=False, server_default="0"),
    Column("messages_failed", BigInteger, nullable=False, server_default="0"),
    Column("messages_left", BigInteger, nullable=False, server_default="0"),
    Column("bytes_left", BigInteger, nullable=False, server_default="0"),
    # Rate and ETA: bytes copied by the current pass since it began.
    Column("pass_bytes", BigInteger, nullable=False, server_default="0"),
    Column("pass_started_at", UTCDateTime, nullable=True),
    Column("progress_at", UTCDateTime, nullable=True),
    # The lease: "running" holds only while a live worker renews it.
    Column("lease_owner", Text, nullable=True),
    Column("lease_expires", UTCDateTime, nullable=True),
    Column("heartbeat_at", UTCDateTime, nullable=True),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("crashes", Integer, nullable=False, server_default="0"),
    # Connection pairs the running pass holds against the budgets (0003); counted by
    # every runner and worker on the database while the lease is live.
    Column("connections", Integer, nullable=False, server_default="0"),
    Column("last_pass_at", UTCDateTime, nullable=True),
    Column("updated_at", UTCDateTime, nullable=True),
    # When both servers last let its credentials in (0006); None: not yet, or they
    # changed since. Logins not yet checked count against the owner's wrong passwords.
    Column("logins_checked_at", UTCDateTime, nullable=True),
    UniqueConstraint("job_id", "source", "dest"),
    Index(None, "state"),
)

#: One run of the engine over a mailbox (``pass`` is a word of SQL in no dialect we use).
mailbox_pass = Table(
    "pass",
    metadata,
    Column("id", RowId, primary_key=True),
    Column("mailbox_id", RowId, ForeignKey("mailbox.id", ondelete="CASCADE"), nullable=False),
    Column("kind", Text, nullable=False),
    Column("worker", Text, nullable=True),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    # PassReport's outcome, or "crashed" when its worker died.
    Column("outcome", Text, nullable=True),
    Column("report", JSON, nullable=True),
    Index(None, "mailbox_id"),
)

folder = Table(
    "folder",
    metadata,
    Column("id", RowId, primary_key=True),
    Column("mailbox_id", RowId, ForeignKey("mailbox.id", ondelete="CASCADE"), nullable=False),
    Column("source_name", Text, nullable=False),
    Column("dest_name", Text, nullable=False),
    Column("source_uidvalidity", BigInteger, nullable=True),
    Column("dest_uidvalidity", BigInteger, nullable=True),
    Column("source_uidnext", BigInteger, nullable=True),
    Column("highestmodseq", BigInteger, nullable=True),
    Column("subscribed", Boolean, nullable=False),
    Column("state", Text, nullable=False),
    Column("messages_total", BigInteger, nullable=False),
    Column("bytes_total", BigInteger, nullable=False),
    UniqueConstraint("mailbox_id", "source_name"),
)

message = Table(
    "message",
    metadata,
    Column("id", RowId, primary_key=True),
    Column("folder_id", RowId, ForeignKey("folder.id", ondelete="CASCADE"), nullable=False),
    Column("source_uidvalidity", BigInteger, nullable=False),
    Column("source_uid", BigInteger, nullable=False),
    Column("dest_uidvalidity", BigInteger, nullable=True),
    Column("dest_uid", BigInteger, nullable=True),
    Column("size", BigInteger, nullable=False),
    Column("internaldate", UTCDateTime, nullable=False),
    Column("message_id", Text, nullable=True),
    # SHA-256 of the message as fetched from the source.
    Column("digest", LargeBinary, nullable=True),
    # Flags as last brought to the destination: sorted, space separated.
    Column("flags", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("reason", Text, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("folder_id", "source_uidvalidity", "source_uid"),
    Index(None, "folder_id", "state"),
)

event = Table(
    "event",
    metadata,
    Column("id", RowId, primary_key=True),
    Column("mailbox_id", RowId, ForeignKey("mailbox.id", ondelete="CASCADE"), nullable=True),
    Column("at", UTCDateTime, nullable=False),
    Column("level", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("text", Text, nullable=False),
    Index(None, "mailbox_id"),
)

#: A server that throttled us (0003): no mailbox on it starts before ``until``.
server_hold = Table(
    "server_hold",
    metadata,
    # host:port, as the budgets count servers
    Column("server", Text, primary_key=True),
    Column("until", UTCDateTime, nullable=False),
    Column("reason", Text, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
)

#: People who sign in to the web app (0004).
account = Table(
    "account",
    metadata,
    Column("id", RowId, primary_key=True),
    Column("email", Text, nullable=False),
    # argon2id hash (PHC string); never the password.
    Column("password_hash", Text, nullable=False),
    # administrator | user
    Column("role", Text, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("email"),
)

#: Signed-in browser sessions: the cookie's SHA-256, never the cookie itself.
web_session = Table(
    "web_session",
    metadata,
    Column("id", RowId, primary_key=True),
    Column("token_hash", LargeBinary, nullable=False),
    Column("account_id", RowId, ForeignKey("account.id", ondelete="CASCADE"), nullable=False),
    Column("csrf", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    UniqueConstraint("token_hash"),
    Index(None, "account_id"),
)

#: Tokens for scripts using the JSON API: the token's SHA-256, never the token.
api_token = Table(
    "api_token",
    metadata,
    Column("id", RowId, primary_key=True),
    Column("account_id", RowId, ForeignKey("account.id", ondelete="CASCADE"), nullable=False),
    Column("name", Text, nullable=False),
    Column("token_hash", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime, nullable=True),
    UniqueConstraint("token_hash"),
    Index(None, "account_id"),
)

#: Who did what: created, paused, cancelled a transfer, downloaded a report, changed a user.
audit = Table(
    "audit",
    metadata,
    Column("id", RowId, primary_key=True),
    Column("at", UTCDateTime, nullable=False),
    # The account that acted (None: the system); its email as it was then.
    Column("actor_id", RowId, nullable=True),
    Column("actor", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("target", Text, nullable=False),
    Column("detail", Text, nullable=False, server_default=""),
    Index(None, "at"),
)


#: "Ask each user" (0005): a one-time link emailed to a mailbox's user, who gives their
#: own password there. Only the link's token's SHA-256 is stored; a new email replaces it.
invitation = Table(
    "invitation",
    metadata,
    Column("id", RowId, primary_key=True),
    Column("mailbox_id", RowId, ForeignKey("mailbox.id", ondelete="CASCADE"), nullable=False),
    Column("email", Text, nullable=False),
    # The sides the user is asked to log in to: "source", "dest" or "source dest".
    Column("sides", Text, nullable=False),
    Column("token_hash", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime, nullable=True),
    Column("sends", Integer, nullable=False, server_default="0"),
    Column("used_at", UTCDateTime, nullable=True),
    UniqueConstraint("mailbox_id"),
    UniqueConstraint("token_hash"),
)

#: Wrong passwords (0006), counted by every process that checks one (``service.signinlimits``):
#: one row per wrong password per kind ("account": an account or a person's mail logins,
#: "address": where it came from). Never the password.
signin_failure = Table(
    "signin_failure",
    metadata,
    Column("id", RowId, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("key", Text, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Index(None, "kind", "key", "at"),
    Index(None, "at"),
)

#: What a person has filled in between the wizard's steps or a batch's upload and start
#: (0007, ``service.drafts``), shared by every web process; ``data`` is encrypted.
web_draft = Table(
    "web_draft",
    metadata,
    Column("id", Text, primary_key=True),
    Column("owner_id", RowId, ForeignKey("account.id", ondelete="CASCADE"), nullable=False),
    Column("touched_at", UTCDateTime, nullable=False),
    Column("data", LargeBinary, nullable=False),
    # The job made from it; while one request makes it, when that began.
    Column("job", Text, nullable=True),
    Column("making_at", UTCDateTime, nullable=True),
    Index(None, "touched_at"),
)

#: A record one web request leaves for a later one (0007, ``service.pending``): an OAuth2
#: sign-in on its way, an invitation's sign-ins. ``key``: kind and the SHA-256 of the
#: random key the browser holds; ``data`` is encrypted.
web_pending = Table(
    "web_pending",
    metadata,
    Column("key", Text, primary_key=True),
    Column("data", LargeBinary, nullable=False),
    Column("touched_at", UTCDateTime, nullable=False),
    Index(None, "touched_at"),
)
