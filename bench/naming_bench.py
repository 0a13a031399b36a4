"""What refused folder names cost: creating N folders when the destination refuses them.

A throwaway Dovecot with Maildir++ storage and ``separator = /`` refuses ``.``
in a name (``NO [CANNOT] Character not allowed in mailbox name: '.'``). Into a
fresh account each time, ``engine.planning.prepare_destination`` creates
``--count`` folders (a tenth of them parents of the others), through the
loopback directly and through the latency proxy adding ``--rtt-ms``:

* ``accepted``: names the server takes as they are;
* ``refused``: the same names with a ``.`` in every level, so every folder
  climbs the ladder of engine.naming (parents first, then their children).

Printed: seconds, rounds of pipelined CREATEs, and CREATE commands sent. The
clock runs from after LOGIN and LIST to the last SUBSCRIBE.

    .venv/bin/python bench/naming_bench.py [--count 2000] [--rtt-ms 50]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from machine import print_machine
from mailmover.devserver import DevServer
from mailmover.engine.folders import FolderPlan
from mailmover.engine.naming import Ladder, Naming
from mailmover.engine.planning import prepare_destination, read_side
from mailmover.imap.client import IMAPClient
from slowlink import slow_link

HOST = "127.0.0.1"


def plans(count: int, dot: bool) -> list[FolderPlan]:
    """``count`` folders: ``count // 10`` parents, the rest spread under them."""
    sep = "." if dot else " "
    parents = max(1, count // 10)
    out = [
        FolderPlan(f"Client{sep}{p}", (f"Client{sep}{p}",), f"Client{sep}{p}", False, True)
        for p in range(parents)
    ]
    for n in range(count - parents):
        parent = out[n % parents].dest_name
        name = f"{parent}/Year{sep}{2000 + n // parents}"
        out.append(FolderPlan(name, (parent, name.rpartition("/")[2]), name, False, True))
    return out


async def create(port: int, user: str, password: str, wanted: list[FolderPlan]) -> dict[str, Any]:
    client = await IMAPClient.connect(HOST, port, security="plain")
    await client.login(user, password)
    side = await read_side(client)
    creates = 0
    submit = client.submit

    def counting(name: str, *args: Any, **kwargs: Any) -> Any:
        nonlocal creates
        creates += name == "CREATE"
        return submit(name, *args, **kwargs)

    client.submit = counting  # type: ignore[method-assign]
    rounds = 0
    next_round = Ladder.next_round

    def counted(self: Ladder) -> list[Naming]:
        nonlocal rounds
        batch = next_round(self)
        rounds += bool(batch)
        return batch

    Ladder.next_round = counted  # type: ignore[method-assign]
    started = time.perf_counter()
    try:
        made = await prepare_destination(client, wanted, side, "/")
    finally:
        Ladder.next_round = next_round  # type: ignore[method-assign]
    seconds = time.perf_counter() - started
    await client.logout()
    renamed = sum(1 for p in made if p.renamed_from is not None)
    refused = sum(1 for p in made if p.refused is not None)
    return {"seconds": seconds, "rounds": rounds, "creates": creates, "renamed": renamed,
            "refused": refused}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--rtt-ms", type=float, default=50.0)
    args = parser.parse_args()
    print_machine()
    with (
        DevServer(layout="maildir++", separator="/") as server,
        slow_link(server.port, args.rtt_ms) as slow,
    ):
        for link, port in (("direct", server.port), (f"+{args.rtt_ms:g} ms", slow)):
            print(f"{args.count} folders, {link}")
            for label, dot in (("accepted", False), ("refused", True)):
                user, password = f"nb-{secrets.token_hex(4)}", secrets.token_urlsafe(12)
                server.add_user(user, password)
                out = asyncio.run(create(port, user, password, plans(args.count, dot)))
                print(
                    f"{label:>11}: {out['seconds']:6.2f} s, {out['rounds']} rounds, "
                    f"{out['creates']} CREATEs, {out['renamed']} renamed, "
                    f"{out['refused']} refused"
                )


if __name__ == "__main__":
    main()
