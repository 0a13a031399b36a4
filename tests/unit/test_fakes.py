"""The in-memory Journal is a ``Journal`` to mypy and answers as the job database does."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import mypy.api
import pytest

from mailmover.engine.ports import Journal
from mailmover.store import FolderRecord, MessageRecord, Store, StoreJournal
from support.fakes import MemoryJournal

ROOT = Path(__file__).resolve().parents[2]
WHEN = datetime(2024, 2, 29, 12, 0, tzinfo=UTC)

# What mypy checks below: assigning the fake where a Journal is wanted.
typed: Journal = MemoryJournal()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path}/state.db")
    yield s
    s.close()


def test_mypy_strict_accepts_memory_journal_as_a_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "ok.py").write_text(
        "from mailmover.engine.ports import Journal\n"
        "from support.fakes import MemoryJournal\n"
        "journal: Journal = MemoryJournal()\n"
    )
    # The same check refuses something that is not a Journal, so it can fail.
    (tmp_path / "bad.py").write_text(
        "from mailmover.engine.ports import Journal\n"
        "class NotAJournal:\n"
        "    async def folders(self) -> list[int]:\n"
        "        return []\n"
        "journal: Journal = NotAJournal()\n"
    )
    monkeypatch.setenv("MYPYPATH", str(ROOT / "tests"))
    options = ["--strict", "--python-version", "3.11", "--no-error-summary"]
    cache = ["--cache-dir", str(ROOT / ".mypy_cache")]
    out, err, _ = mypy.api.run(
        [*options, *cache, str(tmp_path / "ok.py"), str(tmp_path / "bad.py")]
    )
    errors = [line for line in (out + err).splitlines() if ": error:" in line]
    assert not [e for e in errors if "ok.py" in e or "fakes.py" in e], out + err
    assert any("bad.py:5: error: Incompatible types in assignment" in e for e in errors), out


def msg(
    uid: int,
    state: str = "done",
    uidvalidity: int = 7,
    *,
    flags: tuple[str, ...] = (),
    dest_uid: int | None = None,
    reason: str | None = None,
    internaldate: datetime = WHEN,
) -> MessageRecord:
    dest_uidvalidity = 9 if dest_uid is not None else None
    return MessageRecord(
        uidvalidity, uid, 100 + uid, internaldate, state, dest_uidvalidity, dest_uid,
        flags=flags, reason=reason,
    )  # fmt: skip


async def story(journal: Journal) -> list[object]:
    """The same calls on any Journal; everything it answers, in order."""
    seen: list[object] = []
    inbox = await journal.save_folder(FolderRecord(None, "INBOX", "INBOX"))
    work = await journal.save_folder(FolderRecord(None, "Work", "Work", source_uidvalidity=7))
    assert inbox.id is not None and work.id is not None
    seen += [await journal.folders(), await journal.folder("Work"), await journal.folder("Nope")]
    # Saving again by name updates the same folder; by id, too.
    again = await journal.save_folder(FolderRecord(None, "Work", "Work2", messages_total=3))
    seen.append(again.id == work.id)
    again.state = "done"
    seen.append(await journal.save_folder(again))
    seen.append(await journal.folders())

    await journal.record_messages(
        work.id,
        [
            msg(3, "done", flags=("\\Seen", "$Junk", "\\Seen"), dest_uid=30),
            msg(1, "failed", reason="too big"),
            msg(2, "pending"),
            msg(5, "done", uidvalidity=6),
            msg(4, "skipped"),
        ],
    )
    await journal.record_messages(work.id, [msg(2, "done", dest_uid=20)])
    await journal.record_messages(work.id, [])
    await journal.update_flags(work.id, [(7, 3, ("\\Flagged", "a")), (7, 99, ("\\Seen",))])
    await journal.update_flags(work.id, [])
    pages = journal.iter_messages
    seen.append([page async for page in pages(work.id)])
    seen.append([page async for page in pages(work.id, states=("done",))])
    seen.append([page async for page in pages(work.id, uidvalidity=7)])
    seen.append(
        [page async for page in pages(work.id, states=("failed", "skipped"), uidvalidity=7)]
    )
    seen.append([page async for page in pages(work.id, chunk=2)])
    seen.append([page async for page in pages(work.id, chunk=1, uidvalidity=7, states=("done",))])
    seen.append([page async for page in journal.iter_messages(inbox.id)])
    for bad in (
        journal.record_messages(work.id, [msg(8, "lost")]),
        journal.record_messages(work.id, [msg(8, internaldate=datetime(2024, 1, 1))]),
        journal.record_messages(12345, [msg(8)]),
        journal.save_folder(FolderRecord(12345, "X", "X")),
    ):
        with pytest.raises((ValueError, LookupError)) as info:
            await bad
        seen.append(type(info.value).__name__)
    return seen


async def test_memory_journal_answers_as_the_store_does(store: Store) -> None:
    real = await StoreJournal.open(store, "imap://a@src", "imap://a@dst")
    fake = MemoryJournal()
    expected = await story(real)
    assert await story(fake) == expected
    # The story is not empty: it saw records with their flags sorted and deduplicated.
    work_pages = expected[6]
    assert isinstance(work_pages, list)
    assert [r.flags for page in work_pages for r in page] == [(), (), (), ("\\Flagged", "a"), ()]


async def test_memory_journal_keeps_copies_not_the_callers_records() -> None:
    journal = MemoryJournal()
    rec = FolderRecord(None, "INBOX", "INBOX")
    saved = await journal.save_folder(rec)
    assert rec.id is None
    saved.state = "done"
    assert (await journal.folders())[0].state == "new"
    assert saved.id is not None
    message = msg(1)
    await journal.record_messages(saved.id, [message])
    message.state = "failed"
    assert journal.messages(saved.id)[0].state == "done"
    assert journal.calls == ["save_folder", "folders", "record_messages"]
