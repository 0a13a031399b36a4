"""Destinations that behave as Microsoft 365, a Scalix-like groupware and Yahoo do.

The provider-emulating proxy stands in front of a real Dovecot; the copy must
still deliver every message, with the flags the destination can keep, into the
folders the destination calls by its own names. Each test states the
destination it expects, message by message (bytes, flags, internal date), with
the provider's deviations written out (a flag it drops, a folder it renames),
and compares it with the imaplib oracle's reading of the Dovecot behind the
emulator; the source must be as it was before the copy.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest

from mailmover.config import Endpoint
from mailmover.devserver import DevServer
from mailmover.engine.events import Event, Retrying
from mailmover.engine.report import PassReport
from mailmover.imap.client import IMAPClient, Message
from support import snapshot
from support.emulator import Emulator
from support.passes import copy_pass

pytestmark = pytest.mark.asyncio

WHEN = datetime(2012, 5, 6, 7, 8, 9, tzinfo=UTC)
# folder → [(subject, flags)]
SOURCE = {
    "INBOX": [("hello", ["\\Seen", "$Work"]), ("gone", ["\\Deleted", "\\Seen"])],
    "Sent": [("sent one", ["\\Seen"]), ("sent two", ["\\Seen", "\\Answered", "Later"])],
    "Trash": [("binned", ["\\Seen"])],
    "Projects": [(f"project {i}", ["\\Flagged"] if i % 2 else []) for i in range(12)],
}


def raw(subject: str) -> bytes:
    message_id = subject.replace(" ", ".")
    return f"Subject: {subject}\r\nMessage-ID: <{message_id}@p>\r\n\r\nx\r\n".encode()


def expected(
    renamed: dict[str, str] | None = None,
    dropped: frozenset[str] = frozenset(),
    empty: tuple[str, ...] = (),
) -> snapshot.MailboxSnapshot:
    """SOURCE as the destination should hold it: folders ``renamed``, flags ``dropped``,
    and the ``empty`` folders the provider makes itself."""
    folders = {
        ((renamed or {}).get(folder, folder),): Counter(
            snapshot.message_key(raw(subject), set(flags) - dropped, WHEN)
            for subject, flags in messages
        )
        for folder, messages in SOURCE.items()
    }
    return snapshot.MailboxSnapshot({(name,): Counter() for name in empty} | folders)


#: SOURCE in Microsoft 365: Sent and Trash under its names (found by SPECIAL-USE), every
#: flag kept, and the empty folders it makes at login
MICROSOFT = expected(
    {"Sent": "Sent Items", "Trash": "Deleted Items"}, empty=("Drafts", "Junk Email", "Archive")
)


def problems(
    want: snapshot.MailboxSnapshot, server: DevServer, user: str, password: str
) -> list[str]:
    """How the account on ``server`` (read directly, not through an emulator) differs."""
    got = snapshot.snapshot(server.host, server.port, user, password)
    return want.differences(got, 50)


def account(server: DevServer) -> tuple[str, str]:
    name, password = f"p{secrets.token_hex(4)}", secrets.token_urlsafe(10)
    server.add_user(name, password)
    return name, password


async def fill(port: int, user: str, password: str) -> None:
    client = await IMAPClient.connect("127.0.0.1", port, security="plain")
    await client.login(user, password)
    for folder, messages in SOURCE.items():
        if folder != "INBOX":
            await client.create(folder)
        for subject, flags in messages:
            await client.append(folder, Message(raw(subject), flags, WHEN))
    await client.logout()


async def run(
    src: tuple[int, str, str],
    dst: tuple[int, str, str],
    tmp_path: Any,
    db: Any = None,
    **options: Any,
) -> tuple[PassReport, list[Event]]:
    def endpoint(side: tuple[int, str, str]) -> Endpoint:
        return Endpoint(side[1], "127.0.0.1", side[0], "plain").with_secret(side[2])

    # In a thread: the source may be an emulator running in this event loop.
    before = await asyncio.to_thread(snapshot.snapshot, "127.0.0.1", *src)
    events: list[Event] = []
    db = db or f"{tmp_path}/state-{secrets.token_hex(3)}.db"
    report = await copy_pass(endpoint(src), endpoint(dst), str(db), events, **options)
    after = await asyncio.to_thread(snapshot.snapshot, "127.0.0.1", *src)
    assert before.differences(after) == []
    return report, events


@pytest.fixture(scope="module")
def fs_server(dovecot_factory: Any) -> DevServer:
    server: DevServer = dovecot_factory(layout="fs", special_use=False)
    return server


async def test_microsoft_destination_throttles_and_names_folders(  # type: ignore[no-untyped-def]
    dovecot, fs_server, tmp_path
) -> None:
    src = (dovecot.port, *account(dovecot))
    await fill(*src)
    async with Emulator(
        fs_server.host, fs_server.port, profile="microsoft", throttle_every=15,
        throttle_backoff_ms=200,
    ) as microsoft:  # fmt: skip
        dst = (microsoft.port, *account(fs_server))
        report, events = await run(src, dst, tmp_path, dest_preset="microsoft365", retry_for=30)
        assert report.complete, [(f.source_name, f.error) for f in report.folders]
        throttled = [e for e in events if isinstance(e, Retrying)]
        assert throttled and all(abs(e.delay - 0.2) < 1e-6 for e in throttled)
    # Sent and Trash under Microsoft's names; every flag kept.
    want = MICROSOFT
    assert problems(want, fs_server, dst[1], dst[2]) == []


async def test_groupware_refusing_keywords_loses_no_message(  # type: ignore[no-untyped-def]
    dovecot, fs_server, tmp_path
) -> None:
    src = (dovecot.port, *account(dovecot))
    await fill(*src)
    async with Emulator(fs_server.host, fs_server.port, profile="groupware") as groupware:
        dst = (groupware.port, *account(fs_server))
        report, _ = await run(src, dst, tmp_path, connections=1)
    assert report.complete, [f.failures for f in report.folders]
    assert sum(f.copied for f in report.folders) == sum(len(m) for m in SOURCE.values())
    assert sum(f.flags_dropped for f in report.folders) == 2  # $Work and Later
    # Every message, without the two keywords the groupware refuses.
    want = expected(dropped=frozenset({"$Work", "Later"}))
    assert problems(want, fs_server, dst[1], dst[2]) == []


@pytest.mark.parametrize("preset", ["yahoo", "generic"])
async def test_yahoo_refusing_deleted_keeps_the_message(  # type: ignore[no-untyped-def]
    dovecot, fs_server, tmp_path, preset
) -> None:
    """With the preset \\Deleted is dropped up front; without it the refusal is learnt.
    Either way the message arrives."""
    src = (dovecot.port, *account(dovecot))
    await fill(*src)
    async with Emulator(fs_server.host, fs_server.port, profile="yahoo") as yahoo:
        dst = (yahoo.port, *account(fs_server))
        report, _ = await run(src, dst, tmp_path, dest_preset=preset)
    assert report.complete, [f.failures for f in report.folders]
    assert sum(f.flags_dropped for f in report.folders) == 1
    # "gone" arrived, without \\Deleted; everything else as it was.
    want = expected(dropped=frozenset({"\\Deleted"}), empty=("Draft", "Bulk Mail", "Archive"))
    assert problems(want, fs_server, dst[1], dst[2]) == []


async def test_counts_survive_retries(dovecot, fs_server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Messages copied before a throttling reply still count as copied by this run."""
    src = (dovecot.port, *account(dovecot))
    await fill(*src)
    async with Emulator(
        fs_server.host, fs_server.port, profile="microsoft", throttle_every=7,
        throttle_backoff_ms=50,
    ) as microsoft:  # fmt: skip
        dst = (microsoft.port, *account(fs_server))
        report, events = await run(src, dst, tmp_path, retry_for=30)
    assert any(isinstance(e, Retrying) for e in events)
    assert report.complete
    total = sum(len(m) for m in SOURCE.values())
    assert sum(f.copied for f in report.folders) == total
    assert sum(f.already for f in report.folders) == 0
    assert problems(MICROSOFT, fs_server, dst[1], dst[2]) == []


async def test_flag_changes_from_a_source_without_condstore(  # type: ignore[no-untyped-def]
    dovecot, fs_server, tmp_path
) -> None:
    """Exchange has no CONDSTORE: a rerun reads every flag and brings the changes across."""
    user, password = account(fs_server)
    await fill(fs_server.port, user, password)
    dst = (dovecot.port, *account(dovecot))
    db = tmp_path / "state.db"
    async with Emulator(fs_server.host, fs_server.port, profile="microsoft") as microsoft:
        src = (microsoft.port, user, password)
        first, _ = await run(src, dst, tmp_path, db)
        assert first.complete
        client = await IMAPClient.connect("127.0.0.1", fs_server.port, security="plain")
        await client.login(user, password)
        await client.select("Projects")
        uids = await client.uid_search()
        await client.uid_store_nowait(uids[:3], "+FLAGS.SILENT", ["\\Answered"])
        await client.logout()
        second, _ = await run(src, dst, tmp_path, db)
    assert second.complete
    assert sum(f.flags_updated for f in second.folders) == 3
    assert sum(f.copied for f in second.folders) == 0
    # The destination holds the source as it is now: three more \\Answered in Projects.
    now = snapshot.snapshot(fs_server.host, fs_server.port, user, password)
    answered = [k for k in now.folders[("Projects",)].elements() if "\\Answered" in k[1]]
    assert len(answered) == 3
    assert now.differences(snapshot.snapshot(dovecot.host, dovecot.port, dst[1], dst[2])) == []


async def test_a_flag_refused_on_a_rerun_costs_that_flag(  # type: ignore[no-untyped-def]
    dovecot, fs_server, tmp_path
) -> None:
    """A groupware that refuses keywords in STORE: on a rerun the new mail is copied and
    every flag change arrives except the refused keyword; the folder does not fail."""
    src = (dovecot.port, *account(dovecot))
    await fill(*src)
    db = tmp_path / "state.db"
    async with Emulator(fs_server.host, fs_server.port, profile="groupware") as groupware:
        dst = (groupware.port, *account(fs_server))
        first, _ = await run(src, dst, tmp_path, db)
        assert first.complete, [f.error for f in first.folders]
        client = await IMAPClient.connect("127.0.0.1", dovecot.port, security="plain")
        await client.login(src[1], src[2])
        await client.select("Projects")
        uids = await client.uid_search()
        await client.uid_store_nowait(uids[:3], "+FLAGS.SILENT", ["\\Answered", "$Urgent"])
        await client.append("Projects", Message(raw("project new"), ["\\Seen"], WHEN))
        await client.logout()
        second, _ = await run(src, dst, tmp_path, db)
    assert second.complete, [(f.source_name, f.error) for f in second.folders]
    (projects,) = [f for f in second.folders if f.source_name == "Projects"]
    assert projects.copied == 1 and projects.flags_updated == 3
    assert projects.flags_dropped >= 3  # $Urgent on each of the three
    got = snapshot.snapshot(fs_server.host, fs_server.port, dst[1], dst[2])
    keys = list(got.folders[("Projects",)].elements())
    assert len(keys) == 13
    assert sum("\\Answered" in flags for _, flags, _ in keys) == 3
    assert not any("$Urgent" in flags for _, flags, _ in keys)
