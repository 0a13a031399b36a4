"""run_pass on an in-memory Journal: each message is written once, a second pass writes none."""

from __future__ import annotations

import os
import secrets
from collections import Counter
from datetime import UTC, datetime

from mailmover.config import Endpoint
from mailmover.devserver import DevServer
from mailmover.engine.passes import run_pass
from mailmover.engine.session import EndpointCredentials
from mailmover.engine.settings import MailboxPair, PassSettings
from mailmover.imap.client import IMAPClient, Message
from support.fakes import MemoryJournal

WHEN = datetime(2020, 2, 3, 4, 5, 6, tzinfo=UTC)
FOLDERS = {"Alpha": 45, "Beta": 30}


def account(server: DevServer) -> tuple[Endpoint, str]:
    """A new user: its endpoint (with the secret) and its password."""
    user, password = f"m{secrets.token_hex(4)}", secrets.token_urlsafe(8)
    server.add_user(user, password)
    return Endpoint(user, "127.0.0.1", server.port, "plain").with_secret(password), password


async def client_of(endpoint: Endpoint, password: str) -> IMAPClient:
    client = await IMAPClient.connect("127.0.0.1", endpoint.port, security="plain")
    await client.login(endpoint.user, password)
    return client


async def test_each_message_is_written_once_and_a_rerun_writes_nothing(
    dovecot: DevServer,
) -> None:
    (src, src_pw), (dst, dst_pw) = account(dovecot), account(dovecot)
    client = await client_of(src, src_pw)
    for folder, count in FOLDERS.items():
        await client.create(folder)
        mail = [
            Message(b"Subject: %d\r\n\r\n%s\r\n" % (n, os.urandom(200).hex().encode()), [], WHEN)
            for n in range(count)
        ]
        await client.multiappend(folder, mail)
    await client.logout()

    journal = MemoryJournal()
    pair = MailboxPair(src.without_secret(), dst.without_secret())
    settings = PassSettings(batch_messages=10, connections=2)
    credentials = EndpointCredentials(src, dst)
    first = await run_pass(pair, settings, "full", journal=journal, credentials=credentials)
    assert first.outcome == "completed", first.reason
    assert first.copied == sum(FOLDERS.values())

    folders = {f.source_name: f for f in await journal.folders()}
    for name, count in FOLDERS.items():
        folder_id = folders[name].id
        assert folder_id is not None
        stored = journal.messages(folder_id)
        assert len(stored) == count
        assert {r.state for r in stored} == {"done"}
        assert len({r.dest_uid for r in stored}) == count and None not in {
            r.dest_uid for r in stored
        }
        assert folders[name].state == "done"
    # Written once each: no "pending" row before the APPEND, one "done" row after it,
    # in batches (at most one record_messages call per batch of 10).
    assert Counter(r.state for r in journal.written) == Counter({"done": sum(FOLDERS.values())})
    batches = sum(-(-count // 10) for count in FOLDERS.values())
    assert 0 < journal.calls.count("record_messages") <= batches

    journal.written.clear()
    second = await run_pass(pair, settings, "delta", journal=journal, credentials=credentials)
    assert second.outcome == "completed", second.reason
    assert second.copied == 0
    assert journal.written == []
    client = await client_of(dst, dst_pw)
    for name, count in FOLDERS.items():
        assert (await client.examine(name)).exists == count
    await client.logout()
