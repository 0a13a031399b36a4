"""``mailmover copy`` against mbsync: one mailbox of 2,000 messages / 100 MB, loopback and 50 ms.

The corpus (``bulk(2000, seed=2, total_bytes=100_000_000)``, spread over five
folders) is written straight into the source Dovecot's Maildir (``LAYOUT=fs``)
and indexed before anything is timed. Each run copies it into a fresh user on
a second Dovecot (Maildir++), with a fresh state file, as a child process whose
wall time and peak RSS are measured (see measure.py). The slow link is two
latency proxies, one in front of each server, each adding ``--rtt-ms`` to every
round trip. Afterwards the destination is read back with imaplib and compared
with the source (bytes, flags, internal date of every message), so every figure
is for a correct copy (mbsync 1.4 adds an ``X-TUID`` header to each message it
stores; the comparison takes it out and counts it). Every run is repeated
``--repeat`` times, in rounds; the best time and the highest peak RSS count.

    .venv/bin/python bench/copy_bench.py [--count 2000] [--total-mb 100] [--rtt-ms 50]
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import measure
from machine import print_machine
from mailboxes import index, read_account, snapshot, without_keywords, write_folders
from mailmover.devserver import DevServer
from mbsync_config import write_config
from slowlink import slow_link
from support.corpus import CorpusMessage, bulk

#: share of the messages in each folder
FOLDERS: dict[tuple[str, ...], float] = {
    ("INBOX",): 0.40,
    ("Archive",): 0.30,
    ("Sent",): 0.15,
    ("Lists",): 0.10,
    ("Projects",): 0.05,
}
RSS_TARGET = 150e6
SLOWDOWN_TARGET = 1.5


@dataclass(frozen=True)
class Run:
    tool: str  # "mailmover" | "mbsync"
    link: str  # "loopback" | "proxy 0 ms" | "50 ms"
    connections: int | None = None  # mailmover's --connections (None: its default)

    @property
    def label(self) -> str:
        if self.tool == "mbsync":
            return "mbsync"
        if self.connections is None:
            return "mailmover (default: 4 conns)"
        return f"mailmover --connections {self.connections}"


@dataclass(frozen=True)
class Figures:
    run: Run
    measured: measure.Measured
    verified: str


def spread(messages: list[CorpusMessage]) -> dict[tuple[str, ...], list[CorpusMessage]]:
    out: dict[tuple[str, ...], list[CorpusMessage]] = {}
    start = 0
    for n, (path, share) in enumerate(FOLDERS.items()):
        stop = len(messages) if n == len(FOLDERS) - 1 else start + round(share * len(messages))
        out[path] = messages[start:stop]
        start = stop
    return out


@contextmanager
def links(src: DevServer, dst: DevServer, rtt_ms: float) -> Iterator[dict[str, tuple[int, int]]]:
    """Source and destination ports for each link."""
    with ExitStack() as stack:
        yield {
            "loopback": (src.port, dst.port),
            "proxy 0 ms": (
                stack.enter_context(slow_link(src.port, 0)),
                stack.enter_context(slow_link(dst.port, 0)),
            ),
            f"{rtt_ms:g} ms": (
                stack.enter_context(slow_link(src.port, rtt_ms)),
                stack.enter_context(slow_link(dst.port, rtt_ms)),
            ),
        }


def mailmover_command(
    ports: tuple[int, int], src_user: str, dst_user: str, state: Path, connections: int | None
) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "mailmover",
        "copy",
        f"imap://{src_user}@127.0.0.1:{ports[0]}?tls=none",
        f"imap://{dst_user}@127.0.0.1:{ports[1]}?tls=none",
        "--state",
        str(state),
        "--json",
    ]
    if connections is not None:
        command += ["--connections", str(connections)]
    return command


def check_mailmover(result: measure.Measured, expected: int) -> None:
    if result.returncode != 0:
        raise RuntimeError(f"mailmover exited {result.returncode}: {result.stderr[-2000:]}")
    report = json.loads(result.stdout.strip().splitlines()[-1])
    if report.get("copied") != expected or report.get("failures"):
        raise RuntimeError(f"mailmover report: copied {report.get('copied')} of {expected}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--total-mb", type=float, default=100.0)
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--rtt-ms", type=float, default=50.0)
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the best time counts")
    parser.add_argument("--no-mbsync", action="store_true", help="skip the mbsync runs")
    args = parser.parse_args()
    print_machine()
    print(f"peak RSS measured by {measure.METHOD}; MB = 10^6 bytes")

    slow = f"{args.rtt_ms:g} ms"
    runs = [
        Run("mailmover", "loopback"),
        Run("mailmover", "loopback", 1),
        Run("mailmover", "proxy 0 ms"),
        Run("mailmover", slow),
        Run("mailmover", slow, 1),
    ]
    if not args.no_mbsync and shutil.which("mbsync"):
        runs += [Run("mbsync", "loopback"), Run("mbsync", slow)]

    start = time.perf_counter()
    messages = bulk(args.count, seed=args.seed, total_bytes=int(args.total_mb * 1e6))
    folders = spread(messages)
    total = sum(len(m.raw) for m in messages)
    print(
        f"\ncorpus: {len(messages)} messages, {total / 1e6:.1f} MB in {len(folders)} folders"
        f" ({', '.join(f'{p[0]} {len(m)}' for p, m in folders.items())}),"
        f" made in {time.perf_counter() - start:.1f} s"
    )
    src_pw = secrets.token_urlsafe(12)
    with (
        DevServer({"source": src_pw}, layout="fs") as src,
        DevServer(layout="maildir++") as dst,
        tempfile.TemporaryDirectory(prefix="mm-copy-bench-") as tmp,
    ):
        start = time.perf_counter()
        write_folders(src, "source", folders)
        print(f"written into the source Maildir in {time.perf_counter() - start:.1f} s")
        seconds, counts = index(src.port, "source", src_pw)
        print(f"Dovecot indexed the source (EXAMINE + FETCH 1:* FLAGS) in {seconds:.1f} s")
        assert sum(counts.values()) == len(messages), counts
        start = time.perf_counter()
        expected, _ = read_account(src.port, "source", src_pw)
        print(f"source read back with imaplib in {time.perf_counter() - start:.1f} s")

        figures: list[Figures] = []
        users = (f"dest{n}" for n in range(1, 10_000))
        with links(src, dst, args.rtt_ms) as ports_of:
            # Rounds of every run in turn, so that load from elsewhere on a shared
            # machine spreads over all of them instead of spoiling one.
            for round_ in range(1, args.repeat + 1):
                for run in runs:
                    dst_user, dst_pw = next(users), secrets.token_urlsafe(12)
                    dst.add_user(dst_user, dst_pw)
                    ports = ports_of[run.link]
                    work = Path(tmp) / dst_user
                    if run.tool == "mailmover":
                        command = mailmover_command(
                            ports, "source", dst_user, work.with_suffix(".db"), run.connections
                        )
                        env = {
                            "MAILMOVER_SOURCE_PASSWORD": src_pw,
                            "MAILMOVER_DEST_PASSWORD": dst_pw,
                        }
                        result = measure.run(command, env=env, timeout=3600, idle_timeout=300)
                        check_mailmover(result, len(messages))
                    else:
                        config = write_config(
                            work, (ports[0], "source", src_pw), (ports[1], dst_user, dst_pw)
                        )
                        command = ["mbsync", "-q", "-c", str(config), "-a"]
                        result = measure.run(command, timeout=3600, env={"HOME": tmp})
                        if result.returncode != 0:
                            raise RuntimeError(
                                f"mbsync exited {result.returncode}: {result.stderr}"
                            )
                    verified = compare(
                        expected, *read_account(dst.port, dst_user, dst_pw, strip_tuid=True)
                    )
                    figures.append(Figures(run, result, verified))
                print(f"round {round_} of {args.repeat} done", flush=True)

    print(
        f"\n{'tool':<29} {'link':<11} {'best s':>7} {'msgs/s':>7} {'MB/s':>6} {'median s':>8}"
        f" {'peak RSS MB':>11} {'CPU s':>6}  verified (every run)"
    )
    for run in runs:
        mine = [f for f in figures if f.run == run]
        best = min(f.measured.seconds for f in mine)
        peak = max(f.measured.peak_rss for f in mine)
        cpus = [f.measured.cpu_seconds for f in mine if f.measured.cpu_seconds is not None]
        cpu = f"{statistics.median(cpus):6.1f}" if cpus else "     -"
        verdicts = sorted({f.verified for f in mine}, key=lambda v: not v.startswith("DIFF"))
        print(
            f"{run.label:<29} {run.link:<11} {best:>7.1f} {len(messages) / best:>7.0f}"
            f" {total / 1e6 / best:>6.1f}"
            f" {statistics.median(f.measured.seconds for f in mine):>8.1f}"
            f" {peak / 1e6:>11.1f} {cpu}  {verdicts[0]}"
        )
    summary(figures, slow)


def compare(expected: snapshot.MailboxSnapshot, got: snapshot.MailboxSnapshot, tuids: int) -> str:
    """Whether ``got`` holds what ``expected`` does; else what differs."""
    notes = [f"an X-TUID header added to {tuids} messages"] if tuids else []
    if not expected.differences(got):
        return "identical" + (" except: " + ", ".join(notes) if notes else "")
    if not without_keywords(expected).differences(without_keywords(got)):
        lost = sum(
            n
            for c in expected.folders.values()
            for (_, flags, _), n in c.items()
            if any(not f.startswith("\\") for f in flags)
        )
        return "identical except: " + ", ".join([*notes, f"keywords lost on {lost} messages"])
    return f"DIFFERENT: {got.message_count()} messages; {expected.differences(got, limit=3)}"


def summary(figures: list[Figures], slow: str) -> None:
    def seconds(tool: str, link: str, connections: int | None = None) -> float | None:
        runs = [
            f.measured.seconds
            for f in figures
            if (f.run.tool, f.run.link, f.run.connections) == (tool, link, connections)
        ]
        return min(runs, default=None)

    print()
    for connections in (None, 1):
        fast = seconds("mailmover", "loopback", connections)
        far = seconds("mailmover", slow, connections)
        if fast and far:
            verdict = "met" if far / fast <= SLOWDOWN_TARGET else "NOT met"
            label = Run("mailmover", "", connections).label
            print(
                f"{label}: {slow} / loopback = {far / fast:.2f}"
                f" (target <= {SLOWDOWN_TARGET}: {verdict})"
            )
    zero, far = seconds("mailmover", "proxy 0 ms"), seconds("mailmover", slow)
    if zero and far:
        print(f"mailmover default: {slow} / proxy 0 ms = {far / zero:.2f}")
    fast, far = seconds("mbsync", "loopback"), seconds("mbsync", slow)
    if fast and far:
        print(f"mbsync: {slow} / loopback = {far / fast:.2f}")
    peak = max(f.measured.peak_rss for f in figures if f.run.tool == "mailmover")
    verdict = "met" if peak < RSS_TARGET else "NOT met"
    print(f"mailmover peak RSS, all runs: {peak / 1e6:.1f} MB (target < 150 MB: {verdict})")
    for verdict in sorted({f.verified for f in figures if f.run.tool == "mbsync"}):
        print(f"mbsync's copy: {verdict}")
    if any(f.verified.startswith("DIFFERENT") for f in figures):
        print("some copies were NOT correct: see the verified column")
        raise SystemExit(1)


if __name__ == "__main__":
    main()
