"""APPENDs a broken link left unanswered: the server may store them after the cut.

An APPEND whose every byte was sent but whose answer never came may have been
stored, and possibly only after the next attempt opened the folder: the server
carries out the commands it received before it notices the cut (a loaded
Dovecot stored a MULTIAPPEND 0.17 s after the cut, after the next session's
SELECT had counted the folder). The messages of such an APPEND are
*ambiguous*. The next attempt copies them last, and before it sends any of
them it waits until ``SETTLE`` seconds have passed since the cut and reads the
destination folder again (engine.dedup), so that one stored meanwhile is
claimed, not appended twice. An APPEND the server refused (a tagged NO), or
one never wholly sent (``unsent``: the server cannot have it), is not
ambiguous. A server that stores a received APPEND more than ``SETTLE``
seconds after the link dropped could still get it twice.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection

from mailmover.engine.attempt import Carry
from mailmover.engine.batches import Sent
from mailmover.engine.dedup import DestinationIndex
from mailmover.errors import CommandFailed, MailmoverError
from mailmover.imap.client import IMAPClient

#: seconds after a cut before an ambiguous message is looked for and sent again
SETTLE = 0.25


def note(carry: Carry, appended: Collection[Sent]) -> None:
    """Remember the messages of ``appended`` whose APPEND may have been stored unanswered
    (call when an attempt fails, after recording what was answered)."""
    now = time.monotonic()
    for sent in appended:
        for indexes, future in sent.commands:
            if future.done() and not future.cancelled():
                exc = future.exception()
                if exc is None or isinstance(exc, CommandFailed):
                    continue  # answered: stored (and recorded), or refused
                if isinstance(exc, MailmoverError) and exc.unsent:
                    continue
            for i in indexes:
                carry.ambiguous[sent.batch[i].meta.uid] = now


async def settle(carry: Carry, dst: IMAPClient, ours: Collection[int]) -> DestinationIndex:
    """Wait until ``SETTLE`` seconds after the last cut that left a message ambiguous, then
    index the destination folder (selected on ``dst``) again, leaving out ``ours``
    (destination UIDs recorded or claimed already)."""
    wait = max(carry.ambiguous.values(), default=0.0) + SETTLE - time.monotonic()
    if wait > 0:
        await asyncio.sleep(wait)
    await dst.noop()  # the folder as it is now, with what other sessions stored
    return await DestinationIndex.build(dst, ours, look=True, digests=carry.dest_digests)
