"""Many small folders through a 50 ms link: ``mailmover copy``, then a rerun with nothing new.

``--count`` folders (default 2,000, named ``Client 0000`` …) of ``--per-folder``
small messages each (``bulk(count × per_folder, seed=5, size_dist="small")``)
are written straight into a source Dovecot's Maildir and indexed before
anything is timed. The copy goes to a fresh destination Dovecot, once per
``--list-index`` setting of its ``mailbox_list_index`` (Dovecot's default is
``yes``; its CREATE then costs more the more folders exist, see
create_scaling_bench.py), through one latency proxy in front of each server
(``--rtt-ms`` per round trip on every connection). Both runs of a setting use
the same state file and are measured as child processes (measure.py); each run
writes a protocol trace, from which the commands sent and the client's turns
(a connection sending after it has read a reply) are counted. Afterwards the
destination's folders are compared with the source (sizes, flags, dates).

    .venv/bin/python bench/many_folders_bench.py [--count 2000] [--list-index yes no]
        [--floor "create 1, stream to 3"]    # the server's floor, side by side

Targets (issue 8): first copy ≤ 30 s, rerun with nothing new ≤ 3 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import measure
from folders_floor_bench import WAYS, run_way
from machine import print_machine
from mailboxes import index, meta_key, metadata, write_folders
from mailmover.devserver import DevServer
from mailmover.imap.client import Message
from slowlink import slow_link
from support.corpus import CorpusMessage, bulk

FIRST_TARGET = 30.0
RERUN_TARGET = 3.0


def copy_command(src_port: int, dst_port: int, state: Path, trace: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "mailmover",
        "copy",
        f"imap://source@127.0.0.1:{src_port}?tls=none",
        f"imap://dest@127.0.0.1:{dst_port}?tls=none",
        "--state",
        str(state),
        "--trace",
        str(trace),
        "--json",
    ]


def copied(result: measure.Measured) -> int:
    if result.returncode != 0:
        raise RuntimeError(f"mailmover exited {result.returncode}: {result.stderr[-2000:]}")
    report = json.loads(result.stdout.strip().splitlines()[-1])
    if report.get("failures"):
        raise RuntimeError(f"mailmover reported {report['failures']} failures")
    return int(report["copied"])


def trace_counts(trace: Path) -> tuple[Counter[str], int, int]:
    """Commands sent by verb, client turns in all, and the most turns of one connection.

    A turn is a connection sending after it has read a reply since it last sent:
    on a link with a round trip of R, a connection's turns cost it at least R each.
    """
    verbs: Counter[str] = Counter()
    turns: Counter[str] = Counter()
    last: dict[str, str] = {}
    for line in trace.read_text(errors="replace").splitlines():
        fields = line.split(maxsplit=4)
        if len(fields) < 4 or fields[2] not in ("C:", "S:"):
            continue
        label, arrow = fields[1], fields[2]
        if arrow == "C:":
            if last.get(label) != "C:":
                turns[label] += 1
            words = fields[4].split() if len(fields) > 4 else ["?"]
            verbs[" ".join(words[:2] if words[0] == "UID" else words[:1])] += 1
        last[label] = arrow
    return verbs, sum(turns.values()), max(turns.values(), default=0)


def floor(way: str, conf: str, folders: dict[tuple[str], list[CorpusMessage]]) -> float:
    """Seconds ``way`` of folders_floor_bench.py takes for ``folders`` into a fresh
    destination (``conf``), printed."""
    password = secrets.token_urlsafe(12)
    ready = [
        (path[0], [Message(m.raw, sorted(m.flags), m.internaldate) for m in msgs])
        for path, msgs in folders.items()
    ]
    with DevServer({"dest": password}, extra_conf=conf) as dst:
        load = os.getloadavg()[0]
        created, seconds, refused = asyncio.run(run_way(dst.port, "dest", password, way, ready))
    print(
        f"floor, {way}: {seconds:.1f} s (CREATEs answered at {created:.1f} s,"
        f" {refused} refused; load {load:.1f})",
        flush=True,
    )
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=2000, help="folders")
    parser.add_argument("--per-folder", type=int, default=3, help="messages in each folder")
    parser.add_argument("--rtt-ms", type=float, default=50.0)
    parser.add_argument(
        "--list-index",
        nargs="+",
        choices=("yes", "no"),
        default=["yes", "no"],
        help="the destination's mailbox_list_index, one copy each",
    )
    parser.add_argument("--keep-traces", type=Path, help="copy the protocol traces here")
    parser.add_argument(
        "--floor",
        nargs="*",
        default=[],
        choices=sorted(WAYS),
        help="before each copy, these ways of folders_floor_bench.py into a fresh destination"
        " with the same setting (no latency, from memory), for a ratio side by side",
    )
    args = parser.parse_args()
    print_machine()
    print(f"peak RSS measured by {measure.METHOD}; MB = 10^6 bytes\n")

    messages = bulk(args.count * args.per_folder, seed=5, size_dist="small")
    folders = {
        (f"Client {i:04d}",): messages[i * args.per_folder : (i + 1) * args.per_folder]
        for i in range(args.count)
    }
    expected = {
        path[0]: Counter(meta_key(len(m.raw), m.flags, m.internaldate) for m in msgs)
        for path, msgs in folders.items()
    }
    total = sum(len(m.raw) for m in messages)
    print(
        f"{args.count:,} folders of {args.per_folder} messages: {len(messages):,} messages,"
        f" {total / 1e6:.1f} MB; link +{args.rtt_ms:g} ms per round trip\n"
    )
    src_pw, dst_pw = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
    failed = False
    with DevServer({"source": src_pw}) as src:
        write_folders(src, "source", folders)
        seconds, counts = index(src.port, "source", src_pw)
        print(f"Dovecot indexed the source (EXAMINE + FETCH 1:* FLAGS) in {seconds:.1f} s")
        if sum(1 for name, n in counts.items() if n) != args.count:
            raise RuntimeError(f"source holds {len(counts)} folders")
        for setting in args.list_index:
            conf = f"mailbox_list_index = {setting}\n"
            floors = [floor(way, conf, folders) for way in args.floor]
            with (
                DevServer({"dest": dst_pw}, extra_conf=conf) as dst,
                tempfile.TemporaryDirectory(prefix="mm-folders-bench-") as tmp,
                ExitStack() as stack,
            ):
                src_port = stack.enter_context(slow_link(src.port, args.rtt_ms))
                dst_port = stack.enter_context(slow_link(dst.port, args.rtt_ms))
                env = {"MAILMOVER_SOURCE_PASSWORD": src_pw, "MAILMOVER_DEST_PASSWORD": dst_pw}
                print(f"\ndestination mailbox_list_index = {setting}")
                print(
                    f"{'run':<20} {'seconds':>8} {'target':>7} {'peak RSS MB':>11} {'CPU s':>6}"
                    f" {'commands':>8} {'turns':>6} {'max/conn':>8} {'load':>5}  commands by verb"
                )
                for label, want, target in (
                    ("first copy", len(messages), FIRST_TARGET),
                    ("rerun, nothing new", 0, RERUN_TARGET),
                ):
                    load = os.getloadavg()[0]  # the machine is shared: say how busy it was
                    trace = Path(tmp) / f"trace-{len(label)}.txt"
                    command = copy_command(src_port, dst_port, Path(tmp) / "state.db", trace)
                    result = measure.run(command, env=env, timeout=3600, idle_timeout=600)
                    got = copied(result)
                    if got != want:
                        raise RuntimeError(f"{label}: copied {got}, expected {want}")
                    verbs, turns, most = trace_counts(trace)
                    if args.keep_traces:
                        args.keep_traces.mkdir(parents=True, exist_ok=True)
                        name = f"index-{setting}-{label.split(',')[0].replace(' ', '-')}.txt"
                        (args.keep_traces / name).write_bytes(trace.read_bytes())
                    cpu = f"{result.cpu_seconds:6.1f}" if result.cpu_seconds is not None else "-"
                    met = "met" if result.seconds <= target else "NOT met"
                    shown = ", ".join(f"{v} {n}" for v, n in verbs.most_common())
                    rss = result.peak_rss / 1e6
                    print(
                        f"{label:<20} {result.seconds:>8.1f} {met:>7} {rss:>11.1f} {cpu:>6}"
                        f" {sum(verbs.values()):>8} {turns:>6} {most:>8} {load:>5.1f}  {shown}",
                        flush=True,
                    )
                    if label == "first copy" and floors:
                        best = min(floors)
                        print(f"{'':<20} floor / first copy = {best / result.seconds:.2f}")
                start = time.perf_counter()
                got_meta = {k: c for k, c in metadata(dst.port, "dest", dst_pw).items() if c}
                same = got_meta == expected
                failed = failed or not same
                verdict = "identical" if same else f"DIFFERENT ({len(got_meta)} folders)"
                print(
                    f"destination {verdict} (sizes, flags, dates;"
                    f" {time.perf_counter() - start:.1f} s)"
                )
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
