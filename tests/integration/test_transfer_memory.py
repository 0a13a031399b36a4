"""The engine holds at most its byte budget of message data, and still copies everything.

The peak is measured (tracemalloc, from just before the copy to its end) and
held against what the budget claims: message data is held up to three times
while it is appended (the fetched literal, the batch, the bytes written), so
the peak above the start must stay under three budgets (or three times a
message larger than the budget, which goes alone) plus a fixed allowance for
everything else; the folder is several times that size, so a copy that held
the folder would fail. The destination is read back with the imaplib oracle.
"""

from __future__ import annotations

import hashlib
import secrets
import tracemalloc
from collections import Counter

import pytest

from mailmover.config import Endpoint
from mailmover.imap.client import IMAPClient, Message
from mailmover.store.database import Store
from support import snapshot
from support.passes import copy_pass

pytestmark = pytest.mark.asyncio

#: what the engine holds besides message data (parsers, state, the event loop), in bytes
OVERHEAD = 2_000_000
FOLDER_BYTES = 12_000_000


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
    count = FOLDER_BYTES // (2 * size)
    bodies = [b"Subject: %d\r\n\r\n" % i + secrets.token_hex(size).encode() + b"\r\n"
              for i in range(count)]  # fmt: skip
    await client.multiappend("INBOX", [Message(b) for b in bodies])
    await client.logout()

    def read(side: str) -> snapshot.MailboxSnapshot:
        user = users[side]
        return snapshot.snapshot(dovecot.host, dovecot.port, user.user, user.secret or "")

    source = read("src")
    # The state database's schema (Alembic's migrations build it, and SQLAlchemy keeps
    # the tables) and the modules a first copy imports are not message data: made
    # before the count starts.
    Store.open(f"sqlite:///{tmp_path}/state.db").close()
    await copy_pass(users["src"], users["dst"], f"{tmp_path}/state.db", include=("Nothing",))
    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        report = await copy_pass(
            users["src"], users["dst"], f"{tmp_path}/state.db",
            batch_bytes=200_000, memory_budget=budget, connections=1,
        )  # fmt: skip
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.complete and report.copied == len(bodies)
    held = peak - start
    print(f"peak {held:,} bytes above the start for a {sum(map(len, bodies)):,}-byte folder")
    # A message larger than the budget goes alone: then it is what is held.
    claim = 3 * max(budget, max(map(len, bodies))) + OVERHEAD
    assert held < claim, f"held {held:,} bytes with a budget of {budget:,}"
    assert claim < sum(map(len, bodies)) / 2  # holding the folder would fail

    assert read("src") == source
    got = read("dst")
    assert got.folders == source.folders  # bytes, flags and dates of every message
    digests = Counter(hashlib.sha256(b).hexdigest() for b in bodies)
    assert Counter(digest for digest, _, _ in got.folders[("INBOX",)].elements()) == digests
