"""Gmail as a source and as a destination, through the Gmail-emulating proxy in front of Dovecot.

A message with two labels is one message in Gmail and two folder copies over
IMAP. These tests check the label policies of engine.gmail end to end: a copy
per label (``folders``), once with the other labels as keywords (``primary``),
Gmail to Gmail with labels kept exactly, and a daily cap that pauses the copy
until it resets instead of failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from mailmover.config import Endpoint
from mailmover.devserver import DevServer
from mailmover.engine.events import Event, Retrying
from mailmover.engine.report import PassReport
from mailmover.errors import MailmoverError
from mailmover.imap.client import IMAPClient, Message
from mailmover.imap.proto.commands import Atom, Mailbox, ParenList
from support.emulator import Emulator
from support.passes import copy_pass

pytestmark = pytest.mark.asyncio

# subject → labels the message carries in the Gmail source
MAIL = {
    "inbox only": ["\\Inbox"],
    "inbox and work": ["\\Inbox", "Work"],
    "work and travel": ["Work", "Travel"],
    "archived": [],
    "archived important": ["\\Important"],
    "abroad": ["Reisen/Übersee", "\\Inbox"],
}


@dataclass
class Side:
    port: int
    user: str
    password: str

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
    for subject, labels in MAIL.items():
        raw = f"Subject: {subject}\r\nMessage-ID: <{subject.replace(' ', '.')}@x>\r\n\r\n{body}\r\n"
        appended = await client.append("[Gmail]/All Mail", Message(raw.encode(), ["\\Seen"]))
        if labels:
            await client.select("[Gmail]/All Mail")
            names = [Atom(lab) if lab.startswith("\\") else Mailbox(lab) for lab in labels]
            args = [Atom(str(appended.uid)), Atom("+X-GM-LABELS"), ParenList(names)]
            await client.run("UID STORE", args)
    await client.logout()


async def contents(side: Side) -> dict[str, Counter[tuple[str, frozenset[str]]]]:
    """Folder → Counter of (subject, flags) on a plain Dovecot account."""
    client = await side.client()
    out: dict[str, Counter[tuple[str, frozenset[str]]]] = {}
    for mailbox in await client.list_mailboxes():
        if {a.lower() for a in mailbox.attributes} & {"\\noselect", "\\nonexistent"}:
            continue
        selected = await client.examine(mailbox.name)
        found: Counter[tuple[str, frozenset[str]]] = Counter()
        if selected.exists:
            for f in await client.uid_fetch(range(1, 2**32), "(UID FLAGS BODY.PEEK[])"):
                subject = f.body[""].split(b"\r\n", 1)[0].decode().removeprefix("Subject: ")
                found[(subject, frozenset(f.flags or ()) - {"\\Recent"})] += 1
        out[mailbox.name] = found
    await client.logout()
    return out


async def copy(
    src: Side, dst: Side, tmp_path: Any, **options: Any
) -> tuple[PassReport, list[Event]]:
    events: list[Event] = []
    db = f"{tmp_path}/state-{secrets.token_hex(3)}.db"
    report = await copy_pass(src.endpoint(), dst.endpoint(), db, events, **options)
    return report, events


async def test_gmail_source_folders_policy(gmail, fs_server, dovecot, tmp_path) -> None:  # type: ignore[no-untyped-def]
    src = Side(gmail.port, *_account(fs_server))
    dst = Side(dovecot.port, *_account(dovecot))
    await fill_gmail(src)
    report, _ = await copy(src, dst, tmp_path)
    assert report.complete, report
    got = await contents(dst)
    seen = frozenset({"\\Seen"})
    assert got["INBOX"] == Counter(
        {("inbox only", seen): 1, ("inbox and work", seen): 1, ("abroad", seen): 1}
    )
    assert got["Reisen.Übersee"] == Counter({("abroad", seen): 1})
    assert got["Work"] == Counter({("inbox and work", seen): 1, ("work and travel", seen): 1})
    assert got["Travel"] == Counter({("work and travel", seen): 1})
    # Only unlabelled mail comes from All Mail; Important is a view and is not copied.
    assert got["Archive"] == Counter({("archived", seen): 1, ("archived important", seen): 1})
    assert not any("Important" in name or "All Mail" in name for name in got)


async def test_gmail_source_primary_policy(gmail, fs_server, dovecot, tmp_path) -> None:  # type: ignore[no-untyped-def]
    src = Side(gmail.port, *_account(fs_server))
    dst = Side(dovecot.port, *_account(dovecot))
    await fill_gmail(src)
    report, _ = await copy(src, dst, tmp_path, gmail_labels="primary")
    assert report.complete, report
    got = await contents(dst)
    every = Counter()
    for folder in got.values():
        every.update(subject for subject, _ in folder)
    assert every == Counter({subject: 1 for subject in MAIL})  # each message once
    assert got["INBOX"][("inbox and work", frozenset({"\\Seen", "Work"}))] == 1
    # User labels rank by name: Travel before Work.
    assert got["Travel"] == Counter({("work and travel", frozenset({"\\Seen", "Work"})): 1})
    assert got["Work"] == Counter()
    assert got["Archive"][("archived important", frozenset({"\\Seen", "$Important"}))] == 1


async def test_gmail_to_gmail_keeps_labels(fs_server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    async with (
        Emulator(fs_server.host, fs_server.port, profile="gmail") as source,
        Emulator(fs_server.host, fs_server.port, profile="gmail") as dest,
    ):
        src = Side(source.port, *_account(fs_server))
        dst = Side(dest.port, *_account(fs_server))
        await fill_gmail(src)
        report, _ = await copy(src, dst, tmp_path)
        assert report.complete, report
        assert await labels_by_subject(dst) == await labels_by_subject(src)


async def labels_by_subject(side: Side) -> dict[str, frozenset[str]]:
    client = await side.client()
    await client.examine("[Gmail]/All Mail")
    fetched = await client.uid_fetch(range(1, 2**32), "(UID X-GM-LABELS BODY.PEEK[HEADER])")
    await client.logout()
    out = {}
    for f in fetched:
        subject = next(iter(f.body.values())).split(b"\r\n", 1)[0].decode()[len("Subject: ") :]
        out[subject] = frozenset(f.gm_labels or ())
    return out


async def test_daily_cap_pauses_then_resumes(fs_server, dovecot, tmp_path) -> None:  # type: ignore[no-untyped-def]
    async with Emulator(
        fs_server.host, fs_server.port, profile="gmail", download_per_day=30_000
    ) as capped:
        src = Side(capped.port, *_account(fs_server))
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
        got = await contents(dst)
        assert sum(sum(c.values()) for c in got.values()) == 9  # one copy per label


async def test_starting_while_capped_waits_for_the_reset(  # type: ignore[no-untyped-def]
    fs_server, dovecot, tmp_path
) -> None:
    """A mailbox already over its daily cap is not a login failure: the run waits."""
    async with Emulator(
        fs_server.host, fs_server.port, profile="gmail", download_per_day=12_000
    ) as capped:
        src = Side(capped.port, *_account(fs_server))
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
