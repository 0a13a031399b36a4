"""Nothing doubled: a destination that already holds some of the mail, and a source whose
UIDVALIDITY changed, get each message exactly once; look-alikes are still copied.

Both sides are read back with the imaplib oracle (support.snapshot): per folder the
multiset of (SHA-256 of the bytes, flags, internal date), subscriptions included,
and the source must be as it was before each copy."""

from __future__ import annotations

import secrets
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest

from mailmover.config import Endpoint
from mailmover.engine.report import PassReport
from mailmover.imap.client import IMAPClient, Message
from support import snapshot
from support.passes import copy_pass

pytestmark = pytest.mark.asyncio
WHEN = datetime(2015, 1, 2, 3, 4, 5, tzinfo=UTC)


def messages() -> list[Message]:
    out = [Message(b"Subject: %d\r\nMessage-ID: <m%d@x>\r\n\r\nbody %d\r\n" % (i, i, i), ["\\Seen"],
                   WHEN) for i in range(30)]  # fmt: skip
    # Same Message-ID and size, different bodies: two messages.
    out.append(Message(b"Subject: twin\r\nMessage-ID: <twin@x>\r\n\r\nAAAA\r\n", [], WHEN))
    out.append(Message(b"Subject: twin\r\nMessage-ID: <twin@x>\r\n\r\nBBBB\r\n", [], WHEN))
    # An exact duplicate: two copies in the source, two in the destination.
    out += [Message(b"Subject: dup\r\n\r\nsame\r\n", ["\\Flagged"], WHEN)] * 2
    return out


def expected(**folders: list[Message]) -> snapshot.MailboxSnapshot:
    """An account holding ``folders`` (INBOX always; every folder subscribed as created)."""
    contents = {("INBOX",): Counter()} | {
        (name,): Counter(snapshot.message_key(m.data, m.flags, WHEN) for m in msgs)
        for name, msgs in folders.items()
    }
    return snapshot.MailboxSnapshot(contents, frozenset(contents) - {("INBOX",)})


class Account:
    def __init__(self, server: Any) -> None:
        self.server = server
        self.user, self.password = f"d{secrets.token_hex(4)}", secrets.token_urlsafe(8)
        server.add_user(self.user, self.password)
        self.endpoint = Endpoint(self.user, "127.0.0.1", server.port, "plain").with_secret(
            self.password
        )

    async def client(self) -> IMAPClient:
        client = await IMAPClient.connect("127.0.0.1", self.endpoint.port, security="plain")
        await client.login(self.user, self.password)
        return client

    async def append(self, folder: str, items: list[Message]) -> None:
        client = await self.client()
        if folder != "INBOX":
            await client.create(folder)
            await client.subscribe(folder)
        await client.multiappend(folder, items)
        await client.logout()

    def snapshot(self) -> snapshot.MailboxSnapshot:
        return snapshot.snapshot(self.server.host, self.server.port, self.user, self.password)


async def copy(src: Account, dst: Account, db: str) -> PassReport:
    before = src.snapshot()
    report = await copy_pass(src.endpoint, dst.endpoint, db)
    assert before.differences(src.snapshot()) == []  # the source is never changed
    return report


async def test_destination_already_holding_some(dovecot, tmp_path) -> None:
    src, dst = Account(dovecot), Account(dovecot)
    mail = messages()
    await src.append("Work", mail)
    # The destination got part of it before (another tool, or a lost state file),
    # including one copy of the duplicate and one of the twins.
    await dst.append("Work", [mail[0], mail[5], mail[30], mail[32]])
    report = await copy(src, dst, f"{tmp_path}/state.db")
    assert report.complete
    work = next(f for f in report.folders if f.source_name == "Work")
    assert (work.copied, work.already) == (len(mail) - 4, 4)
    assert expected(Work=mail).differences(dst.snapshot()) == []


async def test_source_uidvalidity_change_does_not_duplicate(dovecot, tmp_path) -> None:
    src, dst = Account(dovecot), Account(dovecot)
    mail = messages()
    await src.append("Work", mail)
    db = f"{tmp_path}/state.db"
    assert (await copy(src, dst, db)).complete
    # The source folder is rebuilt (a server migration, a restore): new UIDVALIDITY.
    client = await src.client()
    await client.delete("Work")
    await client.logout()
    await src.append("Work", [*mail, Message(b"Subject: new\r\n\r\nnew\r\n", [], WHEN)])
    report = await copy(src, dst, db)
    work = next(f for f in report.folders if f.source_name == "Work")
    assert (work.copied, work.already) == (1, len(mail))
    new = Message(b"Subject: new\r\n\r\nnew\r\n", [], WHEN)
    assert expected(Work=[*mail, new]).differences(dst.snapshot()) == []
