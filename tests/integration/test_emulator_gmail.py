"""The emulator's Gmail profile, through imaplib and mailmover's client."""

from __future__ import annotations

import contextlib
import imaplib
import re
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from mailmover.devserver import Account, DevServer
from mailmover.errors import MessageRefused
from mailmover.imap.client import IMAPClient, Message, append_result
from mailmover.imap.proto.commands import Atom, ParenList
from mailmover.imap.proto.sequences import UidRange
from support.emulator import Emulator, run_emulator
from support.emulator.quota import Bandwidth

MESSAGE = b"From: a@example.com\r\nSubject: labels\r\nMessage-ID: <l1@example.com>\r\n\r\nhi\r\n"
_LIST = re.compile(rb'\((?P<attrs>[^)]*)\) "/" (?P<name>"[^"]*"|\S+)')


@pytest.fixture(scope="module")
def server(dovecot_factory: Any) -> DevServer:
    """A Dovecot with Gmail's hierarchy separator."""
    server: DevServer = dovecot_factory(layout="fs")
    return server


def user(server: DevServer) -> Account:
    return server.add_user(f"gm-{secrets.token_hex(4)}", secrets.token_urlsafe(12))


@contextlib.contextmanager
def imap(port: int, account: Account | None = None) -> Iterator[imaplib.IMAP4]:
    client = imaplib.IMAP4("127.0.0.1", port)
    try:
        if account is not None:
            client.login(*account)
        yield client
    finally:
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            client.shutdown()


def ok(result: tuple[str, list[Any]]) -> list[Any]:
    typ, data = result
    assert typ == "OK", data
    return data


def folders(client: imaplib.IMAP4) -> dict[str, set[str]]:
    """Folder name → its LIST attributes."""
    out = {}
    for line in ok(client.list()):
        match = _LIST.match(line)
        assert match, line
        out[match["name"].decode().strip('"')] = set(match["attrs"].decode().split())
    return out


def gm(client: imaplib.IMAP4, numbers: str = "1:*") -> list[tuple[int, str, int, list[str]]]:
    """(UID, labels as sent, X-GM-MSGID, labels) of the selected folder's messages."""
    out = []
    for line in ok(client.uid("FETCH", numbers, "(UID X-GM-MSGID X-GM-LABELS)")):
        assert isinstance(line, bytes), line
        uid = int(re.search(rb"UID ([0-9]+)", line)[1])  # type: ignore[index]
        msgid = int(re.search(rb"X-GM-MSGID ([0-9]+)", line)[1])  # type: ignore[index]
        raw = re.search(rb"X-GM-LABELS \(([^)]*)\)", line)[1].decode()  # type: ignore[index]
        labels = [m.strip('"') for m in re.findall(r'"[^"]*"|\S+', raw)]
        out.append((uid, raw, msgid, labels))
    return out


def test_capabilities_greeting_and_folders(server: DevServer) -> None:
    account = user(server)
    with run_emulator(server.host, server.port, profile="gmail") as em, imap(em.port) as client:
        assert b"Gimap ready" in client.welcome and b"X-GM-EXT-1" in client.welcome
        assert "STARTTLS" not in client.capabilities
        ok(client.login(*account))
        caps = set(ok(client.capability())[-1].decode().split())
        assert {"X-GM-EXT-1", "APPENDLIMIT=35651584", "LITERAL-", "COMPRESS=DEFLATE"} <= caps
        assert not caps & {"MULTIAPPEND", "LITERAL+", "CATENATE", "STARTTLS", "QRESYNC"}
        listed = folders(client)
        roles = {
            name: attrs - {"\\HasNoChildren", "\\HasChildren"} for name, attrs in listed.items()
        }
        assert roles == {
            "INBOX": set(),
            "[Gmail]": {"\\Noselect"},
            "[Gmail]/All Mail": {"\\All"},
            "[Gmail]/Drafts": {"\\Drafts"},
            "[Gmail]/Important": {"\\Important"},
            "[Gmail]/Sent Mail": {"\\Sent"},
            "[Gmail]/Spam": {"\\Junk"},
            "[Gmail]/Starred": {"\\Flagged"},
            "[Gmail]/Trash": {"\\Trash"},
        }
        ok(client._simple_command("LIST", "(SPECIAL-USE)", '""', '"*"'))
        only = client.untagged_responses.pop("LIST")
        assert len(only) == 7 and all(b"[Gmail]/" in line for line in only)
        assert em.errors == []


def test_one_message_in_several_label_folders(server: DevServer) -> None:
    account = user(server)
    with run_emulator(server.host, server.port, profile="gmail") as em:
        with imap(em.port, account) as client:
            ok(client.create("Work"))
            appended = ok(client.append("Work", r"(\Seen)", None, MESSAGE))[0]
            assert appended.startswith(b"[APPENDUID ")
            ok(client.select('"[Gmail]/All Mail"'))
            [(uid, raw, msgid, labels)] = gm(client)
            assert labels == ["Work"] and raw == "Work"
            ok(client.uid("STORE", str(uid), "+X-GM-LABELS", r'(\Inbox "Big Project")'))
            [(_, raw, same, labels)] = gm(client)
            assert same == msgid
            assert labels == ["\\Inbox", "Big Project", "Work"]
            assert raw == '\\Inbox "Big Project" Work'
            ok(client.select("INBOX"))
            assert [(m[2], m[3]) for m in gm(client)] == [(msgid, labels)]
            assert "Big Project" in folders(client)
            # in INBOX: remove Work; replace the whole set from All Mail
            stored = ok(client.store("1", "-X-GM-LABELS", "(Work)"))
            assert stored == [b'1 (X-GM-LABELS (\\Inbox "Big Project"))']
            ok(client.select("Work"))
            assert ok(client.uid("SEARCH", "ALL")) == [b""]
            ok(client.select('"[Gmail]/All Mail"'))
            assert ok(client.uid("STORE", str(uid), "X-GM-LABELS.SILENT", "(Work)")) == [None]
            assert [m[3] for m in gm(client)] == [["Work"]]
            ok(client.select("INBOX"))
            assert ok(client.search(None, "ALL")) == [b""]
            # the body is the same byte for byte wherever it is read
            ok(client.select("Work"))
            body = ok(client.fetch("1", "(BODY.PEEK[] X-GM-MSGID)"))[0]
            assert body[1] == MESSAGE and b"X-GM-MSGID %d" % msgid in body[0]
            assert b"X-GUID" not in body[0]
        assert em.errors == []


async def test_mailmover_client_reads_and_stores_labels(server: DevServer) -> None:
    account = user(server)
    async with Emulator(server.host, server.port, profile="gmail") as em:
        client = await IMAPClient.connect(em.host, em.port, security="plain")
        await client.authenticate("PLAIN", *account)
        assert client.has("X-GM-EXT-1") and not client.has("LITERAL+")
        assert await client.compress()  # the emulator compresses the client's side
        bodies = [MESSAGE.replace(b"l1@", b"m%d@" % i) + b"x" * i for i in range(30)]
        futures = [client.append_nowait("INBOX", Message(b, ["\\Seen"])) for b in bodies]
        inbox_uids = [append_result(await f).uid for f in futures]
        assert None not in inbox_uids
        await client.select("[Gmail]/All Mail")
        fetched = await client.uid_fetch(range(1, 2**32), "(UID X-GM-MSGID X-GM-LABELS)")
        assert len(fetched) == 30
        assert {f.gm_labels for f in fetched} == {("\\Inbox",)}
        assert len({f.gm_msgid for f in fetched}) == 30
        uids = sorted(f.uid for f in fetched if f.uid is not None)
        labels = ParenList(["Later", Atom("\\Important")])
        args = [Atom(f"{uids[0]}:{uids[9]}"), Atom("+X-GM-LABELS.SILENT"), labels]
        await client.submit("UID STORE", args, uids=UidRange(uids[0], uids[9]))
        relabelled = await client.uid_fetch(uids[:12], "(UID X-GM-LABELS BODY.PEEK[])")
        by_uid = {f.uid: f for f in relabelled}
        assert by_uid[uids[0]].gm_labels == ("\\Important", "\\Inbox", "Later")
        assert by_uid[uids[11]].gm_labels == ("\\Inbox",)
        assert sorted(f.body[""] for f in relabelled) == sorted(bodies[:12])
        await client.select("Later")
        assert len(await client.uid_search()) == 10
        await client.logout()
        assert em.errors == []


def test_mail_put_into_dovecot_directly_gets_its_labels(server: DevServer) -> None:
    account = user(server)
    with imap(server.port, account) as direct:
        ok(direct.create("Receipts"))
        ok(direct.append("Receipts", None, None, MESSAGE))
        ok(direct.select("Receipts"))
        ok(direct.copy("1", "INBOX"))
    with run_emulator(server.host, server.port, profile="gmail") as em:
        with imap(em.port, account) as client:
            ok(client.select("INBOX"))
            [(_, _, msgid, labels)] = gm(client)
            assert labels == ["\\Inbox", "Receipts"]
            ok(client.select('"[Gmail]/All Mail"'))
            assert [(m[2], m[3]) for m in gm(client)] == [(msgid, labels)]
        assert em.errors == []


def test_messages_over_the_append_limit(server: DevServer) -> None:
    account = user(server)
    big = MESSAGE + b"y" * 2000
    limit = len(MESSAGE) + 1000
    with (
        run_emulator(server.host, server.port, profile="gmail", append_limit=limit) as em,
        imap(em.port, account) as client,
    ):
        assert f"APPENDLIMIT={limit}" in ok(client.capability())[-1].decode()
        # imaplib waits for "+" before sending a literal: refused before the upload
        with pytest.raises(imaplib.IMAP4.error, match=r"BAD.*\[TOOBIG\] Message too large"):
            client.append("INBOX", None, None, big)
        ok(client.append("INBOX", None, None, MESSAGE))
        assert em.errors == []


async def test_a_refused_non_synchronising_literal_is_skipped(server: DevServer) -> None:
    account = user(server)
    async with Emulator(server.host, server.port, profile="gmail", append_limit=500) as em:
        client = await IMAPClient.connect(em.host, em.port, security="plain")
        await client.login(*account)
        small, big = Message(MESSAGE), Message(MESSAGE + b"z" * 3000)  # LITERAL-: {n+} up to 4096
        futures = [client.append_nowait("INBOX", m) for m in (small, big, small)]
        first, refused, last = [await asyncio_result(f) for f in futures]
        assert isinstance(refused, MessageRefused) and refused.code == "TOOBIG"
        assert not isinstance(first, Exception) and not isinstance(last, Exception)
        await client.noop()
        await client.select("INBOX")
        assert len(await client.uid_search()) == 2
        await client.logout()
        assert em.errors == []


async def asyncio_result(future: Any) -> Any:
    try:
        return await future
    except Exception as exc:
        return exc


def test_bandwidth_cap_suspends_the_account_for_the_day(server: DevServer) -> None:
    account = user(server)
    with imap(server.port, account) as direct:
        for i in range(5):
            ok(direct.append("INBOX", None, None, MESSAGE + b"%d" % i * 2000))
    options = {"download_per_day": 6000, "day_seconds": 3600.0}
    with run_emulator(server.host, server.port, profile="gmail", **options) as em:
        with imap(em.port, account) as client, imap(em.port, account) as other:
            ok(client.select("INBOX"))
            ok(client.fetch("1:2", "(BODY.PEEK[])"))
            ok(client.fetch("3:4", "(BODY.PEEK[])"))  # passes the cap while it runs
            with pytest.raises(imaplib.IMAP4.abort):
                client.noop()
            with pytest.raises(imaplib.IMAP4.abort):
                other.noop()  # every connection of the account
        refused = pytest.raises(imaplib.IMAP4.error, match=r"\[OVERQUOTA\] Account exceeded")
        with imap(em.port) as again, refused:
            again.login(*account)
        stranger = user(server)
        with imap(em.port, stranger) as client:  # other accounts go on
            ok(client.noop())
        em.reset_day()
        with imap(em.port, account) as client:
            ok(client.select("INBOX"))
            assert len(ok(client.fetch("1:5", "(RFC822.SIZE)"))) == 5
        assert em.errors == []


def test_the_day_ends_on_its_own() -> None:
    clock = [1000.0]
    day = Bandwidth(None, 100, day_seconds=60.0, clock=lambda: clock[0])
    day.add("up", 101)
    assert day.exceeded
    clock[0] += 59.0
    assert day.exceeded
    clock[0] += 1.0
    assert not day.exceeded and day.up == 0


def test_needs_a_slash_separator(dovecot: DevServer, fresh_user: Account) -> None:
    with run_emulator(dovecot.host, dovecot.port, profile="gmail") as em:
        with imap(em.port, fresh_user) as client, pytest.raises(imaplib.IMAP4.abort):
            client.noop()
        assert [str(e) for e in em.errors] == [
            "the gmail profile needs a Dovecot whose separator is '/'"
        ]


def test_copy_and_move_are_label_changes(server: DevServer) -> None:
    account = user(server)
    with run_emulator(server.host, server.port, profile="gmail") as em:
        with imap(em.port, account) as client:
            for name in ("Travel", "Entw&APw-rfe"):
                ok(client.create(f'"{name}"'))
            ok(client.append("INBOX", None, None, MESSAGE))
            ok(client.select("INBOX"))
            [(_, _, msgid, _)] = gm(client)
            ok(client.uid("COPY", "1", "Travel"))
            assert [(m[2], m[3]) for m in gm(client)] == [(msgid, ["\\Inbox", "Travel"])]
            ok(client.uid("MOVE", "1", '"Entw&APw-rfe"'))  # labels go as on the wire
            ok(client.select('"[Gmail]/All Mail"'))
            [(_, raw, same, labels)] = gm(client)
            assert same == msgid and labels == ["Entw&APw-rfe", "Travel"]
            assert raw == "Entw&APw-rfe Travel"
        assert em.errors == []
