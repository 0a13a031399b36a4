"""Which APPENDs a failed attempt leaves ambiguous (engine.unanswered)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from mailmover.engine.attempt import new_carry
from mailmover.engine.batches import Item, Meta, Sent
from mailmover.engine.folders import FolderPlan
from mailmover.engine.relay import may_relay
from mailmover.engine.unanswered import note
from mailmover.errors import CommandFailed, ConnectionLost
from mailmover.imap.connection import Result
from mailmover.imap.proto.responses import Tagged

WHEN = datetime(2024, 1, 2, tzinfo=UTC)


def item(uid: int) -> Item:
    return Item(Meta(uid, (), WHEN, 10), b"x" * 10, b"d", (), None)


async def test_only_an_append_sent_whole_and_never_answered_is_ambiguous() -> None:
    loop = asyncio.get_running_loop()
    answered, refused, unsent, cut, pending, cancelled = (loop.create_future() for _ in range(6))
    answered.set_result(Result(Tagged("M1", "OK", None, "APPEND completed")))
    refused.set_exception(CommandFailed("NO no room"))
    lost = ConnectionLost("the connection was closed")
    never = ConnectionLost("the connection was closed")
    never.unsent = True
    unsent.set_exception(never)
    cut.set_exception(lost)
    cancelled.cancel()
    futures = [answered, refused, unsent, cut, pending, cancelled]
    for future in futures:
        if future.done() and not future.cancelled():
            future.exception()  # retrieved: no warning
    sent = Sent([item(uid) for uid in range(1, 9)])
    # one APPEND per future; the last two items went in one MULTIAPPEND that was cut
    sent.commands = [([i], f) for i, f in enumerate(futures)] + [([6, 7], cut)]
    carry = new_carry(FolderPlan("INBOX", ("INBOX",), "INBOX", True, False), 1 << 20, 100)
    note(carry, [sent])
    assert sorted(carry.ambiguous) == [4, 5, 6, 7, 8]
    pending.cancel()


def test_a_message_left_ambiguous_is_not_relayed() -> None:
    """Relayed, it would skip the settle's look at the destination (where a late store of
    its unanswered APPEND may be) and could be stored twice."""
    carry = new_carry(FolderPlan("INBOX", ("INBOX",), "INBOX", True, False), 1 << 20, 100)
    big = Meta(7, (), None, 5 << 20)
    assert may_relay(big, above=1 << 20, carry=carry, index=None)
    carry.ambiguous[7] = 0.0
    assert not may_relay(big, above=1 << 20, carry=carry, index=None)
