"""An APPEND whose literal is written as its bytes come (imap.relayed), against Dovecot.

Pipelined between ordinary APPENDs, a relayed message is stored exactly, with a
non-synchronising literal and with a synchronising one (above 4 MiB). A stream
that fails before its last byte drops the connection: what was sent before it
is answered and stored, the relayed message is not.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator

import pytest

from mailmover.errors import ConnectionLost
from mailmover.imap.client import IMAPClient, Message
from mailmover.imap.relayed import append_relayed_nowait

pytestmark = pytest.mark.asyncio


class Trickle:
    """``data`` in chunks, a pause between them; raises instead of its last ``fail`` bytes."""

    def __init__(self, data: bytes, chunk: int = 300_000, fail: int = 0) -> None:
        self.size, self.data, self.chunk, self.fail = len(data), data, chunk, fail

    async def chunks(self) -> AsyncIterator[bytes | memoryview]:
        end = self.size - self.fail
        for start in range(0, end, self.chunk):
            await asyncio.sleep(0.01)
            yield memoryview(self.data)[start : min(start + self.chunk, end)]
        if self.fail:
            raise ConnectionLost("the source could not deliver it")


def message(size: int, tag: bytes) -> bytes:
    head = b"Subject: relayed " + tag + b"\r\n\r\n"
    return head + os.urandom(size).hex().encode()[: size - len(head) - 2] + b"\r\n"


async def login(server, user: str, password: str) -> IMAPClient:
    client = await IMAPClient.connect(server.host, server.port, security="plain")
    await client.login(user, password)
    return client


async def digests(server, user: str, password: str) -> list[bytes]:
    client = await login(server, user, password)
    selected = await client.examine("INBOX")
    found = []
    if selected.exists:
        for fetch in await client.uid_fetch(range(1, 2**32), "(UID BODY.PEEK[])"):
            found.append(hashlib.sha256(fetch.body[""]).digest())
    await client.logout()
    return found


@pytest.mark.parametrize("size", [1_500_000, 5_000_000], ids=["literal+", "synchronising"])
async def test_a_relayed_append_between_others_is_stored_exactly(dovecot, fresh_user, size):
    user, password = fresh_user
    client = await login(dovecot, user, password)
    await client.select("INBOX")
    before, relayed, after = message(2000, b"before"), message(size, b"big"), message(3000, b"x")
    futures = [
        client.append_nowait("INBOX", Message(before)),
        append_relayed_nowait(client, "INBOX", ["\\Seen"], None, Trickle(relayed)),
        client.append_nowait("INBOX", Message(after)),
    ]
    await asyncio.gather(*futures)
    await client.logout()
    expected = [hashlib.sha256(m).digest() for m in (before, relayed, after)]
    assert await digests(dovecot, user, password) == expected


async def test_a_stream_that_fails_stores_nothing_of_it(dovecot, fresh_user) -> None:
    user, password = fresh_user
    client = await login(dovecot, user, password)
    await client.select("INBOX")
    before, relayed = message(2000, b"before"), message(1_500_000, b"big")
    first = client.append_nowait("INBOX", Message(before))
    broken = append_relayed_nowait(client, "INBOX", [], None, Trickle(relayed, fail=1))
    later = client.append_nowait("INBOX", Message(message(2000, b"later")))
    await first  # answered before the connection was dropped
    for future in (broken, later):
        with pytest.raises(ConnectionLost):
            await future
    assert client.broken
    await client.close()
    await asyncio.sleep(0.2)  # let Dovecot notice the connection is gone
    assert await digests(dovecot, user, password) == [hashlib.sha256(before).digest()]
