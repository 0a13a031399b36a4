"""The ``cyrus-names`` profile refuses ``"`` in folder names and is Dovecot in all else.

The same imaplib session runs against Dovecot and through the emulator: every
answer is the same, except that a CREATE or RENAME to a name holding ``"``
(quoted or as a literal) gets Cyrus's bare ``NO Invalid mailbox name`` and
creates nothing, where Dovecot would have said OK.
"""

from __future__ import annotations

import imaplib
import re
import secrets
from typing import Any

from mailmover.devserver import Account, DevServer
from support.emulator import run_emulator

_VOLATILE = [
    (re.compile(rb" \([0-9.]+(?: \+ [0-9.]+)* secs\)"), b" (T secs)"),
    (re.compile(rb"(UIDVALIDITY|APPENDUID) [0-9]+"), rb"\1 V"),
]
QUOTED = ('"Say \\"hi\\""', '"Box.q\\"q"')


def normalise(data: bytes) -> bytes:
    for pattern, replacement in _VOLATILE:
        data = pattern.sub(replacement, data)
    return data


def new_user(server: DevServer) -> Account:
    return server.add_user(f"nm-{secrets.token_hex(4)}", secrets.token_urlsafe(12))


def session(host: str, port: int, account: Account) -> dict[str, bytes]:
    """Each step's answer (normalised), by step name."""
    imap = imaplib.IMAP4(host, port)
    seen: dict[str, bytes] = {}

    def record(step: str, result: Any) -> None:
        seen[step] = normalise(repr(result).encode())

    record("login", imap.login(*account))
    record("create", imap.create("Box"))
    record("create child", imap.create("Box.Sub"))
    record("rename", imap.rename("Box.Sub", "Box.Other"))
    record("append", imap.append("Box", r"(\Seen)", None, b"Subject: x\r\n\r\nbody\r\n"))
    record("list", imap.list())
    record("create quote", imap._simple_command("CREATE", QUOTED[0]))
    imap.literal = b'Lit "x"'  # the same refusal for a name sent as a literal
    record("create literal", imap._simple_command("CREATE"))
    record("create spare", imap.create("Spare"))
    record("rename quote", imap._simple_command("RENAME", "Spare", QUOTED[1]))
    record("list after", imap.list())
    record("logout", imap.logout())
    return seen


def test_quotes_refused_everything_else_as_dovecot(dovecot: DevServer) -> None:
    direct = session(dovecot.host, dovecot.port, new_user(dovecot))
    with run_emulator(dovecot.host, dovecot.port, profile="cyrus-names") as em:
        proxied = session(em.host, em.port, new_user(dovecot))
        assert em.errors == []
    refused = {"create quote", "create literal", "rename quote"}
    for step in refused:
        assert direct[step].startswith(b"('OK'"), direct[step]
        assert proxied[step] == b"('NO', [b'Invalid mailbox name'])", proxied[step]
    same = direct.keys() - refused - {"list after"}
    assert {k: proxied[k] for k in same} == {k: direct[k] for k in same}
    assert b"Box.Other" in proxied["list"]
    # Dovecot created the names; through the emulator they are not there and Spare stays.
    assert direct["list after"].count(b'\\"') == 5  # Lit "x", Say "hi", Box.q"q
    assert b'\\"' not in proxied["list after"] and b"Spare" in proxied["list after"]


def test_strip_trailing_creates_a_name_that_cannot_be_opened(dovecot_factory) -> None:
    server = dovecot_factory(layout="fs")
    account = new_user(server)
    with run_emulator(server.host, server.port, profile="cyrus-names", strip_trailing=".") as em:
        imap = imaplib.IMAP4(em.host, em.port)
        imap.login(*account)
        assert imap.create("Minutes.")[0] == "OK"
        assert imap.create("Plain")[0] == "OK"  # other names as they are
        status = imap.status("Minutes.", "(MESSAGES)")
        assert status[0] == "NO" and b"doesn't exist" in status[1][0], status
        assert imap.status("Minutes", "(MESSAGES)")[0] == "OK"
        assert imap.status("Plain", "(MESSAGES)")[0] == "OK"
        imap.logout()
        assert em.errors == []
