"""The fleet on this machine: 1, 2 and 3 ``mailmover worker`` processes against the local runner.

A throwaway PostgreSQL cluster (tests/support/postgres.py) and Dovecots; ``--mailboxes``
source accounts (default 30) of ``--messages`` realistic messages each. For each
configuration, a fresh job database and a fresh destination Dovecot, then the same batch:

* ``run W``: the local runner, ``mailmover run --until-done --concurrency W*C``;
* ``fleet W``: W ``mailmover worker --concurrency C`` processes, timed from the batch
  (which queues the tasks) until every mailbox is completed.

Printed side by side: wall seconds, MB/s, peak resident memory of the process tree(s),
and the CPU the machine spent: on a machine of two cores the servers, PostgreSQL and
mailmover share them, which is what binds first. Every mailbox must end completed.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from cryptography.fernet import Fernet

from machine import print_machine
from mailboxes import index, write_folders
from mailmover.devserver import DevServer
from mailmover.service.jobs import status
from mailmover.store import Store
from service_bench import machine_busy, mailmover, tree_rss
from support.corpus import bulk
from support.postgres import PostgresCluster


def batch_file(
    path: Path, src: DevServer, dst: DevServer, users: list[tuple[str, str, str]]
) -> Path:
    lines = ["source,source_password,dest,dest_password"]
    for user, spw, dpw in users:
        lines.append(
            f"imap://{user}@127.0.0.1:{src.port}?tls=none,{spw},"
            f"imap://{user}@127.0.0.1:{dst.port}?tls=none,{dpw}"
        )
    path.write_text("\n".join(lines) + "\n")
    return path


def completed(url: str) -> tuple[int, int, int]:
    """(mailboxes completed, all mailboxes, bytes copied) of the job."""
    with Store.open(url) as store:
        found = status(store, "bench")
    done = sum(1 for s in found if s.state == "completed")
    return done, len(found), sum(s.bytes_copied for s in found)


class Peak:
    """The peak resident memory of some process trees, sampled every 50 ms."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.peak = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample)
        self._thread.start()

    def _sample(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, sum(tree_rss(p) for p in self.pids))
            time.sleep(0.05)

    def stop(self) -> int:
        self._done.set()
        self._thread.join()
        return self.peak


def one(
    mode: str,
    workers: int,
    each: int,
    pg: PostgresCluster,
    src: DevServer,
    users: list[tuple[str, str, str]],
    tmp: Path,
) -> None:
    url = pg.fresh_url(migrated=True)
    data = tmp / f"{mode}{workers}"
    data.mkdir()
    env = {**os.environ, "MAILMOVER_DATA_DIR": str(data), "MAILMOVER_DATABASE_URL": url,
           "MAILMOVER_SECRET_KEY": Fernet.generate_key().decode()}  # fmt: skip
    with DevServer() as dst:
        for user, _, dpw in users:
            dst.add_user(user, dpw)
        csv = batch_file(data / "batch.csv", src, dst, users)
        busy0, total0 = machine_busy()
        procs: list[subprocess.Popen[bytes]] = []
        if mode == "fleet":  # the workers wait first; the batch queues the tasks
            procs = [
                subprocess.Popen(mailmover("worker", "--concurrency", str(each)), env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                for _ in range(workers)
            ]  # fmt: skip
            time.sleep(3)  # started and listening
        peak = Peak([p.pid for p in procs])
        start = time.perf_counter()
        subprocess.run(mailmover("batch", str(csv), "--name", "bench", "--connections", "2"),
                       env=env, check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        if mode == "run":
            runner = subprocess.Popen(
                mailmover("run", "--until-done", "--concurrency", str(workers * each)),
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            peak.pids.append(runner.pid)
            runner.wait()
        else:
            while completed(url)[0] < len(users):
                time.sleep(0.2)
        seconds = time.perf_counter() - start
        rss = peak.stop()
        busy1, total1 = machine_busy()
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(90)
        done, count, size = completed(url)
    pg.drop(url)
    if done != count:
        raise RuntimeError(f"{mode} {workers}: {count - done} mailboxes not completed")
    label = f"{mode} {workers} x {each}"
    print(f"{label:14} {count} mailboxes, {size / 1e6:7.1f} MB in {seconds:6.1f} s = "
          f"{size / 1e6 / seconds:6.2f} MB/s, peak RSS {rss / 2**20:5.0f} MiB, machine busy "
          f"{busy1 - busy0:5.1f} of {total1 - total0:5.1f} CPU s", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mailboxes", type=int, default=30)
    parser.add_argument("--messages", type=int, default=40)
    parser.add_argument("--mb-each", type=float, default=1.0, help="MB per mailbox")
    parser.add_argument("--concurrency", type=int, default=4, help="mailboxes per worker")
    parser.add_argument("--max-workers", type=int, default=3)
    args = parser.parse_args()
    print_machine()
    tmp = Path(tempfile.mkdtemp(prefix="mailmover-fleet-bench-"))
    with PostgresCluster() as pg, DevServer() as src:
        users = []
        for n in range(args.mailboxes):
            user = f"u{n:03d}"
            spw, dpw = secrets.token_urlsafe(9), secrets.token_urlsafe(9)
            src.add_user(user, spw)
            users.append((user, spw, dpw))
        total = int(args.mb_each * 1e6 * args.mailboxes)
        mail = bulk(args.messages * args.mailboxes, seed=1, total_bytes=total)
        each = args.messages
        for n, (user, spw, _) in enumerate(users):
            write_folders(src, user, {("INBOX",): mail[n * each : (n + 1) * each]})
            index(src.port, user, spw)
        for workers in range(1, args.max_workers + 1):
            one("run", workers, args.concurrency, pg, src, users, tmp)
            one("fleet", workers, args.concurrency, pg, src, users, tmp)


if __name__ == "__main__":
    main()
