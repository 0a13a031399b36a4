"""APPEND 1,000 messages of realistic sizes: one at a time, pipelined, and MULTIAPPEND.

Three clients against a throwaway Dovecot, each into a fresh, empty account:

* ``imaplib``: the standard library, one command at a time; its APPEND sends a
  synchronising literal, so every message costs two round trips;
* ``pipelined``: mailmover's ``IMAPClient.append_nowait`` (LITERAL+), with the
  client's default window of 64 commands in flight and with ``--window``;
* ``multiappend``: mailmover's ``multiappend_nowait`` in batches (RFC 3502),
  the batches themselves pipelined.

over three links: ``direct`` loopback, the latency proxy with no delay (what
forwarding through a Python process costs on its own), and the proxy adding
``--rtt-ms`` (default 50: 25 ms each way). The proxy runs in its own process.
The clock runs from after LOGIN to the last tagged OK; each run is checked
afterwards (message count and total size on the server). Every method runs
``--repeat`` times, in rounds over all links and methods, and the best run
counts (the median is shown beside it); imaplib through the proxy runs once.

    .venv/bin/python bench/append_bench.py [--count 1000] [--rtt-ms 50] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import imaplib
import secrets
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from machine import print_machine
from mailboxes import imapwire, snapshot
from mailmover.devserver import DevServer
from mailmover.imap.client import IMAPClient, Message
from slowlink import slow_link
from support.corpus import CorpusMessage, bulk

HOST = "127.0.0.1"
#: IMAPClient.connect's default number of commands in flight
WINDOW = 64
IMAPLIB = "imaplib, one at a time"


@dataclass(frozen=True)
class Outcome:
    seconds: float
    cpu: float  # this process's CPU seconds (imaplib and mailmover run in-process)


def imaplib_one_at_a_time(
    port: int, user: str, password: str, msgs: Sequence[CorpusMessage]
) -> Outcome:
    with snapshot.session(HOST, port, user, password, timeout=600) as conn:
        start, cpu = time.perf_counter(), time.process_time()
        for msg in msgs:
            flags = "(" + " ".join(sorted(msg.flags)) + ")"
            when = imaplib.Time2Internaldate(msg.internaldate)
            typ, data = conn.append("INBOX", flags, when, msg.raw)
            if typ != "OK":
                raise RuntimeError(f"APPEND failed: {data!r}")
        return Outcome(time.perf_counter() - start, time.process_time() - cpu)


def _message(msg: CorpusMessage) -> Message:
    return Message(msg.raw, tuple(sorted(msg.flags)), msg.internaldate)


async def _mailmover(
    port: int,
    user: str,
    password: str,
    msgs: Sequence[CorpusMessage],
    *,
    batches: int | None = None,
    window: int = WINDOW,
) -> Outcome:
    client = await IMAPClient.connect(HOST, port, security="plain", window=window)
    try:
        await client.login(user, password)
        start, cpu = time.perf_counter(), time.process_time()
        if batches is None:
            futures = [client.append_nowait("INBOX", _message(m)) for m in msgs]
        else:
            futures = [
                client.multiappend_nowait("INBOX", [_message(m) for m in batch])
                for batch in _batches(msgs, batches)
            ]
        await asyncio.gather(*futures)
        outcome = Outcome(time.perf_counter() - start, time.process_time() - cpu)
        await client.logout()
    finally:
        await client.close()
    return outcome


def _batches(msgs: Sequence[CorpusMessage], limit: int) -> list[list[CorpusMessage]]:
    """Consecutive batches of at most ``limit`` bytes (a larger message goes alone)
    and at most 250 messages, as the copy engine makes them."""
    out: list[list[CorpusMessage]] = [[]]
    size = 0
    for msg in msgs:
        if out[-1] and (size + len(msg.raw) > limit or len(out[-1]) >= 250):
            out.append([])
            size = 0
        out[-1].append(msg)
        size += len(msg.raw)
    return out


def check(port: int, user: str, password: str, msgs: Sequence[CorpusMessage]) -> None:
    """The account's INBOX holds as many messages, and as many bytes, as were sent."""
    with snapshot.session(HOST, port, user, password) as conn:
        exists = int(imapwire.check(conn.select("INBOX", readonly=True), "EXAMINE")[0])
        if exists != len(msgs):
            raise RuntimeError(f"{user}: {exists} messages, {len(msgs)} appended")
        _, lines = conn.fetch("1:*", "(RFC822.SIZE)")
        total = sum(int(line.split(b"RFC822.SIZE ")[1].rstrip(b")")) for line in lines)
        if total != sum(len(m.raw) for m in msgs):
            raise RuntimeError(f"{user}: {total} bytes stored")


Method = Callable[[int, str, str, Sequence[CorpusMessage]], Outcome]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="messages per run")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rtt-ms", type=float, default=50.0, help="round trip the proxy adds")
    parser.add_argument("--repeat", type=int, default=5, help="rounds; the best run counts")
    parser.add_argument("--batch-bytes", type=int, default=4 * 2**20, help="MULTIAPPEND batch size")
    parser.add_argument(
        "--window", type=int, default=256, help="commands in flight for the second APPEND row"
    )
    args = parser.parse_args()
    print_machine()

    msgs = bulk(args.count, seed=args.seed)
    total = sum(len(m.raw) for m in msgs)
    sizes = sorted(len(m.raw) for m in msgs)
    print(
        f"\n{len(msgs)} messages, {total / 1e6:.1f} MB (median {statistics.median(sizes):,.0f} B,"
        f" largest {sizes[-1]:,} B); MB = 10^6 bytes"
    )

    methods: dict[str, Method] = {
        IMAPLIB: imaplib_one_at_a_time,
        f"pipelined APPEND, window {WINDOW}": lambda *a: asyncio.run(_mailmover(*a)),
        f"pipelined APPEND, window {args.window}": lambda *a: asyncio.run(
            _mailmover(*a, window=args.window)
        ),
        "MULTIAPPEND batches": lambda *a: asyncio.run(_mailmover(*a, batches=args.batch_bytes)),
    }
    outcomes: dict[tuple[str, str], list[Outcome]] = defaultdict(list)
    users = (f"u{n}" for n in range(1, 10_000))
    with ExitStack() as stack:
        server = stack.enter_context(DevServer())
        links = {
            "direct": server.port,
            "proxy, 0 ms": stack.enter_context(slow_link(server.port, 0)),
            f"proxy, {args.rtt_ms:g} ms RTT": stack.enter_context(
                slow_link(server.port, args.rtt_ms)
            ),
        }
        # Rounds of every link and method in turn, so that load from elsewhere on a
        # shared machine spreads over all of them instead of spoiling one.
        for round_ in range(1, args.repeat + 1):
            for link, port in links.items():
                for label, method in methods.items():
                    if label == IMAPLIB and link != "direct" and round_ > 1:
                        continue  # minutes per run through the proxy: once is enough
                    user, password = next(users), secrets.token_urlsafe(12)
                    server.add_user(user, password)
                    outcomes[link, label].append(method(port, user, password, msgs))
                    check(server.port, user, password, msgs)
            print(f"round {round_} of {args.repeat} done", flush=True)

    print(
        f"\n{'link':<20} {'method':<32} {'best s':>7} {'msgs/s':>7} {'MB/s':>6}"
        f" {'median s':>8} {'client CPU s':>12}   all runs (s)"
    )
    results: dict[tuple[str, str], float] = {}
    for (link, label), runs in outcomes.items():
        best = min(o.seconds for o in runs)
        results[link, label] = best
        print(
            f"{link:<20} {label:<32} {best:>7.2f} {len(msgs) / best:>7.0f}"
            f" {total / 1e6 / best:>6.1f} {statistics.median(o.seconds for o in runs):>8.2f}"
            f" {statistics.median(o.cpu for o in runs):>12.2f}"
            f"   {' '.join(f'{o.seconds:.2f}' for o in runs)}"
        )

    slow = f"proxy, {args.rtt_ms:g} ms RTT"
    rtt = args.rtt_ms / 1000
    print(
        f"\nround-trip floor at {args.rtt_ms:g} ms, one command at a time:"
        f" {len(msgs)} x {args.rtt_ms:g} ms = {len(msgs) * rtt:.0f} s;"
        f" with a synchronising literal (2 round trips each, as imaplib does):"
        f" {2 * len(msgs) * rtt:.0f} s; measured {results[slow, IMAPLIB]:.1f} s"
    )
    print(
        "what the slow link adds, against the proxy with no delay (one at a time costs a"
        " round trip per message or more; a window of W commands in flight at least"
        f" {len(msgs)}/W round trips):"
    )
    windows = {
        label: w for w in (WINDOW, args.window) for label in methods if f"window {w}" in label
    }
    for label in methods:
        base, far = results["proxy, 0 ms", label], results[slow, label]
        trips = (far - base) / rtt
        if trips > 0.5 * len(msgs):
            verdict = "bound by latency"
        elif label in windows and trips > 0.75 * len(msgs) / windows[label]:
            verdict = f"bound by the window ({len(msgs) / windows[label]:.1f} round trips)"
        else:
            verdict = "not bound by latency"
        print(
            f"  {label:<32} {far:7.2f} s / {base:.2f} s = {far / base:5.2f};"
            f" added {far - base:6.2f} s = {trips:6.1f} round trips"
            f" (direct: {results['direct', label]:.2f} s) -> {verdict}"
        )


if __name__ == "__main__":
    main()
