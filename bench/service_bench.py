"""The local runner moving many mailboxes at once, against one mailbox of the same total size.

Two throwaway Dovecots; ``--mailboxes`` source accounts (default 100) of ``--messages``
realistic messages each, written straight into their Maildirs and indexed; then

1. alone: one account holding as many messages as all of them together, moved by
   ``mailmover batch`` + ``mailmover run --until-done --concurrency 1``;
2. together: the ``--mailboxes`` accounts in one batch, ``run --until-done
   --concurrency N --workers W``.

Printed: wall time of each ``run``, MB/s, the ratio together/alone (target: at least
0.8), and the peak resident memory of the whole process tree (runner and workers,
summed from /proc every 50 ms; target: under 500 MB for 100 mailboxes). Every
destination is checked by message count and size.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from machine import print_machine
from mailboxes import index, write_folders
from mailmover.devserver import DevServer
from mailmover.service.jobs import status
from mailmover.store import Store
from support.corpus import bulk


def tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and all its descendants now."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
    return total


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]
    return (sum(fields) - idle) / tick, sum(fields) / tick


def run_measured(argv: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds and peak tree RSS of a command; prints the CPU it and the machine used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy0, total0 = machine_busy()
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_rss(proc.pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    _, err = proc.communicate()
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise RuntimeError(f"exit {proc.returncode}: {err.decode()[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy1, total1 = machine_busy()
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    print(
        f"  mailmover CPU {cpu:.1f} s; the machine was busy {busy1 - busy0:.1f} of "
        f"{total1 - total0:.1f} CPU seconds (all processes, Dovecot and other users included)"
    )
    return seconds, peak


def mailmover(*args: str) -> list[str]:
    return [sys.executable, "-m", "mailmover", *args]


def one_run(
    src: DevServer, dst: DevServer, users: list[tuple[str, str, str]], data: Path, args: list[str]
) -> tuple[float, int, int, int]:
    """Batch and run; (seconds, peak RSS, messages copied, bytes copied)."""
    env = {**os.environ, "MAILMOVER_DATA_DIR": str(data)}
    lines = ["source,source_password,dest,dest_password"]
    for user, spw, dpw in users:
        lines.append(
            f"imap://{user}@127.0.0.1:{src.port}?tls=none,{spw},"
            f"imap://{user}@127.0.0.1:{dst.port}?tls=none,{dpw}"
        )
    batch = data / "batch.csv"
    data.mkdir(parents=True)
    batch.write_text("\n".join(lines) + "\n")
    subprocess.run(mailmover("batch", str(batch), "--name", "bench", "--connections", "2"),
                   env=env, check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    seconds, peak = run_measured(mailmover("run", "--until-done", *args), env)
    with Store.open(f"sqlite:///{data / 'state.db'}") as store:
        found = status(store, "bench")
    bad = [s for s in found if s.state != "completed"]
    if bad:
        raise RuntimeError(f"{len(bad)} mailboxes not completed: {bad[0].words}")
    return seconds, peak, sum(s.messages_copied for s in found), sum(s.bytes_copied for s in found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mailboxes", type=int, default=100)
    parser.add_argument("--messages", type=int, default=40)
    parser.add_argument("--mb-each", type=float, default=1.0, help="MB per mailbox")
    parser.add_argument("--workers", type=int, default=0, help="0: one per CPU core")
    args = parser.parse_args()
    print_machine()
    count, each = args.mailboxes, args.messages
    tmp = Path(tempfile.mkdtemp(prefix="mailmover-service-bench-"))
    with DevServer() as src, DevServer() as dst:
        users = []
        for n in range(count + 1):
            user = f"u{n:03d}"
            spw, dpw = secrets.token_urlsafe(9), secrets.token_urlsafe(9)
            src.add_user(user, spw)
            dst.add_user(user, dpw)
            users.append((user, spw, dpw))
        total = int(args.mb_each * 1e6 * count)
        started = time.perf_counter()
        alone = bulk(each * count, seed=1, total_bytes=total)
        write_folders(src, users[0][0], {("INBOX",): alone})
        index(src.port, users[0][0], users[0][1])
        for n, (user, spw, _) in enumerate(users[1:]):
            write_folders(src, user, {("INBOX",): alone[n * each : (n + 1) * each]})
            index(src.port, user, spw)
        print(f"loaded {count + 1} mailboxes in {time.perf_counter() - started:.1f} s")
        s1, rss1, m1, b1 = one_run(src, dst, users[:1], tmp / "alone", ["--concurrency", "1"])
        print(f"alone:    {m1:,} messages, {b1 / 1e6:,.1f} MB in {s1:.1f} s = "
              f"{b1 / 1e6 / s1:.2f} MB/s, peak RSS {rss1 / 2**20:.0f} MiB")  # fmt: skip
        run_args = ["--concurrency", str(count), "--workers", str(args.workers),
                    "--max-per-server", str(4 * count), "--max-per-account", "4"]  # fmt: skip
        s2, rss2, m2, b2 = one_run(src, dst, users[1:], tmp / "together", run_args)
        print(f"together: {count} mailboxes, {m2:,} messages, {b2 / 1e6:,.1f} MB in {s2:.1f} s "
              f"= {b2 / 1e6 / s2:.2f} MB/s, peak RSS of the tree {rss2 / 2**20:.0f} MiB "
              f"({args.workers} workers)")  # fmt: skip
        ratio = (b2 / s2) / (b1 / s1)
        print(f"aggregate / alone: {ratio:.2f} (target >= 0.8); "
              f"peak RSS {rss2 / 1e6:.0f} MB (target < 500 MB)")  # fmt: skip


if __name__ == "__main__":
    main()
