"""The emulator's Microsoft, groupware and Yahoo profiles, through imaplib and mailmover."""

from __future__ import annotations

import contextlib
import imaplib
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from mailmover.devserver import Account, DevServer
from mailmover.errors import MessageRefused, ServerUnavailable
from mailmover.imap.client import IMAPClient, Message
from support.emulator import Emulator, run_emulator

MESSAGE = b"From: a@example.com\r\nSubject: quirks\r\n\r\nbody\r\n"
_LIST = re.compile(rb'\((?P<attrs>[^)]*)\) "[^"]*" (?P<name>"[^"]*"|\S+)')
_ROLES = {"\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash"}


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


def refused(result: tuple[str, list[Any]]) -> str:
    """The text of a NO (imaplib returns those; BAD raises)."""
    typ, data = result
    assert typ == "NO", data
    return b" ".join(data).decode()


def roles(client: imaplib.IMAP4) -> dict[str, set[str]]:
    """Folder name → its special-use attributes."""
    out = {}
    for line in ok(client.list()):
        match = _LIST.match(line)
        assert match, line
        out[match["name"].decode().strip('"')] = set(match["attrs"].decode().split()) & _ROLES
    return out


def capabilities(client: imaplib.IMAP4) -> set[str]:
    return set(ok(client.capability())[-1].decode().upper().split())


# -- Microsoft -----------------------------------------------------------------------------


def test_microsoft_folders_capabilities_and_case_insensitive_create(
    dovecot: DevServer, fresh_user: Account
) -> None:
    with (
        run_emulator(dovecot.host, dovecot.port, profile="microsoft") as em,
        imap(em.port, fresh_user) as client,
    ):
        assert client.welcome.endswith(b"The Microsoft Exchange IMAP4 service is ready.")
        caps = capabilities(client)
        assert {"IMAP4REV1", "UIDPLUS", "MOVE", "LITERAL+", "IDLE"} <= caps
        assert not caps & {"SPECIAL-USE", "MULTIAPPEND", "CONDSTORE", "COMPRESS=DEFLATE"}
        assert roles(client) == {
            "INBOX": set(),
            "Sent Items": {"\\Sent"},
            "Deleted Items": {"\\Trash"},
            "Junk Email": {"\\Junk"},
            "Drafts": {"\\Drafts"},
            "Archive": {"\\Archive"},
        }
        ok(client.create("Projects"))
        assert refused(client.create("projects")) == "Mailbox already exists."
        assert refused(client.create('"sent items"')) == "Mailbox already exists."
        assert refused(client.create("Projects")) == "Mailbox already exists."
        ok(client.create("Projects2"))
        assert {"Projects", "Projects2"} <= set(roles(client))
        assert "projects" not in roles(client)
        assert em.errors == []


async def test_microsoft_size_limit(dovecot: DevServer, fresh_user: Account) -> None:
    limit = {"max_message_size": 500}
    async with Emulator(dovecot.host, dovecot.port, profile="microsoft", **limit) as em:
        client = await IMAPClient.connect(em.host, em.port, security="plain")
        await client.login(*fresh_user)
        big = Message(MESSAGE + b"x" * 600)
        futures = [client.append_nowait("INBOX", m) for m in (Message(MESSAGE), big)]
        assert (await futures[0]).tagged.status == "OK"
        with pytest.raises(MessageRefused, match="Maximum size of appendable message"):
            await futures[1]
        await client.select("INBOX")
        assert len(await client.uid_search()) == 1
        await client.logout()
        assert em.errors == []
    with (
        run_emulator(dovecot.host, dovecot.port, profile="microsoft", **limit) as em,
        imap(em.port, fresh_user) as client,
    ):
        # imaplib waits for "+", which never comes
        result = client.append("INBOX", None, None, MESSAGE + b"x" * 600)
        assert refused(result) == "Maximum size of appendable message has been exceeded"
        ok(client.noop())


def test_microsoft_throttles_every_n_commands_of_an_account(
    dovecot: DevServer, fresh_user: Account
) -> None:
    with (
        run_emulator(dovecot.host, dovecot.port, profile="microsoft", throttle_every=3) as em,
        imap(em.port, fresh_user) as first,
        imap(em.port, fresh_user) as second,
    ):
        # the two logins do not count; commands of both connections do
        replies = []
        for client in (first, second) * 4:
            replies.append(client.noop()[0])
        assert replies == ["OK", "OK", "OK", "NO", "OK", "OK", "OK", "NO"]
        ok(first.select("INBOX"))
        ok(second.noop())
        ok(first.noop())
        assert refused(second.noop()) == (
            "Request is throttled. Suggested Backoff Time: 500 milliseconds"
        )
        assert em.errors == []


async def test_microsoft_throttle_reply_carries_the_backoff(
    dovecot: DevServer, fresh_user: Account
) -> None:
    options = {"throttle_every": 1, "throttle_backoff_ms": 1500, "throttle_bye": True}
    async with Emulator(dovecot.host, dovecot.port, profile="microsoft", **options) as em:
        client = await IMAPClient.connect(em.host, em.port, security="plain")
        await client.login(*fresh_user)
        await client.noop()
        with pytest.raises(ServerUnavailable) as info:
            await client.noop()
        assert info.value.retry_after == 1.5
        await client.close()
    with (
        run_emulator(dovecot.host, dovecot.port, profile="microsoft", **options) as em,
        imap(em.port, fresh_user) as client,
    ):
        ok(client.noop())
        with pytest.raises(imaplib.IMAP4.abort, match=r"Connection closed\. 14"):
            client.noop()


# -- groupware -----------------------------------------------------------------------------


def test_groupware_announces_any_flag_but_refuses_keywords(
    dovecot: DevServer, fresh_user: Account
) -> None:
    with (
        run_emulator(dovecot.host, dovecot.port, profile="groupware") as em,
        imap(em.port, fresh_user) as client,
    ):
        ok(client.select("INBOX"))
        assert b"\\*" in client.untagged_responses["PERMANENTFLAGS"][0]
        ok(client.append("INBOX", r"(\Seen \Flagged)", None, MESSAGE))
        with pytest.raises(imaplib.IMAP4.error, match=r"BAD.*Invalid flag list"):
            client.append("INBOX", r"(\Seen $Forwarded)", None, MESSAGE)
        with pytest.raises(imaplib.IMAP4.error, match=r"BAD.*Invalid system flag .+Forwarded"):
            client.append("INBOX", r"(\Forwarded)", None, MESSAGE)
        with pytest.raises(imaplib.IMAP4.error, match=r"BAD.*Invalid flag list"):
            client.store("1", "+FLAGS", "(NonJunk)")
        ok(client.store("1", "+FLAGS", r"(\Answered)"))
        ok(client.store("1", "-FLAGS", r"(\Answered)"))
        assert ok(client.search(None, "ALL")) == [b"1"]
        assert em.errors == []


async def test_groupware_refusal_is_per_command_and_multiappend_is_all_or_nothing(
    dovecot: DevServer, fresh_user: Account
) -> None:
    async with Emulator(dovecot.host, dovecot.port, profile="groupware") as em:
        client = await IMAPClient.connect(em.host, em.port, security="plain")
        await client.login(*fresh_user)
        flagsets = [["\\Seen"], ["$Label1"], ["\\Draft"], ["Junk", "\\Seen"], []]
        futures = [client.append_nowait("INBOX", Message(MESSAGE, f)) for f in flagsets]
        outcomes = []
        for future in futures:
            try:
                outcomes.append((await future).tagged.status)
            except MessageRefused as exc:
                outcomes.append(exc.status)
        assert outcomes == ["OK", "BAD", "OK", "BAD", "OK"]
        with pytest.raises(MessageRefused):
            await client.multiappend("INBOX", [Message(MESSAGE), Message(MESSAGE, ["$x"])])
        await client.select("INBOX")
        assert len(await client.uid_search()) == 3
        await client.logout()
        assert em.errors == []


# -- Yahoo -----------------------------------------------------------------------------


def test_yahoo_refuses_deleted(dovecot: DevServer, fresh_user: Account) -> None:
    with (
        run_emulator(dovecot.host, dovecot.port, profile="yahoo") as em,
        imap(em.port, fresh_user) as client,
    ):
        assert refused(client.append("INBOX", r"(\Seen \Deleted)", None, MESSAGE)) == (
            "[CANNOT] APPEND Contains Deleted flag"
        )
        ok(client.append("INBOX", r"(\Seen)", None, MESSAGE))
        ok(client.select("INBOX"))
        assert refused(client.store("1", "+FLAGS", r"(\Deleted)")) == (
            "[CANNOT] STORE Contains Deleted flag"
        )
        ok(client.store("1", "-FLAGS.SILENT", r"(\Deleted)"))
        ok(client.store("1", "+FLAGS", r"($Junk)"))
        assert ok(client.search(None, "ALL")) == [b"1"]
        # Yahoo's folder names, and no SPECIAL-USE (Dovecot's own attributes are hidden)
        found = roles(client)
        assert {"Sent", "Draft", "Trash", "Bulk Mail", "Archive"} <= set(found)
        assert all(not attrs for attrs in found.values())
        assert "SPECIAL-USE" not in capabilities(client)
        assert em.errors == []


def test_yahoo_store_of_deleted_can_be_allowed(dovecot: DevServer, fresh_user: Account) -> None:
    with (
        run_emulator(dovecot.host, dovecot.port, profile="yahoo", refuse_store_deleted=False) as em,
        imap(em.port, fresh_user) as client,
    ):
        ok(client.append("INBOX", None, None, MESSAGE))
        ok(client.select("INBOX"))
        ok(client.store("1", "+FLAGS", r"(\Deleted)"))
        ok(client.expunge())
        assert ok(client.search(None, "ALL")) == [b""]


def test_unknown_profile_or_option_is_refused(dovecot: DevServer) -> None:
    with pytest.raises(ValueError, match="unknown profile 'hotmail'"):
        Emulator(dovecot.host, dovecot.port, profile="hotmail")
    with pytest.raises(TypeError, match="throttle_evry"):
        Emulator(dovecot.host, dovecot.port, profile="microsoft", throttle_evry=3)


def test_a_subprocess_can_use_the_threaded_emulator(
    dovecot: DevServer, fresh_user: Account
) -> None:
    script = (
        "import imaplib, sys\n"
        "imap = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))\n"
        "print(imap.welcome.decode())\n"
        "imap.login(sys.argv[2], sys.stdin.read())\n"
        "print(imap.create('\"sent items\"')[0])\n"
        "imap.logout()\n"
    )
    with run_emulator(dovecot.host, dovecot.port, profile="microsoft") as em:
        done = subprocess.run(
            [sys.executable, "-c", script, str(em.port), fresh_user.name],
            input=fresh_user.password,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert em.errors == []
    greeting, created = done.stdout.splitlines()
    assert greeting.endswith("The Microsoft Exchange IMAP4 service is ready.")
    assert created == "NO"
