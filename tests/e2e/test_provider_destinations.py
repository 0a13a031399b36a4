"""Destinations that behave as Microsoft 365, a Scalix-like groupware and Yahoo do.

The provider-emulating proxy stands in front of a real Dovecot; the copy must
still deliver every message, with the flags the destination can keep, into the
folders the destination calls by its own names.
"""

from __future__ import annotations

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
            raw = f"Subject: {subject}\r\nMessage-ID: <{subject.replace(' ', '.')}@p>\r\n\r\nx\r\n"
            await client.append(folder, Message(raw.encode(), flags, WHEN))
    await client.logout()


async def contents(port: int, user: str, password: str) -> dict[str, Counter[Any]]:
    client = await IMAPClient.connect("127.0.0.1", port, security="plain")
    await client.login(user, password)
    out: dict[str, Counter[Any]] = {}
    for mailbox in await client.list_mailboxes():
        if {a.lower() for a in mailbox.attributes} & {"\\noselect", "\\nonexistent"}:
            continue
        selected = await client.examine(mailbox.name)
        found: Counter[Any] = Counter()
        if selected.exists:
            for f in await client.uid_fetch(range(1, 2**32), "(UID FLAGS BODY.PEEK[])"):
                subject = f.body[""].split(b"\r\n", 1)[0].decode().removeprefix("Subject: ")
                found[(subject, frozenset(f.flags or ()) - {"\\Recent"})] += 1
        out[mailbox.name] = found
    await client.logout()
    return out


async def run(
    src: tuple[int, str, str],
    dst: tuple[int, str, str],
    tmp_path: Any,
    db: Any = None,
    **options: Any,
) -> tuple[PassReport, list[Event]]:
    def endpoint(side: tuple[int, str, str]) -> Endpoint:
        return Endpoint(side[1], "127.0.0.1", side[0], "plain").with_secret(side[2])

    events: list[Event] = []
    db = db or f"{tmp_path}/state-{secrets.token_hex(3)}.db"
    report = await copy_pass(endpoint(src), endpoint(dst), str(db), events, **options)
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
    got = await contents(fs_server.port, dst[1], dst[2])  # behind the emulator: no throttling
    assert sum(got["Sent Items"].values()) == 2 and sum(got["Deleted Items"].values()) == 1
    assert "Sent" not in got and "Trash" not in got
    assert sum(got["Projects"].values()) == 12
    assert ("hello", frozenset({"\\Seen", "$Work"})) in got["INBOX"]


async def test_groupware_refusing_keywords_loses_no_message(  # type: ignore[no-untyped-def]
    dovecot, fs_server, tmp_path
) -> None:
    src = (dovecot.port, *account(dovecot))
    await fill(*src)
    async with Emulator(fs_server.host, fs_server.port, profile="groupware") as groupware:
        dst = (groupware.port, *account(fs_server))
        report, _ = await run(src, dst, tmp_path, connections=1)
        got = await contents(*dst)
    assert report.complete, [f.failures for f in report.folders]
    assert sum(f.copied for f in report.folders) == sum(len(m) for m in SOURCE.values())
    assert sum(f.flags_dropped for f in report.folders) == 2  # $Work and Later
    assert got["INBOX"][("hello", frozenset({"\\Seen"}))] == 1
    assert got["Sent"][("sent two", frozenset({"\\Seen", "\\Answered"}))] == 1


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
        got = await contents(*dst)
    assert report.complete, [f.failures for f in report.folders]
    assert got["INBOX"][("gone", frozenset({"\\Seen"}))] == 1  # arrived, without \\Deleted
    assert sum(f.flags_dropped for f in report.folders) == 1


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
    got = await contents(*dst)
    answered = [key for key in got["Projects"] if "\\Answered" in key[1]]
    assert len(answered) == 3
