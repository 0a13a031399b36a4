"""The emulator cannot drift from Dovecot where it is meant to change nothing.

The same sessions run once against Dovecot and once through the emulator and
must get the same answers: with imaplib, with a raw socket compared byte for
byte (synchronising and non-synchronising literals, a literal Dovecot refuses
before it is sent, IDLE, a 1 MB FETCH), and with mailmover's own pipelining
client, STARTTLS and COMPRESS included.

Each runs through two emulators. ``streaming`` is the pass-through profile:
commands stream to Dovecot as they arrive. ``buffering`` is the provider
machinery every emulated provider uses, told to change nothing: it buffers
every command whole (answering ``+`` to literals itself), rewrites every
CAPABILITY list and every LIST/LSUB reply, with Dovecot's own special-use
folders. Its answers must be Dovecot's except for what a provider profile
always takes away (STARTTLS, LOGINDISABLED, COMPRESS, which it could not see
through) and a literal Dovecot would have refused before it was sent (the
buffering emulator cannot know, so that step is left out for it).
"""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import re
import secrets
import socket
import threading
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from mailmover.devserver import SPECIAL_USE, Account, DevServer
from mailmover.imap.client import IMAPClient, Message, append_result
from mailmover.imap.transport import TLSSettings
from support.emulator import Emulator
from support.emulator.command import Command
from support.emulator.profile import Profile
from support.emulator.provider import Provider
from support.emulator.session import Session

# Dovecot's timings ("(0.001 + 0.000 secs)") and the UIDVALIDITY it draws from the clock.
_VOLATILE = [
    (re.compile(rb" \([0-9.]+(?: \+ [0-9.]+)* secs\)"), b" (T secs)"),
    (re.compile(rb"(UIDVALIDITY|APPENDUID|COPYUID) [0-9]+"), rb"\1 V"),
    (re.compile(rb"'(UIDVALIDITY|APPENDUID|COPYUID)', \[b'[0-9]+"), rb"'\1', [b'V"),
]
MESSAGE = (
    b"From: Zo\xc3\xab <zoe@example.com>\r\nSubject: caf\xc3\xa9 \xff raw\r\n"
    b"Message-ID: <pt@example.com>\r\n\r\nline \x80\x81\r\n.\r\n..dots\r\n"
)
DATE = '"01-Feb-2020 10:11:12 +0100"'


#: what every provider profile takes out of Dovecot's capabilities
_NOT_PASSED = re.compile(rb" (?:STARTTLS|LOGINDISABLED|COMPRESS=[A-Z]+)(?=[ \]'\r])")


def normalise(data: bytes) -> bytes:
    for pattern, replacement in _VOLATILE:
        data = pattern.sub(replacement, data)
    return data


def as_a_provider_shows_it(data: bytes) -> bytes:
    """Dovecot's answers with what a provider profile always hides taken out."""
    return _NOT_PASSED.sub(b"", data)


class Buffering(Provider):
    """The provider machinery with nothing to change: every command buffered, every
    CAPABILITY list and LIST/LSUB reply rewritten, Dovecot's special-use folders."""

    name: ClassVar[str] = "buffering"

    def buffers(self, session: Session, cmd: Command) -> bool:
        return True

    def special_use(self, name: str) -> str:
        return SPECIAL_USE.get(name, "")


class BufferingEmulator(Emulator):
    def profile_for(self, session: Session) -> Profile:
        return Buffering(self)


KINDS = ["streaming", "buffering"]


def emulator(kind: str, server: DevServer) -> Emulator:
    cls = BufferingEmulator if kind == "buffering" else Emulator
    return cls(server.host, server.port)


@contextlib.contextmanager
def in_a_thread(em: Emulator) -> Iterator[Emulator]:
    """``em`` started in an event loop of its own thread, for synchronous clients."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(em.start(), loop).result(30)
        try:
            yield em
        finally:
            asyncio.run_coroutine_threadsafe(em.close(), loop).result(30)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


def expected_through(kind: str, direct: Any) -> Any:
    """What the client must get through emulator ``kind`` when Dovecot said ``direct``."""
    if kind == "streaming":
        return direct
    if isinstance(direct, list):
        return [as_a_provider_shows_it(d) for d in direct]
    return as_a_provider_shows_it(direct)


def new_user(server: DevServer) -> Account:
    return server.add_user(f"pt-{secrets.token_hex(4)}", secrets.token_urlsafe(12))


# -- imaplib -------------------------------------------------------------------------------


def imaplib_session(host: str, port: int, account: Account) -> list[bytes]:
    """Every reply imaplib hands back, with the untagged data it collected, as text."""
    seen: list[bytes] = []
    imap = imaplib.IMAP4(host, port)

    def record(result: Any) -> None:
        untagged = sorted((k, v) for k, v in imap.untagged_responses.items())
        imap.untagged_responses.clear()
        seen.append(normalise(repr((result, untagged)).encode()))

    record(imap.welcome)
    record(imap.login(*account))
    record(imap.capability())
    record(imap.list())
    record(imap.create("Box"))
    record(imap.create("Box/Sub"))
    record(imap.create("Sent"))
    record(imap.subscribe("Box/Sub"))
    record(imap.list('""', "Box*"))
    record(imap.list('""', "*"))
    record(imap._simple_command("LIST", "(SPECIAL-USE)", '""', "*"))
    record(imap._simple_command("LIST", '""', "*", "RETURN", "(SPECIAL-USE SUBSCRIBED)"))
    record(imap.lsub('""', "*"))
    record(imap.append("Box", r"(\Seen $Label)", DATE, MESSAGE))
    record(imap.append("Box", None, DATE, MESSAGE.replace(b"caf", b"tea") * 50))
    record(imap.append("Missing", None, None, MESSAGE))
    record(imap.select("Box"))
    record(imap.fetch("1:2", "(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])"))
    record(imap.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODYSTRUCTURE ENVELOPE)"))
    record(imap.store("1:2", "+FLAGS", r"(\Flagged $Other)"))
    record(imap.search(None, "FLAGGED"))
    record(imap.uid("SEARCH", "ALL"))
    record(imap.uid("FETCH", "1:*", "(FLAGS)"))
    record(imap.status("Box", "(MESSAGES UIDNEXT UNSEEN)"))
    record(imap.logout())
    return seen


@pytest.mark.parametrize("kind", KINDS)
def test_imaplib_sees_the_same_session(dovecot: DevServer, kind: str) -> None:
    direct = imaplib_session(dovecot.host, dovecot.port, new_user(dovecot))
    with in_a_thread(emulator(kind, dovecot)) as em:
        proxied = imaplib_session(em.host, em.port, new_user(dovecot))
        assert em.errors == []
    assert len(direct) == 25
    special = direct[10]
    assert b"\\\\Sent" in special and b"Box" not in special, special  # Dovecot's answer
    want = expected_through(kind, direct)
    if kind == "buffering":  # the rewriting really had something to take away
        assert proxied[2] != direct[2] and b"STARTTLS" in direct[0]
        # LIST (SPECIAL-USE) becomes a plain LIST with the other folders dropped, so
        # child attributes come along (as Gmail's do); Dovecot leaves them out there.
        sent = rb"(\\Sent)"
        assert sent in want[10]
        want[10] = want[10].replace(sent, rb"(\\HasNoChildren \\Sent)")
    assert proxied == want


# -- bytes on the wire ----------------------------------------------------------------------


class Raw:
    """A socket client that sends fixed bytes and reads whole responses."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.file = self.sock.makefile("rb")
        self.received = bytearray()

    def until(self, prefix: bytes) -> None:
        """Read responses up to and including the first line starting with ``prefix``."""
        while True:
            line = self.file.readline()
            assert line, f"connection closed before {prefix!r}"
            self.received += line
            match = re.search(rb"\{([0-9]+)\}\r\n\Z", line)
            if match:
                self.received += self.file.read(int(match.group(1)))
                continue
            if line.startswith(prefix):
                return

    def say(self, data: bytes, until: bytes) -> None:
        self.sock.sendall(data)
        self.until(until)

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def raw_session(port: int, account: Account, *, refused_literal: bool = True) -> bytes:
    big = b"Subject: big\r\n\r\n" + b"0123456789abcdef" * 65536 + b"\r\n"
    raw = Raw(port)
    try:
        raw.until(b"* OK")
        user, password = (s.encode() for s in account)
        raw.say(b"a1 LOGIN " + user + b" {%d}\r\n" % len(password), b"+")
        raw.say(password + b"\r\n", b"a1 ")
        raw.say(b"a2 APPEND INBOX (\\Seen) {%d}\r\n" % len(MESSAGE), b"+")
        raw.say(MESSAGE + b"\r\n", b"a2 ")
        # Pipelined: a non-synchronising literal, a NOOP, a big one, a refused sync literal.
        raw.sock.sendall(
            b"a3 APPEND INBOX {%d+}\r\n%s\r\na4 NOOP\r\na5 APPEND INBOX {%d+}\r\n%s\r\n"
            % (len(MESSAGE), MESSAGE, len(big), big)
        )
        raw.until(b"a5 ")
        if refused_literal:
            raw.say(b"a6 APPEND Nowhere {%d}\r\n" % len(MESSAGE), b"a6 ")
        raw.say(b"a7 SELECT INBOX\r\n", b"a7 ")
        raw.say(b"a8 FETCH 1:3 (FLAGS BODY.PEEK[] RFC822.SIZE)\r\n", b"a8 ")
        raw.say(b"a9 IDLE\r\n", b"+")
        raw.say(b"DONE\r\n", b"a9 ")
        raw.say(b"a10 STORE 1 +FLAGS (\\Deleted)\r\na11 EXPUNGE\r\n", b"a11 ")
        raw.say(b"a12 LOGOUT\r\n", b"a12 ")
        return normalise(bytes(raw.received))
    finally:
        raw.close()


@pytest.mark.parametrize("kind", KINDS)
def test_bytes_on_the_wire_are_dovecots(dovecot: DevServer, kind: str) -> None:
    refused = kind == "streaming"
    direct = raw_session(dovecot.port, new_user(dovecot), refused_literal=refused)
    with in_a_thread(emulator(kind, dovecot)) as em:
        proxied = raw_session(em.port, new_user(dovecot), refused_literal=refused)
        assert em.errors == []
    assert b"* 1 EXPUNGE" in direct and b"+ idling" in direct
    assert direct.count(b"0123456789abcdef" * 1024) == 64
    assert proxied == expected_through(kind, direct)


# -- mailmover's client -------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_mailmover_client_pipelines_through_it(dovecot: DevServer, kind: str) -> None:
    account = new_user(dovecot)
    async with emulator(kind, dovecot) as em:
        client = await IMAPClient.connect(em.host, em.port, security="plain")
        await client.login(*account)
        assert client.has("LITERAL+") and client.has("MULTIAPPEND")
        bodies = [b"Subject: %d\r\n\r\n" % i + b"x" * (i * 37) + b"\r\n" for i in range(200)]
        futures = [client.append_nowait("INBOX", Message(b, ["\\Seen"])) for b in bodies]
        uids = [append_result(await f).uid for f in futures]
        huge = b"Subject: huge\r\n\r\n" + b"y" * (5 * 1024 * 1024) + b"\r\n"  # a sync literal
        big_uid = (await client.append("INBOX", Message(huge))).uid
        batch = [Message(b"Subject: m%d\r\n\r\nhi\r\n" % i, ["$M"]) for i in range(20)]
        multi = [r.uid for r in await client.multiappend("INBOX", batch)]
        assert None not in uids and big_uid is not None and None not in multi
        await client.select("INBOX")
        fetched = await client.uid_fetch([*uids, big_uid, *multi], "(UID FLAGS BODY.PEEK[])")
        got = {f.uid: f.body[""] for f in fetched}
        assert [got[u] for u in uids] == bodies
        assert got[big_uid] == huge
        assert sorted(got[u] for u in multi) == sorted(m.data for m in batch)
        # Streaming: both directions become opaque to the emulator. Buffering: a
        # provider profile offers no COMPRESS unless it does it itself.
        assert await client.compress() == (kind == "streaming")
        [after] = await client.uid_fetch([uids[-1]], "(UID BODY.PEEK[])")
        assert after.body[""] == bodies[-1]
        await client.logout()
        assert em.errors == []


@pytest.mark.parametrize("security", ["plain", "starttls"])
async def test_starttls_goes_through(dovecot: DevServer, security: Any) -> None:
    account = new_user(dovecot)
    async with Emulator(dovecot.host, dovecot.port) as em:
        client = await IMAPClient.connect(
            em.host, em.port, security=security, tls=TLSSettings(ca_file=str(dovecot.ca_file))
        )
        await client.login(*account)
        assert (await client.append("INBOX", Message(MESSAGE))).uid == 1
        await client.logout()
        assert em.errors == []
