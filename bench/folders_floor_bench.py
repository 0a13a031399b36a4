"""What this Dovecot allows at best: ``--count`` new folders of a few messages, from memory.

The floor under many_folders_bench.py: no latency, no source, every message
ready in memory, one MULTIAPPEND a folder (its messages with their flags and
internal dates, as the copy sends them), pipelined with IMAPClient (window
256). Each way of ordering the commands runs into a fresh account of a fresh
destination Dovecot (``mailbox_list_index`` as ``--list-index`` says), and is
timed from the first command sent after LOGIN to the last tagged reply, with
the moment the last CREATE was answered:

* ``interleaved x N``: N connections, folders dealt round robin; on each, every
  folder's CREATE followed at once by its APPEND.
* ``creates then appends x 1``: one connection, all CREATEs, then all APPENDs.
* ``creates then appends x N``: all CREATEs on one connection; once all are
  answered, the APPENDs over N connections.
* ``create 1, stream to N``: all CREATEs on one connection; each folder's
  APPEND sent on one of N other connections as soon as its CREATE is answered
  (the APPENDs dealt round robin).

    .venv/bin/python bench/folders_floor_bench.py [--count 2000] [--list-index yes no]

With the list index on, Dovecot takes a lock on the list index for each CREATE
and each APPEND, and a CREATE costs more the more folders exist
(create_scaling_bench.py): the best of these is the target's floor here.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from machine import print_machine
from mailmover.devserver import DevServer
from mailmover.imap.client import IMAPClient, Message
from mailmover.imap.proto.commands import Mailbox
from support.corpus import bulk

Folders = Sequence[tuple[str, list[Message]]]
Timing = tuple[float, float, int]  # seconds to the last CREATE, to the end; refusals


async def _connect(port: int, user: str, password: str, n: int) -> list[IMAPClient]:
    clients = [await IMAPClient.connect("127.0.0.1", port, security="plain") for _ in range(n)]
    for client in clients:
        await client.login(user, password)
    return clients


REFUSALS: Counter[str] = Counter()


async def _settle(futures: Sequence[Awaitable[object]]) -> int:
    """Wait for all; the number refused (their words counted in ``REFUSALS``)."""
    answers = await asyncio.gather(*futures, return_exceptions=True)
    refused = [a for a in answers if isinstance(a, BaseException)]
    REFUSALS.update(str(a).split(" (")[0][:80] for a in refused)
    return len(refused)


async def interleaved(clients: list[IMAPClient], folders: Folders) -> Timing:
    start = time.perf_counter()
    creates, appends = [], []
    for i, (name, messages) in enumerate(folders):
        client = clients[i % len(clients)]
        creates.append(client.submit("CREATE", [Mailbox(name)]))
        appends.append(client.multiappend_nowait(name, messages))
    refused = await _settle(creates)
    created = time.perf_counter() - start
    refused += await _settle(appends)
    return created, time.perf_counter() - start, refused


async def creates_then_appends(clients: list[IMAPClient], folders: Folders) -> Timing:
    """CREATEs on the first connection; with one, the APPENDs follow them unawaited,
    with more, they are dealt over the others once every CREATE is answered."""
    start = time.perf_counter()
    creator, *appenders = clients
    creates = [creator.submit("CREATE", [Mailbox(name)]) for name, _ in folders]
    if not appenders:
        appends = [creator.multiappend_nowait(name, msgs) for name, msgs in folders]
        refused = await _settle(creates)
        created = time.perf_counter() - start
        refused += await _settle(appends)
        return created, time.perf_counter() - start, refused
    refused = await _settle(creates)
    created = time.perf_counter() - start
    appends = [
        appenders[i % len(appenders)].multiappend_nowait(name, msgs)
        for i, (name, msgs) in enumerate(folders)
    ]
    refused += await _settle(appends)
    return created, time.perf_counter() - start, refused


async def streamed(clients: list[IMAPClient], folders: Folders) -> Timing:
    """CREATEs on the first connection; each APPEND on another once its CREATE is answered."""
    start = time.perf_counter()
    creator, *appenders = clients
    appends: list[asyncio.Future[object]] = []

    def then_append(i: int, name: str, messages: list[Message]) -> Callable[[object], None]:
        def send(_: object) -> None:
            appends.append(appenders[i % len(appenders)].multiappend_nowait(name, messages))  # type: ignore[arg-type]

        return send

    creates = []
    for i, (name, messages) in enumerate(folders):
        future = creator.submit("CREATE", [Mailbox(name)])
        future.add_done_callback(then_append(i, name, messages))
        creates.append(future)
    refused = await _settle(creates)
    created = time.perf_counter() - start
    await asyncio.sleep(0)  # the last callbacks
    refused += await _settle(appends)
    return created, time.perf_counter() - start, refused


WAYS: dict[str, tuple[int, Callable[[list[IMAPClient], Folders], Awaitable[Timing]]]] = {
    "interleaved x 1": (1, interleaved),
    "interleaved x 2": (2, interleaved),
    "interleaved x 4": (4, interleaved),
    "creates then appends x 1": (1, creates_then_appends),
    "creates then appends x 4": (5, creates_then_appends),
    "create 1, stream to 1": (2, streamed),
    "create 1, stream to 2": (3, streamed),
    "create 1, stream to 3": (4, streamed),
    "create 1, stream to 4": (5, streamed),
}


async def run_way(port: int, user: str, password: str, way: str, folders: Folders) -> Timing:
    n, how = WAYS[way]
    clients = await _connect(port, user, password, n)
    try:
        return await how(clients, folders)
    finally:
        for client in clients:
            await client.logout()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=2000, help="folders")
    parser.add_argument("--per-folder", type=int, default=3, help="messages in each folder")
    parser.add_argument("--list-index", nargs="+", choices=("yes", "no"), default=["yes"])
    parser.add_argument("--ways", nargs="+", choices=sorted(WAYS), default=list(WAYS))
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    print_machine()
    corpus = bulk(args.count * args.per_folder, seed=5, size_dist="small")
    messages = [Message(m.raw, sorted(m.flags), m.internaldate) for m in corpus]
    folders = [
        (f"Client {i:04d}", messages[i * args.per_folder : (i + 1) * args.per_folder])
        for i in range(args.count)
    ]
    total = sum(len(m.data) for m in messages)
    print(
        f"{args.count:,} folders of {args.per_folder} messages ({total / 1e6:.1f} MB),"
        " from memory, no added latency\n"
    )
    print(f"{'list index':<10} {'round':>5} {'way':<26} {'CREATEs s':>9} {'all s':>6} {'load':>5}")
    for r in range(1, args.rounds + 1):
        for setting in args.list_index:
            for way in args.ways:
                password = secrets.token_urlsafe(12)
                conf = f"mailbox_list_index = {setting}\n"
                with DevServer({"dest": password}, extra_conf=conf) as dst:
                    load = os.getloadavg()[0]
                    created, seconds, refused = asyncio.run(
                        run_way(dst.port, "dest", password, way, folders)
                    )
                note = f"  ({refused} refused: {dict(REFUSALS)})" if refused else ""
                REFUSALS.clear()
                print(
                    f"{setting:<10} {r:>5} {way:<26} {created:>9.1f} {seconds:>6.1f} {load:>5.1f}"
                    f"{note}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
