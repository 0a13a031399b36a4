"""``mailmover copy`` over a link that keeps dropping, and over a bandwidth-bound link.

Cuts: both Dovecots sit behind one line (bench/latency_proxy.py, its own
process, no added latency) that cuts a connection at seeded random points on
average every N bytes of traffic, both directions counted together, for the
whole run. The same copy runs with no cuts, a cut every 5 MB and every 1.5 MB;
each round uses another seed for the cut points. Target: at 1.5 MB, at most
3x the time without cuts (median of the rounds).

Bandwidth: both Dovecots behind one line of 40 Mbit/s each way and 50 ms round
trips. The copy runs side by side (interleaved rounds) with merely downloading
the same mailbox through the same line (imaplib, ``UID FETCH 1:* BODY.PEEK[]``
per folder, one connection). Target: download time / copy time >= 0.95 (best
of the rounds). With ``--baseline SRC`` each round also copies with the
mailmover of another tree (``PYTHONPATH=SRC``, e.g. main exported by ``git
archive``), before and after this tree's copy in turn.

Every copy is checked against the source afterwards (bytes, flags, dates).

    .venv/bin/python bench/flaky_bench.py [--only cuts|bandwidth] [--repeat 3] [--baseline SRC]
    .venv/bin/python bench/flaky_bench.py --only cuts --rev main --rev cuts  # side by side
"""

from __future__ import annotations

import argparse
import imaplib
import os
import secrets
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import measure
from copy_bench import check_mailmover, compare, mailmover_command, spread
from machine import print_machine
from mailboxes import folder_names, index, read_account, write_folders
from mailmover.devserver import DevServer
from run_all import export
from slowlink import shared_link
from support import imapwire
from support.corpus import CorpusMessage, bulk

CUT_RATES: list[float | None] = [None, 5e6, 1.5e6]
CUT_TARGET = 3.0
BANDWIDTH_TARGET = 0.95


def download(port: int, user: str, password: str) -> None:
    """Read every body of every folder through ``port``, one command per folder."""
    conn = imaplib.IMAP4("127.0.0.1", port)
    try:
        conn.login(user, password)
        total = 0
        for name in folder_names(conn):
            conn.select(imapwire.quote(name), readonly=True)
            typ, data = conn.uid("FETCH", "1:*", "(BODY.PEEK[])")
            assert typ == "OK", data
            total += sum(len(part[1]) for part in data if isinstance(part, tuple))
        print(total)
    finally:
        conn.logout()


class Bench:
    """Two Dovecots, the source filled with ``messages``; a fresh destination user per run."""

    def __init__(self, src: DevServer, dst: DevServer, src_pw: str, tmp: Path) -> None:
        self.src, self.dst, self.src_pw, self.tmp = src, dst, src_pw, tmp
        self.users = (f"dest{n}" for n in range(1, 10_000))
        self.expected, _ = read_account(src.port, "source", src_pw)

    def copy(
        self, ports: list[int], messages: int, tree: str | None = None
    ) -> tuple[measure.Measured, str, str]:
        """One copy (by the code in ``tree``, a ``src`` directory, when given)."""
        dst_user, dst_pw = next(self.users), secrets.token_urlsafe(12)
        self.dst.add_user(dst_user, dst_pw)
        state = (self.tmp / dst_user).with_suffix(".db")
        command = mailmover_command((ports[0], ports[1]), "source", dst_user, state, None)
        env = {"MAILMOVER_SOURCE_PASSWORD": self.src_pw, "MAILMOVER_DEST_PASSWORD": dst_pw}
        if tree is not None:
            env["PYTHONPATH"] = tree
        result = measure.run(command, env=env, timeout=3600, idle_timeout=600)
        check_mailmover(result, messages)
        retries = sum('"event": "retrying"' in line for line in result.stdout.splitlines())
        verified = compare(self.expected, *read_account(self.dst.port, dst_user, dst_pw))
        return result, verified, f"{retries} retries"

    def download(self, port: int) -> measure.Measured:
        command = [sys.executable, __file__, "--download", str(port)]
        env = {"MAILMOVER_SOURCE_PASSWORD": self.src_pw, "PYTHONPATH": os.pathsep.join(sys.path)}
        result = measure.run(command, env=env, timeout=3600)
        if result.returncode != 0:
            raise RuntimeError(f"download failed: {result.stderr[-2000:]}")
        return result


def with_servers(messages: list[CorpusMessage], body: Callable[[Bench], None]) -> None:
    folders = spread(messages)
    total = sum(len(m.raw) for m in messages)
    print(
        f"corpus: {len(messages)} messages, {total / 1e6:.1f} MB in {len(folders)} folders,"
        f" largest {max(len(m.raw) for m in messages) / 1e6:.2f} MB"
    )
    src_pw = secrets.token_urlsafe(12)
    with (
        DevServer({"source": src_pw}, layout="fs") as src,
        DevServer(layout="maildir++") as dst,
        tempfile.TemporaryDirectory(prefix="mm-flaky-bench-") as tmp,
    ):
        write_folders(src, "source", folders)
        index(src.port, "source", src_pw)
        body(Bench(src, dst, src_pw, Path(tmp)))


def cuts(args: argparse.Namespace) -> None:
    messages = bulk(args.count, seed=args.seed)
    print("\n== cuts: the same copy with no cuts, a cut every 5 MB and every 1.5 MB")
    revs: list[str | None] = list(args.rev or [None])
    times: dict[tuple[str | None, float | None], list[float]] = {
        (rev, rate): [] for rev in revs for rate in CUT_RATES
    }

    def body(bench: Bench) -> None:
        trees = {rev: exported(rev, bench.tmp) for rev in revs}
        for round_ in range(1, args.repeat + 1):
            for rev in revs:
                for rate in CUT_RATES:
                    ports = [bench.src.port, bench.dst.port]
                    with shared_link(ports, 0, cut_every=rate, seed=round_) as through:
                        result, verified, retries = bench.copy(through, len(messages), trees[rev])
                    label = "no cuts" if rate is None else f"a cut every {rate / 1e6:g} MB"
                    print(
                        f"round {round_}: {rev or 'this tree':<10} {label:<20}"
                        f" {result.seconds:6.1f} s  {retries:<11} {verified}",
                        flush=True,
                    )
                    if verified.startswith("DIFF"):
                        raise SystemExit("the copy was NOT correct")
                    times[rev, rate].append(result.seconds)

    with_servers(messages, body)
    for rev in revs:
        base = statistics.median(times[rev, None])
        print(f"\n{rev or 'this tree'}")
        print(f"{'cuts':<22} {'median s':>8} {'best s':>7} {'x no cuts':>9}   every run")
        for rate in CUT_RATES:
            label = "none" if rate is None else f"every {rate / 1e6:g} MB"
            runs = times[rev, rate]
            median = statistics.median(runs)
            every = " ".join(f"{t:.1f}" for t in runs)
            print(f"{label:<22} {median:>8.1f} {min(runs):>7.1f} {median / base:>9.2f}   {every}")
        ratio = statistics.median(times[rev, 1.5e6]) / base
        verdict = "met" if ratio <= CUT_TARGET else "NOT met"
        print(f"a cut every 1.5 MB / no cuts = {ratio:.2f} (target <= {CUT_TARGET:g}: {verdict})")


def exported(rev: str | None, tmp: Path) -> str | None:
    """The ``src`` directory of ``rev`` exported under ``tmp`` (None: this tree's code)."""
    if rev is None:
        return None
    tree = tmp / f"tree-{rev}"
    tree.mkdir()
    commit = export(rev, tree)
    print(f"{rev}: commit {commit[:12]}")
    return str(tree / "src")


def bandwidth(args: argparse.Namespace) -> None:
    messages = bulk(args.bw_count, seed=args.seed, total_bytes=int(args.bw_total_mb * 1e6))
    print(f"\n== bandwidth: {args.mbit:g} Mbit/s each way, {args.rtt_ms:g} ms round trips")
    copies: list[float] = []
    downloads: list[float] = []
    bases: list[float] = []

    def body(bench: Bench) -> None:
        ports = [bench.src.port, bench.dst.port]
        with shared_link(ports, args.rtt_ms, mbit=args.mbit) as through:
            for round_ in range(1, args.repeat + 1):
                fetched = bench.download(through[0])
                downloads.append(fetched.seconds)
                print(
                    f"round {round_}: download {fetched.seconds:6.1f} s"
                    f" ({int(fetched.stdout) / 1e6:.1f} MB)",
                    flush=True,
                )
                order: list[tuple[str, str | None, list[float]]] = [("copy", None, copies)]
                if args.baseline:  # side by side, in turn first and second
                    order.insert(round_ % 2, ("baseline copy", args.baseline, bases))
                for label, src, times in order:
                    result, verified, _ = bench.copy(through, len(messages), src)
                    times.append(result.seconds)
                    print(
                        f"round {round_}: {label} {result.seconds:6.1f} s"
                        f" ({verified}, peak RSS {result.peak_rss / 1e6:.0f} MB)",
                        flush=True,
                    )
                    if verified.startswith("DIFF"):
                        raise SystemExit("the copy was NOT correct")

    with_servers(messages, body)
    if bases:
        print(
            f"\nbaseline ({args.baseline}): best copy {min(bases):.1f} s,"
            f" download / copy = {min(downloads) / min(bases):.2f}"
        )
    ratio = min(downloads) / min(copies)
    verdict = "met" if ratio >= BANDWIDTH_TARGET else "NOT met"
    print(
        f"\nbest download {min(downloads):.1f} s, best copy {min(copies):.1f} s"
        f" (medians {statistics.median(downloads):.1f} s, {statistics.median(copies):.1f} s)"
    )
    print(f"download / copy = {ratio:.2f} (target >= {BANDWIDTH_TARGET:g}: {verdict})")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--only", choices=["cuts", "bandwidth"])
    parser.add_argument("--repeat", type=int, default=3, help="rounds")
    parser.add_argument("--seed", type=int, default=1, help="corpus seed")
    parser.add_argument("--count", type=int, default=300, help="messages, cuts benchmark")
    parser.add_argument(
        "--rev", action="append", help="cuts: copy with this commit's code (repeatable)"
    )
    parser.add_argument("--bw-count", type=int, default=600, help="messages, bandwidth")
    parser.add_argument("--bw-total-mb", type=float, default=66.0, help="MB, bandwidth")
    parser.add_argument("--mbit", type=float, default=40.0)
    parser.add_argument("--rtt-ms", type=float, default=50.0)
    parser.add_argument("--baseline", help="bandwidth: also copy with the mailmover in SRC")
    parser.add_argument("--download", type=int, help=argparse.SUPPRESS)  # the child's port
    args = parser.parse_args()
    if args.download:
        download(args.download, "source", os.environ["MAILMOVER_SOURCE_PASSWORD"])
        return
    print_machine()
    if args.only in (None, "cuts"):
        cuts(args)
    if args.only in (None, "bandwidth"):
        bandwidth(args)


if __name__ == "__main__":
    main()
