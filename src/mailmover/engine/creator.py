"""New folders created ahead of their copies, all on one destination connection.

With thousands of new small folders, the destination's CREATE is what binds
the first copy on Dovecot with its mailbox list index (its default): every
CREATE and every APPEND takes the list index's lock, and a CREATE costs more
the more folders exist. Measured from memory with no latency
(bench/folders_floor_bench.py), CREATEs pipelined on one connection while
other connections APPEND to each folder as soon as it exists beat CREATE and
APPEND interleaved on every connection: sessions that create at once make
each other's CREATEs slower and are refused with "already exists" for folders
that did not exist.

So when the workers create many folders (engine.smallfolders), one
destination connection sends every CREATE, pipelined, in the order the
workers take the folders, and a worker sends a folder's APPEND once its
CREATE is answered. A SUBSCRIBE follows a CREATE only once it succeeded (a
refused name is not left subscribed). A CREATE that fails is the worker's to
report as before (the pass finds the folder a name by engine.naming).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Collection, Sequence

from mailmover.engine.folders import FolderPlan
from mailmover.engine.session import Pair
from mailmover.errors import CommandFailed
from mailmover.imap.client import IMAPClient, Result
from mailmover.imap.proto.commands import Mailbox

#: the workers create their folders themselves unless there are more than this many
#: for each of them (fewer fit in the folders they keep under way at once anyway)
AHEAD_PER_WORKER = 8


def exists_already(exc: BaseException) -> bool:
    """Whether a CREATE's refusal says the folder is there (Exchange says so in words)."""
    return isinstance(exc, CommandFailed) and (
        exc.code == "ALREADYEXISTS" or "already exists" in exc.message.lower()
    )


def subscribe_after(client: IMAPClient, created: asyncio.Future[Result], plan: FolderPlan) -> None:
    """SUBSCRIBE ``plan``'s folder once ``created`` (its CREATE) says it is there; a
    refused SUBSCRIBE costs the subscription only."""
    if not plan.subscribed:
        return

    def then(done: asyncio.Future[Result]) -> None:
        exc = None if done.cancelled() else done.exception()
        if done.cancelled() or (exc is not None and not exists_already(exc)) or client.broken:
            return
        sent = client.submit("SUBSCRIBE", [Mailbox(plan.dest_name)])
        sent.add_done_callback(lambda f: f.cancelled() or f.exception())

    created.add_done_callback(then)


class Creator:
    """One destination connection creating ``plans``' folders, in their order."""

    def __init__(self, client: IMAPClient, plans: Sequence[FolderPlan]) -> None:
        self.client = client
        self.futures: dict[str, asyncio.Future[Result]] = {}
        for plan in plans:
            created = client.submit("CREATE", [Mailbox(plan.dest_name)])
            created.add_done_callback(lambda f: f.cancelled() or f.exception())
            subscribe_after(client, created, plan)
            self.futures[plan.dest_name] = created

    def created(self, name: str) -> asyncio.Future[Result] | None:
        """The CREATE of ``name``, when this creator sent it."""
        return self.futures.get(name)

    async def close(self, *, wait: bool = True) -> None:
        """Log out once the CREATEs sent (and the SUBSCRIBEs after them) are answered;
        without ``wait`` (the pass is stopping), drop the connection at once."""
        if not wait:
            await self.client.close()
            return
        await asyncio.gather(*self.futures.values(), return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.client.logout()


async def dedicate(
    ready: list[Pair], workers: int, queue: Sequence[FolderPlan], create: Collection[str]
) -> Creator | None:
    """A creator on the last of ``workers`` pairs in ``ready`` (taken from it, its source
    side logged out) when the workers create more than ``AHEAD_PER_WORKER`` folders each
    and there are at least two; None otherwise."""
    ahead = [p for p in queue if p.dest_name in create]
    if workers < 2 or len(ready) < workers or len(ahead) <= AHEAD_PER_WORKER * workers:
        return None
    src, dst = ready.pop(workers - 1)
    await src.logout()
    return Creator(dst, ahead)
