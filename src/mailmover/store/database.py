"""The job state database: one engine, one writer thread, and a handle per mailbox pair."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import DBAPIError

from mailmover.errors import StoreError, UsageError
from mailmover.store import schema
from mailmover.store.connect import default_url, insert_for, make_engine, unreachable, writer
from mailmover.store.migrate import upgrade
from mailmover.store.state import MailboxState


class Store:
    """The job state: SQLite or PostgreSQL, migrated to the newest schema when opened.

    Synchronous. Asyncio code goes through ``StoreJournal``, which runs every
    call on this store's single ``writer`` thread.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        #: Transactions begun on this engine take SQLite's write lock at BEGIN.
        self.write_engine = writer(engine)
        #: The one thread that asyncio callers' database work runs on.
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mailmover-store")
        self._closed = False

    @classmethod
    def open(cls, url: str | None = None) -> Store:
        """Open (creating if need be) the database at ``url`` and migrate it.

        ``url`` is ``sqlite:///path`` or a PostgreSQL URL; None means ``default_url()``.
        """
        url = url or default_url()
        engine = make_engine(url)
        try:
            upgrade(engine)
        except DBAPIError as exc:  # unreachable, refused, no such database, no right
            engine.dispose()
            raise StoreError(unreachable(url, exc), retryable=True) from exc
        except BaseException:
            engine.dispose()
            raise
        return cls(engine)

    def mailbox(self, source: str, dest: str, job_name: str = "default") -> MailboxState:
        """The state of the pair ``source`` → ``dest`` in job ``job_name``, created if new.

        ``source`` and ``dest`` are endpoint URLs that must not carry a password.
        """
        _refuse_password(source)
        _refuse_password(dest)
        now = datetime.now(UTC)
        with self.write_engine.begin() as conn:
            conn.execute(
                insert_for(conn, schema.job)
                .values(name=job_name, created_at=now, state="new")
                .on_conflict_do_nothing()
            )
            job_id = conn.execute(
                select(schema.job.c.id).where(schema.job.c.name == job_name)
            ).scalar_one()
            conn.execute(
                insert_for(conn, schema.mailbox)
                .values(job_id=job_id, source=source, dest=dest, state="new")
                .on_conflict_do_nothing()
            )
            mailbox_id = conn.execute(
                select(schema.mailbox.c.id).where(
                    schema.mailbox.c.job_id == job_id,
                    schema.mailbox.c.source == source,
                    schema.mailbox.c.dest == dest,
                )
            ).scalar_one()
        return MailboxState(self, mailbox_id, source, dest)

    def find_mailbox(
        self, source: str, dest: str, job_name: str = "default"
    ) -> MailboxState | None:
        """The state of a pair already recorded in ``job_name``, without creating it."""
        mb, job = schema.mailbox, schema.job
        query = (
            select(mb.c.id)
            .join(job, job.c.id == mb.c.job_id)
            .where(job.c.name == job_name, mb.c.source == source, mb.c.dest == dest)
        )
        with self.engine.connect() as conn:
            mailbox_id = conn.execute(query).scalar_one_or_none()
        return None if mailbox_id is None else MailboxState(self, mailbox_id, source, dest)

    def mailbox_by_id(self, mailbox_id: int) -> MailboxState:
        """The state of an existing mailbox pair; ``LookupError`` when there is none."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(schema.mailbox.c.source, schema.mailbox.c.dest).where(
                    schema.mailbox.c.id == mailbox_id
                )
            ).one_or_none()
        if row is None:
            raise LookupError(f"no mailbox with id {mailbox_id}")
        return MailboxState(self, mailbox_id, row.source, row.dest)

    def last_event_id(self) -> int:
        """The id of the newest activity-log line (0 when there is none): where a reader
        of the log that wants only what comes next starts."""
        with self.engine.connect() as conn:
            return int(
                conn.execute(select(func.coalesce(func.max(schema.event.c.id), 0))).scalar_one()
            )

    def log(self, level: str, kind: str, text: str) -> None:
        """Add a line to the activity log that belongs to no mailbox."""
        with self.write_engine.begin() as conn:
            conn.execute(
                schema.event.insert().values(
                    mailbox_id=None, at=datetime.now(UTC), level=level, kind=kind, text=text
                )
            )

    def close(self) -> None:
        """Wait for the writer thread's queued work, then close every connection."""
        if self._closed:
            return
        self._closed = True
        self.writer.shutdown(wait=True)
        self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _refuse_password(endpoint: str) -> None:
    # The message must not quote the URL: it holds the password.
    try:
        password = urlsplit(endpoint).password
    except ValueError as exc:
        raise UsageError("a mailbox endpoint is not a valid URL") from exc
    if password is not None:
        raise UsageError("a mailbox endpoint URL must not contain a password")
