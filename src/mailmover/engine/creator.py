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
report as before (the pass finds the folder a name by engine.naming). When the
creator's link drops, each worker sends the CREATEs it lost itself, and those of
the folders it starts from then on.
``created_by_workers`` says which folders the workers create at all.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Collection, Mapping, Sequence

from mailmover.engine.folders import FolderPlan
from mailmover.engine.opening import PREFETCH, PREFETCH_BYTES
from mailmover.engine.options import TransferOptions
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
    src, dst = ready[workers - 1]
    await src.logout()
    del ready[workers - 1]  # not before: cancelled meanwhile, the caller closes it
    return Creator(dst, ahead)


def created_by_workers(
    plans: Sequence[FolderPlan],
    listed: Collection[str],
    sizes: Mapping[str, tuple[int, int]],
    options: TransferOptions,
    recorded: Collection[str],
    dst: IMAPClient,
    delimiter: str,
) -> frozenset[str]:
    """The destination folders the workers create themselves, each with its copy: those
    the destination lacks of small folders never copied, with no planned folder above
    or below them (a parent's rename would move its children; the ladder of
    engine.naming handles those, before the copy)."""
    if not dst.has("UIDPLUS"):
        return frozenset()
    paths = {p.path for p in plans}
    above = {path[:k] for path in paths for k in range(1, len(path))}
    out = set()
    for plan in plans:
        messages, size = sizes.get(plan.source_name, (0, 0))
        if (
            plan.dest_name not in listed
            and plan.dest_name.upper() != "INBOX"
            and plan.refused is None
            and not plan.unlabelled_only
            and plan.source_name not in recorded
            and plan.path not in above
            and not any(plan.path[:k] in paths for k in range(1, len(plan.path)))
            and not options.only_failed
            and options.since is None
            and options.before is None
            and 0 < messages <= min(PREFETCH, options.batch_messages)
            and 0 < size <= min(PREFETCH_BYTES, options.batch_bytes)
        ):
            out.add(plan.dest_name)
    counts = Counter(p.dest_name for p in plans)
    nested = {_prefixes(name, delimiter) for name in counts}
    parents = set().union(*nested) if nested else set()
    # Two folders bound for one name, or nested by name (--map): the ladder decides.
    return frozenset(
        n
        for n in out
        if counts[n] == 1 and n not in parents and not (_prefixes(n, delimiter) & counts.keys())
    )


def _prefixes(name: str, delimiter: str) -> frozenset[str]:
    """The names above ``name`` in the hierarchy (``a/b/c`` → ``a``, ``a/b``)."""
    parts = name.split(delimiter)
    return frozenset(delimiter.join(parts[:k]) for k in range(1, len(parts)))
