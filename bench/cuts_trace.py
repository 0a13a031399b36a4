"""Where the wall time of a copy through a link that keeps dropping goes.

The cuts benchmark's copy (bench/flaky_bench.py: ``bulk(300)`` in five folders,
both Dovecots behind one line cutting on average every N bytes), run in this
process with ``run_pass`` so that every protocol line and every event carries
one clock. Printed: each folder's start, end and retries; for each retry the
time from the cut to the first APPEND of the next attempt, split into the
backoff, the logins, opening the folder and the rest; every upload try of the
largest messages.

    .venv/bin/python bench/cuts_trace.py [--cut-every 1.5e6] [--seed 1] [--rounds 1]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import secrets
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from copy_bench import compare, spread
from flaky_bench import Bench
from mailboxes import index, read_account, write_folders
from mailmover.config import parse_endpoint
from mailmover.devserver import DevServer
from mailmover.engine.events import Event, FolderFinished, FolderStarted, Retrying
from mailmover.engine.passes import run_pass
from mailmover.engine.session import EndpointCredentials
from mailmover.engine.settings import MailboxPair, PassSettings
from mailmover.store import Store
from mailmover.store.journal import StoreJournal
from slowlink import shared_link
from support.corpus import bulk

LINE = re.compile(r"^\s*(?P<rel>[\d.]+) (?P<conn>\S+) (?P<dir>[CS]): (?P<text>.*)$")
LITERAL = re.compile(r"\{(\d+)\+?\}")


@dataclass
class Conn:
    """One traced connection (a label is reused by the reconnects of one worker)."""

    label: str
    opened: float
    lines: list[tuple[float, str, str]] = field(default_factory=list)


@dataclass
class Timeline:
    start: float
    events: list[tuple[float, Event]] = field(default_factory=list)
    conns: list[Conn] = field(default_factory=list)
    current: dict[str, Conn] = field(default_factory=dict)
    raw: list[str] = field(default_factory=list)

    def trace(self, line: str) -> None:
        now = time.monotonic() - self.start
        self.raw.append(f"{now:8.3f} {line}")
        m = LINE.match(line)
        if m is None:
            return
        label, direction, text = m["conn"], m["dir"], m["text"]
        opened = now - float(m["rel"])  # each connection's trace counts from its start
        conn = self.current.get(label)
        if conn is None or abs(conn.opened - opened) > 0.002:
            conn = self.current[label] = Conn(label, opened)
            self.conns.append(conn)
        conn.lines.append((now, direction, text))

    def event(self, event: Event) -> None:
        now = time.monotonic() - self.start
        self.events.append((now, event))
        self.raw.append(f"{now:8.3f} EVENT {event}")


async def one_copy(bench: Bench, ports: list[int], user: str, pw: str) -> Timeline:
    src = parse_endpoint(f"imap://source@127.0.0.1:{ports[0]}?tls=none").with_secret(bench.src_pw)
    dst = parse_endpoint(f"imap://{user}@127.0.0.1:{ports[1]}?tls=none").with_secret(pw)
    timeline = Timeline(time.monotonic())
    store = Store.open(f"sqlite:///{bench.tmp / user}.db")
    try:
        journal = await StoreJournal.open(store, src.url, dst.url)
        report = await run_pass(
            MailboxPair(src.without_secret(), dst.without_secret()), PassSettings(), "full",
            journal=journal, credentials=EndpointCredentials(src, dst),
            events=timeline.event, trace=timeline.trace,
        )  # fmt: skip
    finally:
        store.close()
    if report.outcome != "completed":
        raise SystemExit(f"copy {report.outcome}: {report.reason}")
    timeline.events.append((time.monotonic() - timeline.start, FolderStarted("(end)", 0, 0)))
    return timeline


def appends(conn: Conn) -> list[tuple[float, int, str]]:
    """(time sent, literal size, tag) of each APPEND on ``conn``."""
    out = []
    for t, d, text in conn.lines:
        if d == "C" and " APPEND " in text:
            tag = text.split()[0]
            sizes = [int(s) for s in LITERAL.findall(text)]
            out.append((t, max(sizes) if sizes else 0, tag))
    return out


def report(timeline: Timeline, largest: list[int]) -> dict[str, float]:
    end = timeline.events[-1][0]
    print(f"  wall {end:.2f} s, {len(timeline.conns)} connections opened")
    folders: dict[str, list[float]] = defaultdict(list)
    retries: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for t, e in timeline.events:
        if isinstance(e, FolderStarted):
            folders[e.folder].append(t)
        elif isinstance(e, FolderFinished):
            folders[e.result.source_name].append(t)
        elif isinstance(e, Retrying):
            retries[e.folder].append((t, e.delay))
    for name, times in folders.items():
        if name == "(end)":
            continue
        r = retries.get(name, [])
        waited = sum(d for _, d in r)
        print(
            f"  {name:<10} first listed {times[0]:5.2f}  finished {times[-1]:5.2f}"
            f"  {len(r):2d} retries, backoff {waited:4.2f} s"
        )
    # Each retry: from the Retrying event to the next APPEND on a new dst connection of
    # the same worker, split at: new connection seen, its LOGIN answered, SELECT answered.
    phases: dict[str, list[float]] = defaultdict(list)
    for rs in retries.values():
        for t, delay in rs:
            later = [c for c in timeline.conns if c.label.startswith("dst") and c.opened >= t]
            if not later:
                continue
            conn = min(later, key=lambda c: c.opened)
            ok = next((lt for lt, d, x in conn.lines if d == "S" and "Select completed" in x), None)
            login = next((lt for lt, d, x in conn.lines if d == "S" and "tag='M1'" in x), None)
            first = next((lt for lt, _, _tag in appends(conn)), None)
            phases["backoff"].append(delay)
            phases["cut -> connect"].append(conn.opened - t)
            if login is not None:
                phases["connect -> logged in"].append(login - conn.opened)
            if ok is not None and login is not None:
                phases["logged in -> SELECT answered"].append(ok - login)
            if first is not None and ok is not None:
                phases["SELECT -> first APPEND"].append(first - ok)
    for phase, values in phases.items():
        print(
            f"  {phase:<30} n={len(values):3d} median {statistics.median(values):.3f} s"
            f"  sum {sum(values):.2f} s"
        )
    big = set(largest)
    tries: dict[int, list[str]] = defaultdict(list)
    for conn in timeline.conns:
        for t, size, tag in appends(conn):
            if size in big:
                answered = next(
                    (
                        lt
                        for lt, d, x in conn.lines
                        if d == "S" and x.startswith(f"Tagged(tag='{tag}', status='OK'")
                    ),
                    None,
                )
                tries[size].append(f"{t:.2f}{'+' if answered else 'x'}")
    for size in largest:
        print(f"  {size / 1e6:.2f} MB: {len(tries[size])} tries {' '.join(tries[size])}")
    return {"wall": end}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--cut-every", type=float, default=1.5e6)
    parser.add_argument("--seed", type=int, default=1, help="first seed of the cut points")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--raw", type=Path, help="write every trace line and event here")
    args = parser.parse_args()
    messages = bulk(args.count, seed=1)
    largest = sorted((len(m.raw) for m in messages), reverse=True)[:4]
    src_pw = secrets.token_urlsafe(12)
    with (
        DevServer({"source": src_pw}, layout="fs") as src,
        DevServer(layout="maildir++") as dst,
        tempfile.TemporaryDirectory(prefix="mm-cuts-trace-") as tmp,
    ):
        write_folders(src, "source", spread(messages))
        index(src.port, "source", src_pw)
        bench = Bench(src, dst, src_pw, Path(tmp))
        for n in range(args.rounds):
            for rate in (None, args.cut_every):
                user, pw = next(bench.users), secrets.token_urlsafe(12)
                dst.add_user(user, pw)
                seed = args.seed + n
                with shared_link([src.port, dst.port], 0, cut_every=rate, seed=seed) as ports:
                    timeline = asyncio.run(one_copy(bench, ports, user, pw))
                label = "no cuts" if rate is None else f"a cut every {rate / 1e6:g} MB"
                verified = compare(bench.expected, *read_account(dst.port, user, pw))
                print(f"seed {seed}, {label}: {verified}")
                report(timeline, largest)
                if args.raw is not None:
                    with args.raw.open("a") as raw:
                        raw.write(f"== seed {seed}, {label}\n" + "\n".join(timeline.raw) + "\n")


if __name__ == "__main__":
    main()
