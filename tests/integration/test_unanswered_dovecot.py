"""APPENDs a cut left unanswered, against a real Dovecot: which ones the server cannot have,
and finding one that another session stored after the folder was opened."""

from __future__ import annotations

import asyncio
import hashlib
import time

import pytest

from mailmover.engine.attempt import new_carry
from mailmover.engine.folders import FolderPlan
from mailmover.engine.unanswered import settle
from mailmover.errors import MailmoverError
from mailmover.imap.client import SYNC_LITERAL_ABOVE, IMAPClient, Message, append_result
from support.proxy import Proxy

MESSAGE = b"From: a@example.com\r\nSubject: stored late\r\n\r\nbody\r\n"


async def login(host: str, port: int, user: str, password: str) -> IMAPClient:
    client = await IMAPClient.connect(host, port, security="plain")
    await client.login(user, password)
    return client


async def test_a_command_never_wholly_sent_is_unsent_and_one_sent_is_not(
    dovecot, fresh_user
) -> None:
    """A large APPEND waits for the server's "+" before its literal: with the server's
    answers held back and the link then cut, the server cannot have it (``unsent``);
    a NOOP sent whole before it may have been done."""
    user, password = fresh_user
    async with Proxy(dovecot.host, dovecot.port) as proxy:
        client = await login(proxy.host, proxy.port, user, password)
        proxy.stall_after(0, "to_client")
        noop = client.submit("NOOP")
        big = Message(b"Subject: big\r\n\r\n" + b"x" * (SYNC_LITERAL_ABOVE + 10), ())
        append = client.append_nowait("INBOX", big)
        await asyncio.sleep(0.3)  # the NOOP and the APPEND's first line go out
        proxy.close_connections()
        for future in (noop, append):
            with pytest.raises(MailmoverError):
                await future
        assert isinstance(noop.exception(), MailmoverError)
        assert not noop.exception().unsent  # type: ignore[union-attr]
        assert append.exception().unsent  # type: ignore[union-attr]
        late = client.submit("NOOP")  # after the failure: never sent at all
        with pytest.raises(MailmoverError) as info:
            await late
        assert info.value.unsent
        await client.close()


async def test_settle_finds_a_message_stored_after_the_folder_was_opened(
    dovecot, fresh_user
) -> None:
    user, password = fresh_user
    ours = await login(dovecot.host, dovecot.port, user, password)
    await ours.create("Box")
    selected = await ours.select("Box")
    assert selected.exists == 0
    ghost = await login(dovecot.host, dovecot.port, user, password)  # the old session
    stored = append_result(await ghost.append_nowait("Box", Message(MESSAGE, ("\\Seen",))))
    await ghost.logout()
    carry = new_carry(FolderPlan("Box", ("Box",), "Box", True, False), 1 << 20, 100)
    carry.ambiguous[7] = time.monotonic() - 10  # cut long enough ago: no wait
    index = await settle(carry, ours, ())
    assert await index.claim(len(MESSAGE), hashlib.sha256(MESSAGE).digest()) == stored.uid
    await ours.logout()
