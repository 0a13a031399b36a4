"""APPENDs a cut left unanswered, against a real Dovecot: which ones the server cannot have,
and finding one that another session stored after the folder was opened."""

from __future__ import annotations

import asyncio
import hashlib
import time

import pytest

from mailmover.config import Endpoint
from mailmover.engine.attempt import new_carry
from mailmover.engine.events import Event, Retrying
from mailmover.engine.folders import FolderPlan
from mailmover.engine.unanswered import settle
from mailmover.errors import MailmoverError
from mailmover.imap.client import SYNC_LITERAL_ABOVE, IMAPClient, Message, append_result
from support import corpus, runcli, snapshot
from support.passes import copy_pass
from support.proxy import Direction, Proxy

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


async def test_twins_appended_before_the_settle_are_not_claimed_for_their_ambiguous_twins(
    dovecot_factory, tmp_path
) -> None:
    """A folder whose first nine messages come again at its end, byte for byte. The first
    APPENDs are lost with the link (sent whole, never stored), so the next attempt sends
    them last, after the settle; their twins at the end are appended before the settle,
    and some are still unanswered then. The settle must not take a twin's fresh copy for
    the first one's: every message arrives, twins included, once each."""
    src, dst = dovecot_factory(layout="fs"), dovecot_factory(layout="maildir++")
    accounts = runcli.Accounts(src, dst, tmp_path, "twins")
    msgs = corpus.bulk(22, seed=47, size_dist="small")
    mail = runcli.folders(INBOX=[*msgs, *msgs[:9]])
    accounts.load(mail)
    marker = msgs[0].raw[-60:]
    dropped: list[bytes] = []

    def drop_first(connection: int, direction: Direction, data: bytes) -> bytes:
        if direction == "to_server" and marker in data and not dropped:
            dropped.append(data)
            proxy.cut_after(0, "to_server")  # this chunk never reaches the server
        return data

    events: list[Event] = []
    async with Proxy(dst.host, dst.port, delay_ms=50) as proxy:  # APPENDs answered late
        proxy.tap = drop_first
        source = Endpoint(accounts.user, src.host, src.port, "plain")
        dest = Endpoint(accounts.user, "127.0.0.1", proxy.port, "plain")
        report = await copy_pass(
            source.with_secret(accounts.src_pw), dest.with_secret(accounts.dst_pw),
            str(tmp_path / "state.db"), events, connections=1, batch_messages=1,
        )  # fmt: skip
    assert dropped, "the first APPEND was not cut"
    assert any(isinstance(e, Retrying) for e in events), "no second attempt"
    assert report.failures == 0 and report.copied == len(msgs) + 9, report
    got = accounts.dst_snapshot()
    assert runcli.exact_copy_problems(snapshot.corpus_snapshot(mail), got) == []
