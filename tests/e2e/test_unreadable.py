"""A server reply the client cannot read, inside a response whose framing is sound: that
one reply is skipped and its message named as not copied; the connection lives on, the
rest of the folder is copied, and the next run copies the message."""

from __future__ import annotations

import re
from pathlib import Path

from mailmover.devserver import DevServer
from support import runcli, snapshot
from support.corpus import bulk
from support.proxy import Direction, Proxy


async def test_an_unreadable_reply_costs_its_message(
    dovecot: DevServer, dovecot_factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    dst = dovecot_factory()
    accounts = runcli.Accounts(dovecot, dst, tmp_path, "unreadable")
    mail = bulk(40, seed=11, total_bytes=200_000)
    corpus = runcli.folders(INBOX=mail)
    accounts.load(corpus)
    spoiled: list[bytes] = []
    victim: list[bytes] = []  # the UID whose replies are spoiled

    def spoil(_connection: int, direction: Direction, data: bytes) -> bytes:
        # One message's FETCH replies: its size turns into something no parser can read,
        # each time the source describes it (a folder listed with its opening asks again).
        if direction != "to_client" or b" FETCH (" not in data:
            return data
        at = data.find(b"RFC822.SIZE ")
        while at >= 0:
            head = data[max(0, data.rfind(b"* ", 0, at)) : at]
            uid = re.search(rb"UID (\d+)", head)
            if uid is not None and (not victim or uid.group(1) == victim[0]):
                victim[:1] = [uid.group(1)]
                spoiled.append(head)
                data = data[:at] + b"RFC822.SIZE x" + data[at + len(b"RFC822.SIZE ") :]
            at = data.find(b"RFC822.SIZE ", at + 1)
        return data

    async with Proxy(dovecot.host, dovecot.port) as proxy:
        proxy.tap = spoil
        out = await runcli.run_async(
            *accounts.copy_args("--connections", "1", src_port=proxy.port), env=accounts.env
        )
    assert spoiled, "the reply to spoil never came"
    assert out.code == 1, str(out)
    assert not out.retries, out.retries  # the connection was not dropped for it
    report = out.report
    failures = [f for folder in report["folders"] for f in folder["failures"]]
    assert len(failures) == 1 and "did not give its size" in failures[0]["reason"], failures
    assert report["copied"] == len(mail) - 1
    got = accounts.dst_snapshot()
    assert not runcli.extra_messages(snapshot.corpus_snapshot(corpus), got)

    again = accounts.copy()
    assert again.code == 0, str(again)
    assert again.report["copied"] == 1
    assert accounts.problems(snapshot.corpus_snapshot(corpus)) == []
