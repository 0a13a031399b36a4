"""The engine holds at most its byte budget of message data, and still copies everything."""

from __future__ import annotations

import secrets

import pytest

from mailmover.config import Endpoint
from mailmover.imap.client import IMAPClient, Message
from support.passes import copy_pass

pytestmark = pytest.mark.asyncio


@pytest.mark.parametrize(
    ("size", "budget"),
    [
        (60_000, 500_000),  # many batches: the budget is given back batch by batch
        (300_000, 500_000),  # two messages do not fit at once: no batch may wait on another
    ],
)
async def test_folder_larger_than_the_budget_is_copied(dovecot, tmp_path, size, budget) -> None:
    users = {}
    for side in ("src", "dst"):
        name, password = f"{side}{secrets.token_hex(3)}", secrets.token_urlsafe(8)
        dovecot.add_user(name, password)
        users[side] = Endpoint(name, "127.0.0.1", dovecot.port, "plain").with_secret(password)
    client = await IMAPClient.connect("127.0.0.1", dovecot.port, security="plain")
    await client.login(users["src"].user, users["src"].secret or "")
    bodies = [b"Subject: %d\r\n\r\n" % i + secrets.token_hex(size).encode() + b"\r\n"
              for i in range(40)]  # fmt: skip
    await client.multiappend("INBOX", [Message(b) for b in bodies])
    await client.logout()

    db = f"{tmp_path}/state.db"
    report = await copy_pass(
        users["src"], users["dst"], db, batch_bytes=200_000, memory_budget=budget, connections=1
    )
    assert report.complete and report.copied == len(bodies)
    client = await IMAPClient.connect("127.0.0.1", dovecot.port, security="plain")
    await client.login(users["dst"].user, users["dst"].secret or "")
    await client.examine("INBOX")
    fetched = await client.uid_fetch(range(1, 2**32), "(UID BODY.PEEK[])")
    await client.logout()
    assert sorted(f.body[""] for f in fetched) == sorted(bodies)
