"""Gmail as a source and as a destination, through the Gmail-emulating proxy in front of Dovecot.

A message with two labels is one message in Gmail and two folder copies over
IMAP. These tests check the label policies of engine.gmail end to end: a copy
per label (``folders``), once with the other labels as keywords (``primary``),
Gmail to Gmail with labels kept exactly, and a daily cap that pauses the copy
until it resets instead of failing. Every destination is judged by the imaplib
oracle (bytes, flags and internal date of each message, folder by folder, so two
messages with one subject stay two), against an expectation written out for each
policy; the Gmail source must be unchanged by the copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from mailmover.config import Endpoint
from mailmover.devserver import DevServer
from mailmover.engine.events import Event, Retrying
from mailmover.engine.report import PassReport
from mailmover.errors import MailmoverError
from mailmover.imap.client import IMAPClient, Message
from mailmover.imap.proto.commands import Atom, Mailbox, ParenList
from support import snapshot
from support.emulator import Emulator
from support.passes import copy_pass

pytestmark = pytest.mark.asyncio

WHEN = datetime(2019, 8, 9, 10, 11, 12, tzinfo=UTC)
# (subject, labels the message carries in the Gmail source); two share a subject
MAIL = [
    ("inbox only", ["\\Inbox"]),
    ("inbox and work", ["\\Inbox", "Work"]),
    ("work and travel", ["Work", "Travel"]),
    ("archived", []),
    ("archived important", ["\\Important"]),
    ("abroad", ["Reisen/Übersee", "\\Inbox"]),
    ("inbox only", ["\\Inbox"]),
]


def raw(n: int, body: str = "hi") -> bytes:
    """Message ``n`` of MAIL."""
    return f"Subject: {MAIL[n][0]}\r\nMessage-ID: <m{n}@x>\r\n\r\n{body}\r\n".encode()


def expected(
    placed: dict[str, list[tuple[int, set[str]]]], body: str = "hi"
) -> snapshot.MailboxSnapshot:
    """Folder (``/`` between levels) → [(message number, flags)] as a snapshot."""
    return snapshot.MailboxSnapshot(
        {
            tuple(folder.split("/")): Counter(
                snapshot.message_key(raw(n, body), flags, WHEN) for n, flags in messages
            )
            for folder, messages in placed.items()
        }
    )


#: Gmail's own folders, empty in these accounts, arrive under their names without [Gmail]/
EMPTY: dict[str, list[tuple[int, set[str]]]] = {
    name: [] for name in ("Drafts", "Sent Mail", "Spam", "Trash")
}
SEEN = {"\\Seen"}
#: the folders policy: a copy per label, unlabelled mail in Archive, Important not copied
PER_LABEL = EMPTY | {
    "INBOX": [(0, SEEN), (1, SEEN), (5, SEEN), (6, SEEN)],
    "Work": [(1, SEEN), (2, SEEN)],
    "Travel": [(2, SEEN)],
    "Reisen/Übersee": [(5, SEEN)],
    "Archive": [(3, SEEN), (4, SEEN)],
}


@dataclass
class Side:
    port: int
    user: str
    password: str
    #: the port of the Dovecot behind the emulator, for reading the store untouched
    direct: int | None = None

    def endpoint(self) -> Endpoint:
        return Endpoint(self.user, "127.0.0.1", self.port, "plain").with_secret(self.password)

    async def client(self) -> IMAPClient:
        client = await IMAPClient.connect("127.0.0.1", self.port, security="plain")
        await client.login(self.user, self.password)
        return client


@pytest.fixture(scope="module")
def fs_server(dovecot_factory: Any) -> DevServer:
    server: DevServer = dovecot_factory(layout="fs")
    return server


def _account(server: DevServer) -> tuple[str, str]:
    name, password = f"g{secrets.token_hex(4)}", secrets.token_urlsafe(10)
    server.add_user(name, password)
    return name, password


@pytest.fixture
async def gmail(fs_server: DevServer) -> AsyncIterator[Emulator]:
    async with Emulator(fs_server.host, fs_server.port, profile="gmail") as emulator:
        yield emulator


async def fill_gmail(side: Side, body: str = "hi") -> None:
    """Put MAIL into a Gmail account: appended to All Mail, then labelled."""
    client = await side.client()
    for n, (_, labels) in enumerate(MAIL):
        message = Message(raw(n, body), ["\\Seen"], WHEN)
        appended = await client.append("[Gmail]/All Mail", message)
        if labels:
            await client.select("[Gmail]/All Mail")
            names = [Atom(lab) if lab.startswith("\\") else Mailbox(lab) for lab in labels]
            args = [Atom(str(appended.uid)), Atom("+X-GM-LABELS"), ParenList(names)]
            await client.run("UID STORE", args)
    await client.logout()


async def read(side: Side, *, direct: bool = False) -> snapshot.MailboxSnapshot:
    """The oracle's reading of an account, through its emulator unless ``direct`` (in a
    thread: an emulator may run in this loop)."""
    port = side.direct if direct and side.direct else side.port
    return await asyncio.to_thread(snapshot.snapshot, "127.0.0.1", port, side.user, side.password)


async def copy(
    src: Side, dst: Side, tmp_path: Any, **options: Any
) -> tuple[PassReport, list[Event]]:
    before = await read(src, direct=True)
    events: list[Event] = []
    db = f"{tmp_path}/state-{secrets.token_hex(3)}.db"
    report = await copy_pass(src.endpoint(), dst.endpoint(), db, events, **options)
    assert before.differences(await read(src, direct=True)) == []  # the source is never changed
    return report, events


async def test_gmail_source_folders_policy(gmail, fs_server, dovecot, tmp_path) -> None:  # type: ignore[no-untyped-def]
    src = Side(gmail.port, *_account(fs_server), fs_server.port)
    dst = Side(dovecot.port, *_account(dovecot))
    await fill_gmail(src)
    report, _ = await copy(src, dst, tmp_path)
    assert report.complete, report
    # Only unlabelled mail comes from All Mail; Important is a view and is not copied.
    assert expected(PER_LABEL).differences(await read(dst)) == []


async def test_gmail_source_primary_policy(gmail, fs_server, dovecot, tmp_path) -> None:  # type: ignore[no-untyped-def]
    src = Side(gmail.port, *_account(fs_server), fs_server.port)
    dst = Side(dovecot.port, *_account(dovecot))
    await fill_gmail(src)
    report, _ = await copy(src, dst, tmp_path, gmail_labels="primary")
    assert report.complete, report
    # Each message once, in its first label's folder (user labels by name: Travel
    # before Work), the other labels as keywords (a non-ASCII one in modified UTF-7).
    want = EMPTY | {
        "INBOX": [(0, SEEN), (1, SEEN | {"Work"}), (5, SEEN | {"Reisen/&ANw-bersee"}), (6, SEEN)],
        "Work": [],
        "Travel": [(2, SEEN | {"Work"})],
        "Reisen/Übersee": [],
        "Archive": [(3, SEEN), (4, SEEN | {"$Important"})],
    }
    assert expected(want).differences(await read(dst)) == []


async def test_gmail_to_gmail_keeps_labels(fs_server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    async with (
        Emulator(fs_server.host, fs_server.port, profile="gmail") as source,
        Emulator(fs_server.host, fs_server.port, profile="gmail") as dest,
    ):
        src = Side(source.port, *_account(fs_server), fs_server.port)
        dst = Side(dest.port, *_account(fs_server))
        await fill_gmail(src)
        report, _ = await copy(src, dst, tmp_path)
        assert report.complete, report
        # Every label folder (All Mail and Important too) holds the same messages.
        differences = (await read(src)).differences(await read(dst))
        assert differences == [], "\n".join(differences)
        assert await labels_by_digest(dst) == await labels_by_digest(src)


async def test_gmail_to_gmail_brings_label_changes_on_a_rerun(fs_server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Labels added and removed on the source after a copy arrive with the next pass."""
    async with (
        Emulator(fs_server.host, fs_server.port, profile="gmail") as source,
        Emulator(fs_server.host, fs_server.port, profile="gmail") as dest,
    ):
        src = Side(source.port, *_account(fs_server), fs_server.port)
        dst = Side(dest.port, *_account(fs_server))
        await fill_gmail(src)
        db = f"{tmp_path}/state.db"
        first = await copy_pass(src.endpoint(), dst.endpoint(), db)
        assert first.complete, first
        client = await src.client()
        await client.select("[Gmail]/All Mail")
        for uid, op, labels in (
            (2, "-X-GM-LABELS", ["Work"]), (2, "+X-GM-LABELS", ["Travel"]),  # inbox and work
            (1, "+X-GM-LABELS", ["Work"]),  # inbox only
            (3, "-X-GM-LABELS", ["Work"]),  # work and travel
        ):  # fmt: skip
            names = ParenList([Mailbox(label) for label in labels])
            await client.run("UID STORE", [Atom(str(uid)), Atom(op), names])
        await client.logout()
        assert await labels_by_digest(dst) != await labels_by_digest(src)
        second = await copy_pass(src.endpoint(), dst.endpoint(), db)
        assert second.complete, second
        assert second.copied == 0
        assert await labels_by_digest(dst) == await labels_by_digest(src)


async def labels_by_digest(side: Side) -> Counter[tuple[str, frozenset[str]]]:
    """(SHA-256 of the bytes, X-GM-LABELS) of every message in All Mail."""
    client = await side.client()
    await client.examine("[Gmail]/All Mail")
    fetched = await client.uid_fetch(range(1, 2**32), "(UID X-GM-LABELS BODY.PEEK[])")
    await client.logout()
    return Counter(
        (hashlib.sha256(f.body[""]).hexdigest(), frozenset(f.gm_labels or ())) for f in fetched
    )


async def test_daily_cap_pauses_then_resumes(fs_server, dovecot, tmp_path) -> None:  # type: ignore[no-untyped-def]
    async with Emulator(
        fs_server.host, fs_server.port, profile="gmail", download_per_day=30_000
    ) as capped:
        src = Side(capped.port, *_account(fs_server), fs_server.port)
        dst = Side(dovecot.port, *_account(dovecot))
        await fill_gmail(src, body="x" * 20_000)  # the copy needs several "days"
        capped.reset_day()

        async def new_days() -> None:
            while True:  # a "day" of 1.2 s: the cap resets while the copy is paused
                await asyncio.sleep(1.2)
                capped.reset_day()

        resetter = asyncio.create_task(new_days())
        try:
            report, events = await copy(
                src, dst, tmp_path, retry_for=5, cap_probe=0.5, connections=1
            )
        finally:
            resetter.cancel()
        paused = [e for e in events if isinstance(e, Retrying) and "daily cap" in e.reason]
        assert paused, (report.outcome, report.reason, [f.error for f in report.folders])
        assert report.complete, [f.error for f in report.folders]
        want = expected(PER_LABEL, body="x" * 20_000)
        assert want.differences(await read(dst)) == []


async def test_starting_while_capped_waits_for_the_reset(  # type: ignore[no-untyped-def]
    fs_server, dovecot, tmp_path
) -> None:
    """A mailbox already over its daily cap is not a login failure: the run waits."""
    async with Emulator(
        fs_server.host, fs_server.port, profile="gmail", download_per_day=12_000
    ) as capped:
        src = Side(capped.port, *_account(fs_server), fs_server.port)
        dst = Side(dovecot.port, *_account(dovecot))
        await fill_gmail(src, body="y" * 3000)  # reading it all passes the cap
        capped.reset_day()
        client = await src.client()  # use up the day's download allowance
        await client.examine("[Gmail]/All Mail")
        with contextlib.suppress(MailmoverError):
            await client.uid_fetch(range(1, 2**32), "(UID BODY.PEEK[])")
            await client.noop()
        await client.close()

        async def days() -> None:
            while True:  # a "day" of 1 s
                await asyncio.sleep(1.0)
                capped.reset_day()

        resetter = asyncio.create_task(days())
        try:
            report, events = await copy(
                src, dst, tmp_path, source_preset="gmail",
                retry_for=5, cap_probe=0.4,
            )  # fmt: skip
        finally:
            resetter.cancel()
    waited = [e for e in events if isinstance(e, Retrying) and "daily cap" in e.reason]
    assert waited and waited[0].folder == "(connecting)"
    assert report.complete
    assert expected(PER_LABEL, body="y" * 3000).differences(await read(dst)) == []
