"""MailboxState on a real SQLite file and a real PostgreSQL database: records round-trip,
upserts, streaming, reports."""

from __future__ import annotations

import hashlib
import random
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import IntegrityError

from mailmover.errors import UsageError
from mailmover.store import FolderRecord, MailboxState, MessageRecord, Store, schema
from mailmover.store.records import flags_text

SRC = "imaps://alice@mail.example.com:993"
DST = "imaps://alice@new.example.net:993"
WHEN = datetime(2021, 3, 4, 5, 6, 7, tzinfo=timezone(timedelta(hours=-5)))


@pytest.fixture
def url(database_url: str) -> str:
    """A fresh job database, on SQLite and on PostgreSQL in turn."""
    return database_url


@pytest.fixture
def store(url: str) -> Iterator[Store]:
    s = Store.open(url)
    yield s
    s.close()


@pytest.fixture
def mbox(store: Store) -> MailboxState:
    return store.mailbox(SRC, DST)


@pytest.fixture
def inbox(mbox: MailboxState) -> int:
    folder_id = mbox.save_folder(FolderRecord(None, "INBOX", "INBOX")).id
    assert folder_id is not None
    return folder_id


def msg(uid: int, state: str = "done", uidvalidity: int = 7, **kw: Any) -> MessageRecord:
    return MessageRecord(uidvalidity, uid, 1000 + uid, WHEN + timedelta(minutes=uid), state, **kw)


def test_message_round_trip(mbox: MailboxState, inbox: int) -> None:
    body = b"Subject: x\r\n\r\n\xff\x00body\r\n"
    records = [
        MessageRecord(
            source_uidvalidity=4_294_967_295,
            source_uid=4_294_967_295,
            size=5_000_000_000,
            internaldate=WHEN,
            state="done",
            dest_uidvalidity=99,
            dest_uid=4_000_000_000,
            message_id="<caf\u00e9@example.com>",
            digest=hashlib.sha256(body).digest(),
            flags=("\\Seen", "$Forwarded", "\\Answered", "\\Seen"),
            reason=None,
        ),
        MessageRecord(1, 1, 0, datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC), "skipped",
                      reason="too large for the destination"),
    ]  # fmt: skip
    mbox.record_messages(inbox, records)
    got = list(mbox.iter_messages(inbox))
    assert [(r.source_uidvalidity, r.source_uid) for r in got] == [(1, 1), (4294967295, 4294967295)]
    skipped, done = got
    assert done.internaldate == WHEN
    assert done.internaldate.tzinfo is UTC
    assert done.internaldate.hour == 10
    assert done.digest == hashlib.sha256(body).digest()
    assert done.flags == ("$Forwarded", "\\Answered", "\\Seen")
    assert (done.size, done.dest_uidvalidity, done.dest_uid) == (5_000_000_000, 99, 4_000_000_000)
    assert done.message_id == "<caf\u00e9@example.com>"
    assert skipped.reason == "too large for the destination"
    assert skipped.digest is None and skipped.flags == () and skipped.dest_uid is None


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_timestamps_are_stored_as_utc_text_on_sqlite(
    store: Store, mbox: MailboxState, inbox: int
) -> None:
    old = datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    mbox.record_messages(inbox, [msg(1), MessageRecord(1, 2, 1, old, "done")])
    with store.engine.connect() as conn:
        stored = conn.execute(text("SELECT internaldate FROM message ORDER BY id")).scalars()
        assert list(stored) == ["2021-03-04 10:07:07.000000", "0999-01-02 03:04:05.000006"]
    assert [r.internaldate for r in mbox.iter_messages(inbox)] == [old, WHEN + timedelta(minutes=1)]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sqlite_rows_are_stored_as_sqlalchemy_stores_them(
    store: Store, mbox: MailboxState, inbox: int
) -> None:
    """record_messages hands SQLite values it converted itself: the same as SQLAlchemy's."""
    other = mbox.save_folder(FolderRecord(None, "Other", "Other")).id
    records = [
        msg(1, dest_uidvalidity=5, dest_uid=9, message_id="<caf\u00e9@x>",
            digest=hashlib.sha256(b"x").digest(), flags=("\\Seen", "$A", "\\Seen")),
        msg(2, "failed", uidvalidity=4_294_967_295, reason="refused", flags=()),
        MessageRecord(1, 3, 1, datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=UTC), "pending"),
    ]  # fmt: skip
    mbox.record_messages(inbox, records)
    columns = [c for c in schema.message.c if c.name not in ("id", "folder_id", "updated_at")]
    now = datetime.now(UTC)
    rows = [
        {**{c.name: getattr(r, c.name) for c in columns}, "folder_id": other, "updated_at": now}
        | {"flags": flags_text(r.flags)}
        for r in records
    ]
    with store.engine.begin() as conn:
        conn.execute(schema.message.insert(), rows)
    names = ", ".join(c.name for c in columns) + ", typeof(updated_at), length(updated_at)"
    with store.engine.connect() as conn:
        fast, general = (
            conn.exec_driver_sql(
                f"SELECT {names} FROM message WHERE folder_id = ? ORDER BY source_uid", (folder,)
            ).all()
            for folder in (inbox, other)
        )
    assert fast == general
    assert fast[0][columns.index(schema.message.c.flags)] == "$A \\Seen"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_timestamps_are_stored_as_timestamptz_in_utc_on_postgresql(
    store: Store, mbox: MailboxState, inbox: int
) -> None:
    old = datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    mbox.record_messages(inbox, [msg(1), MessageRecord(1, 2, 1, old, "done")])
    with store.engine.connect() as conn:
        conn.execute(text("SET TIME ZONE 'America/New_York'"))
        stored = conn.execute(
            text("SELECT to_char(internaldate AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') "
                 "FROM message ORDER BY id")
        ).scalars()  # fmt: skip
        assert list(stored) == ["2021-03-04 10:07:07.000000", "0999-01-02 03:04:05.000006"]
        kind = conn.execute(
            text("SELECT data_type FROM information_schema.columns "
                 "WHERE table_name = 'message' AND column_name = 'internaldate'")
        ).scalar()  # fmt: skip
    assert kind == "timestamp with time zone"
    read = [r.internaldate for r in mbox.iter_messages(inbox)]
    assert read == [old, WHEN + timedelta(minutes=1)]
    assert all(r.utcoffset() == timedelta(0) for r in read)


def test_upsert_replaces_pending_with_done(mbox: MailboxState, inbox: int) -> None:
    mbox.record_messages(inbox, [msg(1, "pending"), msg(2, "pending")])
    assert mbox.counts(inbox) == {"pending": 2}
    mbox.record_messages(inbox, [msg(1, "done", dest_uidvalidity=5, dest_uid=101)])
    assert mbox.counts(inbox) == {"pending": 1, "done": 1}
    first = next(mbox.iter_messages(inbox, states={"done"}))
    assert (first.source_uid, first.dest_uid, first.state) == (1, 101, "done")


def test_a_batch_is_one_transaction(mbox: MailboxState, inbox: int) -> None:
    bad = msg(3)
    bad.size = None  # type: ignore[assignment]
    with pytest.raises(IntegrityError):
        mbox.record_messages(inbox, [msg(1), msg(2), bad])
    assert mbox.counts() == {}


def test_records_are_validated(mbox: MailboxState, inbox: int) -> None:
    with pytest.raises(ValueError, match="state"):
        mbox.record_messages(inbox, [msg(1), msg(2, "copied")])
    with pytest.raises(ValueError, match="timezone"):
        mbox.record_messages(inbox, [MessageRecord(1, 1, 1, datetime(2020, 1, 1), "done")])
    with pytest.raises(ValueError, match="flag"):
        mbox.record_messages(inbox, [msg(1, flags=("\\Seen", "two words"))])
    assert mbox.counts() == {}


def test_iter_messages_filters_and_orders(mbox: MailboxState, inbox: int) -> None:
    states = ["done", "pending", "failed", "skipped"]
    records = [msg(uid, states[uid % 4], uidvalidity=7) for uid in range(1, 51)]
    records += [msg(uid, "done", uidvalidity=3) for uid in range(40, 60)]
    random.Random(1).shuffle(records)
    for start in range(0, len(records), 9):
        mbox.record_messages(inbox, records[start : start + 9])

    def keys(**kw: Any) -> list[tuple[int, int]]:
        return [(r.source_uidvalidity, r.source_uid) for r in mbox.iter_messages(inbox, **kw)]

    everything = [(3, uid) for uid in range(40, 60)] + [(7, uid) for uid in range(1, 51)]
    assert keys() == everything
    assert keys(chunk=7) == everything
    assert keys(chunk=10) == everything
    assert keys(chunk=1) == everything
    assert keys(uidvalidity=7, chunk=6) == [(7, uid) for uid in range(1, 51)]
    assert keys(states={"pending"}, chunk=4) == [(7, uid) for uid in range(1, 51) if uid % 4 == 1]
    assert keys(states=["failed", "skipped"], uidvalidity=7, chunk=5) == [
        (7, uid) for uid in range(1, 51) if uid % 4 in (2, 3)
    ]
    assert keys(states={"done"}, uidvalidity=3, chunk=3) == [(3, uid) for uid in range(40, 60)]
    assert keys(uidvalidity=8) == []
    with pytest.raises(ValueError):
        keys(chunk=0)


def test_iter_messages_reads_one_chunk_at_a_time(
    store: Store, mbox: MailboxState, inbox: int
) -> None:
    mbox.record_messages(inbox, [msg(uid) for uid in range(1, 36)])
    pages: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM message" in statement:
            pages.append(statement)

    event.listen(store.engine, "before_cursor_execute", count)
    it = mbox.iter_messages(inbox, chunk=10)
    assert next(it).source_uid == 1
    assert len(pages) == 1
    # Writes between chunks do not wait on the reader.
    mbox.update_flags(inbox, [(7, 30, ("\\Flagged",))])
    rest = list(it)
    assert [r.source_uid for r in rest] == list(range(2, 36))
    assert rest[28].flags == ("\\Flagged",)
    assert len(pages) == 4


@pytest.mark.parametrize(
    "kw",
    [{}, {"uidvalidity": 7}, {"states": {"done"}, "uidvalidity": 7}],
    ids=["all", "uidvalidity", "state"],
)
def test_later_pages_are_read_from_an_index(
    store: Store, mbox: MailboxState, inbox: int, kw: dict[str, Any]
) -> None:
    # A page that the database had to sort, or find by scanning the folder,
    # would make reading a large folder quadratic.
    mbox.record_messages(inbox, [msg(uid) for uid in range(1, 21)])
    issued: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, params: Any, *_args: Any) -> None:
        if "FROM message" in statement and "LIMIT" in statement:
            issued.append((statement, params))

    event.listen(store.engine, "before_cursor_execute", capture)
    assert len(mbox.message_page(inbox, after=(7, 10), limit=5, **kw)) == 5
    event.remove(store.engine, "before_cursor_execute", capture)
    ((statement, params),) = issued
    with store.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            plan = " / ".join(
                row[-1] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params)
            )
            assert plan.startswith("SEARCH message USING"), plan
            assert "TEMP B-TREE" not in plan, plan
            return
        # Twenty rows would be scanned whatever the indexes: make scans dear, then
        # the plan shows what an index allows (a Sort node would still be chosen
        # if none gave the order).
        conn.exec_driver_sql("SET enable_seqscan = off")
        plan = " / ".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + statement, params))
    assert "Index" in plan and "message" in plan, plan
    assert "Sort" not in plan, plan


def test_update_flags(mbox: MailboxState, inbox: int) -> None:
    other = mbox.save_folder(FolderRecord(None, "Sent", "Sent Items")).id
    assert other is not None
    mbox.record_messages(inbox, [msg(1, flags=("\\Seen",)), msg(2)])
    mbox.record_messages(other, [msg(1, flags=("\\Seen",))])
    mbox.update_flags(inbox, [(7, 1, ("\\Seen", "\\Flagged")), (7, 2, ("\\Seen",)), (7, 99, ())])
    assert [r.flags for r in mbox.iter_messages(inbox)] == [("\\Flagged", "\\Seen"), ("\\Seen",)]
    assert [r.flags for r in mbox.iter_messages(other)] == [("\\Seen",)]
    assert mbox.counts() == {"done": 3}


def test_counts_sizes_and_failures(mbox: MailboxState, inbox: int) -> None:
    archive = mbox.save_folder(FolderRecord(None, "Archive", "Archive")).id
    assert archive is not None
    mbox.record_messages(inbox, [msg(1), msg(2, "failed", reason="rejected: [LIMIT]"), msg(3)])
    mbox.record_messages(archive, [msg(5, "skipped", reason="too large"), msg(4, "pending")])
    assert mbox.counts() == {"done": 2, "failed": 1, "skipped": 1, "pending": 1}
    assert mbox.counts(inbox) == {"done": 2, "failed": 1}
    assert mbox.sizes(inbox) == {"done": 1001 + 1003, "failed": 1002}
    assert mbox.sizes() == {"done": 2004, "failed": 1002, "skipped": 1005, "pending": 1004}
    failures = [(name, r.source_uid, r.state, r.reason) for name, r in mbox.failures()]
    assert failures == [
        ("Archive", 5, "skipped", "too large"),
        ("INBOX", 2, "failed", "rejected: [LIMIT]"),
    ]


def test_folders(mbox: MailboxState) -> None:
    saved = mbox.save_folder(FolderRecord(None, "INBOX.Sent", "Sent", 11, None, 40))
    assert saved.id is not None
    assert mbox.folder("INBOX.Sent") == saved
    saved.dest_uidvalidity = 12
    saved.highestmodseq = 2**40
    saved.state = "done"
    saved.messages_total, saved.bytes_total = 39, 2**33
    assert mbox.save_folder(saved) == saved
    again = mbox.save_folder(FolderRecord(None, "INBOX.Sent", "Sent", 11, subscribed=False))
    assert again.id == saved.id
    inbox = mbox.save_folder(FolderRecord(None, "INBOX", "INBOX"))
    assert [f.source_name for f in mbox.folders()] == ["INBOX", "INBOX.Sent"]
    assert mbox.folders()[1] == again
    assert mbox.folder("Nope") is None
    inbox.id = 12345
    with pytest.raises(LookupError):
        mbox.save_folder(inbox)


def test_mailboxes_are_kept_apart(store: Store, mbox: MailboxState, inbox: int) -> None:
    same = store.mailbox(SRC, DST)
    other_job = store.mailbox(SRC, DST, job_name="second run")
    other_pair = store.mailbox(SRC, "imaps://bob@new.example.net")
    assert same.id == mbox.id
    assert len({mbox.id, other_job.id, other_pair.id}) == 3
    assert other_job.info().job_name == "second run"
    assert other_job.folders() == []
    with pytest.raises(LookupError):
        other_job.record_messages(inbox, [msg(1)])
    with pytest.raises(LookupError):
        list(other_job.iter_messages(inbox))
    assert store.mailbox_by_id(mbox.id).source == SRC
    with pytest.raises(LookupError):
        store.mailbox_by_id(987654)


def test_endpoint_urls_with_passwords_are_refused(store: Store) -> None:
    with pytest.raises(UsageError) as info:
        store.mailbox("imaps://alice:hunter2@mail.example.com", DST)
    assert "hunter2" not in str(info.value)


def test_mailbox_state_and_log(store: Store, mbox: MailboxState) -> None:
    assert mbox.info().state == "new"
    mbox.set_state("running")
    running = mbox.info()
    assert running.started_at is not None and running.started_at.tzinfo is UTC
    assert running.finished_at is None
    mbox.set_state("failed", error="connection lost")
    failed = mbox.info()
    assert (failed.state, failed.error) == ("failed", "connection lost")
    assert failed.finished_at is not None and failed.finished_at >= running.started_at
    mbox.set_state("running")
    assert mbox.info().finished_at is None and mbox.info().error is None
    with pytest.raises(ValueError):
        mbox.set_state("exploded")
    for i in range(5):
        mbox.log("info", "folder", f"line {i}")
    store.log("warning", "store", "not about any mailbox")
    assert [e.text for e in mbox.events()] == [f"line {i}" for i in range(5)]
    assert [e.text for e in mbox.events(limit=2)] == ["line 3", "line 4"]
    assert mbox.events()[0].mailbox_id == mbox.id


def test_two_stores_on_one_file_see_each_other(url: str, store: Store) -> None:
    with Store.open(url) as second:
        a = store.mailbox(SRC, DST)
        b = second.mailbox(SRC, DST)
        assert a.id == b.id
        folder_id = a.save_folder(FolderRecord(None, "INBOX", "INBOX")).id
        assert folder_id is not None
        a.record_messages(folder_id, [msg(1, "pending")])
        assert [r.state for r in b.iter_messages(folder_id)] == ["pending"]
        b.record_messages(folder_id, [msg(1, "done"), msg(2)])
        assert a.counts() == {"done": 2}


def test_writers_in_two_processes_wait_for_each_other(url: str, store: Store) -> None:
    # Two stores stand for two processes: each has its own connections and
    # only the database's locks between them.
    with Store.open(url) as second:
        mine = store.mailbox(SRC, DST)
        theirs = second.mailbox(SRC, DST)
        folders = [
            s.save_folder(FolderRecord(None, name, name)).id
            for s, name in ((mine, "A"), (theirs, "B"))
        ]
        errors: list[BaseException] = []

        def write(state: MailboxState, folder_id: int | None) -> None:
            assert folder_id is not None
            try:
                for batch in range(20):
                    state.record_messages(folder_id, [msg(batch * 50 + i) for i in range(50)])
                    state.log("info", "batch", str(batch))
            except BaseException as exc:
                errors.append(exc)

        threads = [
            threading.Thread(target=write, args=(mine, folders[0])),
            threading.Thread(target=write, args=(theirs, folders[1])),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert mine.counts() == {"done": 2000}
        assert len(mine.events()) == 40


def test_in_memory_database_is_shared_between_threads() -> None:
    with Store.open("sqlite://") as store:
        mbox = store.mailbox(SRC, DST)
        result: list[int] = []
        t = threading.Thread(target=lambda: result.append(store.mailbox(SRC, DST).id))
        t.start()
        t.join()
        assert result == [mbox.id]
