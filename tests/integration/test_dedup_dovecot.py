"""``support.fakes.SelectedFolder`` against Dovecot: the same folder, the same answers to dedup."""

from __future__ import annotations

import hashlib
from typing import cast

from mailmover.devserver import Account, DevServer
from mailmover.engine.dedup import DestinationIndex
from mailmover.imap.client import IMAPClient, Message
from support.fakes import SelectedFolder, Stored

MESSAGES = [
    (b"Subject: one\r\n\r\nsame size\r\n", ("\\Seen",)),
    (b"Subject: one\r\n\r\nsame size\r\n", ()),
    (b"Subject: two\r\n\r\nsame Size\r\n", ("\\Flagged", "$Work")),
    (b"Subject: three\r\n\r\nother\r\n", ()),
]
FLAGS, BODY = "(UID RFC822.SIZE FLAGS)", "(UID BODY.PEEK[])"


def without_recent(flags: tuple[str, ...] | None) -> tuple[str, ...]:
    # \Recent is the server's, set for the first session to see a message (RFC 3501 2.3.2).
    return tuple(sorted(f for f in flags or () if f != "\\Recent"))


async def test_selected_folder_answers_dedup_as_dovecot_does(
    dovecot: DevServer, fresh_user: Account
) -> None:
    client = await IMAPClient.connect(dovecot.host, dovecot.port, security="plain")
    await client.login(fresh_user.name, fresh_user.password)
    try:
        for data, flags in MESSAGES:
            await client.append("INBOX", Message(data, flags))
        selected = await client.select("INBOX")
        fake = SelectedFolder({n: Stored(d, f) for n, (d, f) in enumerate(MESSAGES, start=1)})
        assert (selected.exists, selected.uidnext) == (fake.selected.exists, fake.selected.uidnext)

        for items in (FLAGS, BODY):
            real = await client.uid_fetch(range(1, 2**32), items)
            emulated = await fake.uid_fetch(range(1, 2**32), items)
            assert [(f.seq, f.uid, f.size, f.body) for f in real] == [
                (f.seq, f.uid, f.size, f.body) for f in emulated
            ]
            assert [without_recent(f.flags) for f in real] == [
                without_recent(f.flags) for f in emulated
            ]
        subset = await client.uid_fetch([4, 2, 9], BODY)
        assert [f.uid for f in subset] == [f.uid for f in await fake.uid_fetch([4, 2, 9], BODY)]

        # The same claims give the same answers, in the same order.
        answers = []
        for side in (cast(IMAPClient, client), cast(IMAPClient, fake)):
            index = await DestinationIndex.build(side, {4})
            flags = {uid: without_recent(f) for uid, f in index.flags.items()}
            claims = [
                await index.claim(len(data), hashlib.sha256(data).digest())
                for data, _ in [*MESSAGES, MESSAGES[0]]
            ]
            answers.append((len(index), flags, claims))
        assert answers[0] == answers[1]
        assert answers[0][2] == [1, 2, 3, None, None]
    finally:
        await client.logout()
