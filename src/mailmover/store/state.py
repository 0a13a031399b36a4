"""The state of one mailbox pair: its folders, its messages, its activity log."""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Connection,
    Dialect,
    Executable,
    bindparam,
    func,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from mailmover.store import schema
from mailmover.store.connect import insert_for
from mailmover.store.records import (
    FAILURE_STATES,
    MAILBOX_STATES,
    MESSAGE_STATES,
    EventRecord,
    FolderRecord,
    MailboxInfo,
    MessageRecord,
    flags_text,
    flags_tuple,
    stored_flags,
)
from mailmover.store.schema import sqlite_datetime

if TYPE_CHECKING:
    from mailmover.store.database import Store

_m = schema.message
_f = schema.folder

#: Columns in the order of MessageRecord's fields.
_MESSAGE_COLUMNS = (
    _m.c.source_uidvalidity,
    _m.c.source_uid,
    _m.c.size,
    _m.c.internaldate,
    _m.c.state,
    _m.c.dest_uidvalidity,
    _m.c.dest_uid,
    _m.c.message_id,
    _m.c.digest,
    _m.c.flags,
    _m.c.reason,
)
_MESSAGE_KEY = ("folder_id", "source_uidvalidity", "source_uid")


@functools.cache
def _message_upsert(dialect: str, columns: tuple[str, ...]) -> Any:
    """INSERT … ON CONFLICT (the message key) DO UPDATE, built once per dialect: a new
    statement per batch cost a copy of the table's columns each time."""
    insert = sqlite_insert(_m) if dialect == "sqlite" else pg_insert(_m)
    return insert.on_conflict_do_update(
        index_elements=[_m.c[name] for name in _MESSAGE_KEY],
        set_={name: insert.excluded[name] for name in columns if name not in _MESSAGE_KEY},
    )


#: The columns of a message row as ``_sqlite_row`` orders them.
_ROW_COLUMNS = (
    "folder_id",
    "source_uidvalidity",
    "source_uid",
    "dest_uidvalidity",
    "dest_uid",
    "size",
    "internaldate",
    "message_id",
    "digest",
    "flags",
    "state",
    "reason",
    "updated_at",
)


@functools.cache
def _sqlite_upsert(dialect: Dialect) -> str:
    """``_message_upsert`` as SQLite text with a ``?`` per column of ``_ROW_COLUMNS``."""
    compiled = _message_upsert("sqlite", _ROW_COLUMNS).compile(
        dialect=dialect, column_keys=list(_ROW_COLUMNS)
    )
    if tuple(compiled.positiontup or ()) != _ROW_COLUMNS:
        raise AssertionError(f"unexpected parameter order {compiled.positiontup}")
    return str(compiled)


_FOLDER_COLUMNS = (
    _f.c.id,
    _f.c.source_name,
    _f.c.dest_name,
    _f.c.source_uidvalidity,
    _f.c.dest_uidvalidity,
    _f.c.source_uidnext,
    _f.c.highestmodseq,
    _f.c.subscribed,
    _f.c.state,
    _f.c.messages_total,
    _f.c.bytes_total,
)

_UPDATE_FLAGS = (
    update(_m)
    .where(
        _m.c.folder_id == bindparam("b_folder_id"),
        _m.c.source_uidvalidity == bindparam("b_uidvalidity"),
        _m.c.source_uid == bindparam("b_uid"),
    )
    .values(flags=bindparam("b_flags"), updated_at=bindparam("b_updated_at"))
)


class MailboxState:
    """Reads and writes the state of one mailbox pair; every write is one transaction."""

    def __init__(self, store: Store, mailbox_id: int, source: str, dest: str) -> None:
        self.store = store
        self.id = mailbox_id
        self.source = source
        self.dest = dest

    # -- the mailbox row ---------------------------------------------------------------

    def info(self) -> MailboxInfo:
        """The mailbox row with its job's name."""
        mb = schema.mailbox
        query = (
            select(mb, schema.job.c.name.label("job_name"))
            .join(schema.job, schema.job.c.id == mb.c.job_id)
            .where(mb.c.id == self.id)
        )
        with self.store.engine.connect() as conn:
            row = conn.execute(query).one()
        return MailboxInfo(
            id=row.id,
            job_name=row.job_name,
            source=row.source,
            dest=row.dest,
            state=row.state,
            error=row.error,
            started_at=row.started_at,
            finished_at=row.finished_at,
        )

    def set_state(self, state: str, error: str | None = None) -> None:
        """Set the mailbox state and its error; ``running`` and the end states stamp times."""
        if state not in MAILBOX_STATES:
            raise ValueError(f"unknown mailbox state {state!r}")
        now = datetime.now(UTC)
        values: dict[str, Any] = {"state": state, "error": error}
        if state == "running":
            values |= {"started_at": now, "finished_at": None}
        elif state in ("done", "failed"):
            values["finished_at"] = now
        self._write(schema.mailbox.update().where(schema.mailbox.c.id == self.id).values(values))

    def log(self, level: str, kind: str, text: str) -> None:
        """Add a line to this mailbox's activity log."""
        self._write(
            schema.event.insert().values(
                mailbox_id=self.id, at=datetime.now(UTC), level=level, kind=kind, text=text
            )
        )

    def events(self, limit: int | None = None) -> list[EventRecord]:
        """This mailbox's activity log, oldest first; the last ``limit`` lines when given."""
        ev = schema.event
        query = select(ev).where(ev.c.mailbox_id == self.id).order_by(ev.c.id.desc())
        if limit is not None:
            query = query.limit(limit)
        with self.store.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            EventRecord(r.id, r.mailbox_id, r.at, r.level, r.kind, r.text) for r in reversed(rows)
        ]

    # -- folders -----------------------------------------------------------------------

    def folders(self) -> list[FolderRecord]:
        """Every folder of this mailbox, by source name."""
        query = select(*_FOLDER_COLUMNS).where(_f.c.mailbox_id == self.id)
        with self.store.engine.connect() as conn:
            rows = conn.execute(query.order_by(_f.c.source_name)).all()
        return [FolderRecord(*row) for row in rows]

    def folder(self, source_name: str) -> FolderRecord | None:
        """The folder named ``source_name`` on the source, if it is recorded."""
        query = select(*_FOLDER_COLUMNS).where(
            _f.c.mailbox_id == self.id, _f.c.source_name == source_name
        )
        with self.store.engine.connect() as conn:
            row = conn.execute(query).one_or_none()
        return None if row is None else FolderRecord(*row)

    def save_folder(self, rec: FolderRecord) -> FolderRecord:
        """Insert or update a folder; without an id, the source name says which.

        Returns the record with its id.
        """
        values = {
            "source_name": rec.source_name,
            "dest_name": rec.dest_name,
            "source_uidvalidity": rec.source_uidvalidity,
            "dest_uidvalidity": rec.dest_uidvalidity,
            "source_uidnext": rec.source_uidnext,
            "highestmodseq": rec.highestmodseq,
            "subscribed": rec.subscribed,
            "state": rec.state,
            "messages_total": rec.messages_total,
            "bytes_total": rec.bytes_total,
        }
        with self.store.write_engine.begin() as conn:
            if rec.id is not None:
                result = conn.execute(
                    _f.update().where(_f.c.id == rec.id, _f.c.mailbox_id == self.id).values(values)
                )
                if result.rowcount != 1:
                    raise LookupError(f"mailbox {self.id} has no folder with id {rec.id}")
                return replace(rec)
            insert = insert_for(conn, _f).values(mailbox_id=self.id, **values)
            conn.execute(
                insert.on_conflict_do_update(
                    index_elements=[_f.c.mailbox_id, _f.c.source_name], set_=values
                )
            )
            folder_id = conn.execute(
                select(_f.c.id).where(
                    _f.c.mailbox_id == self.id, _f.c.source_name == rec.source_name
                )
            ).scalar_one()
        return replace(rec, id=folder_id)

    # -- messages ----------------------------------------------------------------------

    def record_messages(self, folder_id: int, records: Sequence[MessageRecord]) -> None:
        """Insert or replace these messages of a folder, in one transaction.

        A message is keyed by (source_uidvalidity, source_uid); a record already
        stored under that key is replaced by the new one as a whole.
        """
        if not records:
            return
        now = datetime.now(UTC)
        with self.store.write_engine.begin() as conn:
            self._check_folder(conn, folder_id)
            if conn.dialect.name == "sqlite":
                # Values converted here, once, and handed to the driver's executemany:
                # SQLAlchemy's bind processors per value were most of a copy's writes.
                stamp = sqlite_datetime(now)
                conn.exec_driver_sql(
                    _sqlite_upsert(conn.dialect),
                    [_sqlite_row(folder_id, rec, stamp) for rec in records],
                )
                return
            rows = [_message_row(folder_id, rec, now) for rec in records]
            conn.execute(_message_upsert(conn.dialect.name, tuple(rows[0])), rows)

    def update_flags(
        self, folder_id: int, changes: Sequence[tuple[int, int, tuple[str, ...]]]
    ) -> None:
        """Record the flags now on the destination for (uidvalidity, uid, flags) triples.

        Messages that are not recorded are passed over.
        """
        if not changes:
            return
        now = datetime.now(UTC)
        rows = [
            {
                "b_folder_id": folder_id,
                "b_uidvalidity": uidvalidity,
                "b_uid": uid,
                "b_flags": flags_text(flags),
                "b_updated_at": now,
            }
            for uidvalidity, uid, flags in changes
        ]
        with self.store.write_engine.begin() as conn:
            self._check_folder(conn, folder_id)
            conn.execute(_UPDATE_FLAGS, rows)

    def message_page(
        self,
        folder_id: int,
        *,
        after: tuple[int, int] | None = None,
        states: Collection[str] | None = None,
        uidvalidity: int | None = None,
        limit: int = 5000,
    ) -> list[MessageRecord]:
        """Up to ``limit`` messages of a folder that come after the key ``after``.

        Messages are ordered by (source_uidvalidity, source_uid), which is UID order
        within one UIDVALIDITY; ``after`` is the key of the last message of the
        previous page.
        """
        if limit < 1:
            raise ValueError("limit must be at least 1")
        query = select(*_MESSAGE_COLUMNS).where(_m.c.folder_id == folder_id)
        if states is not None:
            query = query.where(_m.c.state.in_(list(states)))
        if uidvalidity is not None:
            query = query.where(_m.c.source_uidvalidity == uidvalidity)
        if after is not None and uidvalidity is not None and after[0] == uidvalidity:
            query = query.where(_m.c.source_uid > after[1])
        elif after is not None:
            # A row-value comparison, which SQLite and PostgreSQL both answer from the
            # unique index; PostgreSQL turns the equivalent OR into a scan of the folder.
            query = query.where(tuple_(_m.c.source_uidvalidity, _m.c.source_uid) > tuple_(*after))
        query = query.order_by(_m.c.source_uidvalidity, _m.c.source_uid).limit(limit)
        with self.store.engine.connect() as conn:
            self._check_folder(conn, folder_id)
            rows = conn.execute(query).all()
        return [
            MessageRecord(uv, uid, size, idate, state, duv, duid, mid, digest, flags_tuple(fl), why)
            for uv, uid, size, idate, state, duv, duid, mid, digest, fl, why in rows
        ]

    def iter_messages(
        self,
        folder_id: int,
        *,
        states: Collection[str] | None = None,
        uidvalidity: int | None = None,
        chunk: int = 5000,
    ) -> Iterator[MessageRecord]:
        """The messages of a folder in (source_uidvalidity, source_uid) order.

        Read ``chunk`` rows at a time, each chunk in its own short transaction, so
        writes may go on between chunks.
        """
        after: tuple[int, int] | None = None
        while True:
            page = self.message_page(
                folder_id, after=after, states=states, uidvalidity=uidvalidity, limit=chunk
            )
            yield from page
            if len(page) < chunk:
                return
            after = (page[-1].source_uidvalidity, page[-1].source_uid)

    def counts(self, folder_id: int | None = None) -> dict[str, int]:
        """Number of messages in each state, in this mailbox or one of its folders."""
        return {state: count for state, (count, _) in self._tally(folder_id).items()}

    def sizes(self, folder_id: int | None = None) -> dict[str, int]:
        """Bytes of the messages in each state, in this mailbox or one of its folders."""
        return {state: size for state, (_, size) in self._tally(folder_id).items()}

    def failures(self) -> list[tuple[str, MessageRecord]]:
        """Messages failed or skipped, with their source folder name, for the report."""
        query = (
            select(_f.c.source_name, *_MESSAGE_COLUMNS)
            .join(_f, _f.c.id == _m.c.folder_id)
            .where(_f.c.mailbox_id == self.id, _m.c.state.in_(FAILURE_STATES))
            .order_by(_f.c.source_name, _m.c.source_uidvalidity, _m.c.source_uid)
        )
        with self.store.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            (
                name,
                MessageRecord(uv, uid, size, idate, st, duv, duid, mid, dg, flags_tuple(fl), why),
            )
            for name, uv, uid, size, idate, st, duv, duid, mid, dg, fl, why in rows
        ]

    # -- helpers -----------------------------------------------------------------------

    def _tally(self, folder_id: int | None) -> dict[str, tuple[int, int]]:
        query = (
            select(_m.c.state, func.count(), func.coalesce(func.sum(_m.c.size), 0))
            .join(_f, _f.c.id == _m.c.folder_id)
            .where(_f.c.mailbox_id == self.id)
            .group_by(_m.c.state)
        )
        if folder_id is not None:
            query = query.where(_m.c.folder_id == folder_id)
        with self.store.engine.connect() as conn:
            rows = conn.execute(query).all()
        return {state: (int(count), int(size)) for state, count, size in rows}

    def _write(self, statement: Executable) -> None:
        with self.store.write_engine.begin() as conn:
            conn.execute(statement)

    def _check_folder(self, conn: Connection, folder_id: int) -> None:
        found = conn.execute(
            select(_f.c.id).where(_f.c.id == folder_id, _f.c.mailbox_id == self.id)
        ).first()
        if found is None:
            raise LookupError(f"mailbox {self.id} has no folder with id {folder_id}")


def _checked(rec: MessageRecord) -> None:
    if rec.state not in MESSAGE_STATES:
        raise ValueError(f"unknown message state {rec.state!r}")
    if rec.internaldate.utcoffset() is None:
        raise ValueError(f"message {rec.source_uid}: internaldate has no timezone")


def _sqlite_row(folder_id: int, rec: MessageRecord, stamp: str | None) -> tuple[Any, ...]:
    """A message row for SQLite, valued as SQLAlchemy's bind processors would store it."""
    _checked(rec)
    return (
        folder_id,
        rec.source_uidvalidity,
        rec.source_uid,
        rec.dest_uidvalidity,
        rec.dest_uid,
        rec.size,
        sqlite_datetime(rec.internaldate),
        rec.message_id,
        rec.digest,
        stored_flags(rec.flags),
        rec.state,
        rec.reason,
        stamp,
    )


def _message_row(folder_id: int, rec: MessageRecord, now: datetime) -> dict[str, Any]:
    _checked(rec)
    return {
        "folder_id": folder_id,
        "source_uidvalidity": rec.source_uidvalidity,
        "source_uid": rec.source_uid,
        "dest_uidvalidity": rec.dest_uidvalidity,
        "dest_uid": rec.dest_uid,
        "size": rec.size,
        "internaldate": rec.internaldate,
        "message_id": rec.message_id,
        "digest": rec.digest,
        "flags": stored_flags(rec.flags),
        "state": rec.state,
        "reason": rec.reason,
        "updated_at": now,
    }
