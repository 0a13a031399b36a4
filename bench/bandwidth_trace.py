"""Where a copy through a bandwidth-bound line loses time: bytes per direction over time.

The mailbox of the bandwidth part of ``flaky_bench.py`` (600 messages, 66 MB,
five folders) is copied by ``mailmover copy`` (a child process) through one
line of 40 Mbit/s each way and 50 ms round trips, run in this process so that
its byte counters can be read every ``--step`` seconds. Printed: from the
moment the child starts, when the first body bytes come down, when the
download and the upload end, how long the upload stood idle while the
download ran, and a row per step with the MB/s each way.

    .venv/bin/python bench/bandwidth_trace.py [--step 0.5] [--rounds 1]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from copy_bench import mailmover_command, spread
from machine import print_machine
from mailboxes import index, write_folders
from mailmover.devserver import DevServer
from support.corpus import bulk
from support.proxy import Network, Proxy

#: bytes a direction must move within a step to count as busy (greetings, listings do not)
BUSY = 64 * 1024


async def traced_copy(
    src: DevServer, dst: DevServer, src_pw: str, user: str, tmp: Path, args: argparse.Namespace
) -> list[tuple[float, int, int]]:
    """Copy through the line; the (seconds, bytes down, bytes up) samples."""
    dst_pw = secrets.token_urlsafe(12)
    dst.add_user(user, dst_pw)
    network = Network(rate=args.mbit * 1e6 / 8)
    delay = args.rtt_ms / 2
    async with (
        Proxy("127.0.0.1", src.port, delay_ms=delay, network=network) as down,
        Proxy("127.0.0.1", dst.port, delay_ms=delay, network=network) as up,
    ):
        command = mailmover_command((down.port, up.port), "source", user, tmp / f"{user}.db", None)
        if args.trace:
            command += ["--trace", args.trace]
        env = {"MAILMOVER_SOURCE_PASSWORD": src_pw, "MAILMOVER_DEST_PASSWORD": dst_pw}
        samples: list[tuple[float, int, int]] = []
        start = time.perf_counter()
        print(f"child started at monotonic {time.monotonic():.3f}")
        proc = await asyncio.create_subprocess_exec(
            *command, env={**os.environ, **env}, stdout=asyncio.subprocess.PIPE
        )
        waiting = asyncio.ensure_future(proc.communicate())
        while not waiting.done():
            samples.append(
                (
                    time.perf_counter() - start,
                    down.bytes_forwarded["to_client"],
                    up.bytes_forwarded["to_server"],
                )
            )
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(waiting), args.step)
        out, _ = await waiting
        end = time.perf_counter() - start
        samples.append((end, down.bytes_forwarded["to_client"], up.bytes_forwarded["to_server"]))
        report = json.loads(out.decode().strip().splitlines()[-1])
        print(f"exit {proc.returncode}, copied {report.get('copied')}, {end:.2f} s")
        return samples


def summarise(samples: list[tuple[float, int, int]], step: float) -> None:
    total_down, total_up = samples[-1][1], samples[-1][2]

    def first(index: int, threshold: float) -> float:
        return next(t for t, *moved in samples if moved[index - 1] >= threshold)

    print(f"first 64 KiB down at {first(1, BUSY):.2f} s, up at {first(2, BUSY):.2f} s")
    print(f"download 99% at {first(1, 0.99 * total_down):.2f} s,"
          f" upload 99% at {first(2, 0.99 * total_up):.2f} s")  # fmt: skip
    idle_up = 0.0
    print(f"{'t s':>6} {'down MB/s':>9} {'up MB/s':>8}")
    for (t0, d0, u0), (t1, d1, u1) in itertools.pairwise(samples):
        dt = t1 - t0
        if dt <= 0:
            continue
        if d1 < total_down and u1 - u0 < BUSY * dt / step and d1 > BUSY:
            idle_up += dt
        print(f"{t1:6.2f} {(d1 - d0) / dt / 1e6:9.2f} {(u1 - u0) / dt / 1e6:8.2f}")
    print(f"upload idle while the download ran: {idle_up:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--step", type=float, default=0.5)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--count", type=int, default=600)
    parser.add_argument("--total-mb", type=float, default=66.0)
    parser.add_argument("--mbit", type=float, default=40.0)
    parser.add_argument("--rtt-ms", type=float, default=50.0)
    parser.add_argument("--trace", help="the copy's protocol trace goes here")
    args = parser.parse_args()
    print_machine()
    messages = bulk(args.count, seed=args.seed, total_bytes=int(args.total_mb * 1e6))
    src_pw = secrets.token_urlsafe(12)
    with (
        DevServer({"source": src_pw}, layout="fs") as src,
        DevServer(layout="maildir++") as dst,
        tempfile.TemporaryDirectory(prefix="mm-bw-trace-") as tmp,
    ):
        write_folders(src, "source", spread(messages))
        index(src.port, "source", src_pw)
        for round_ in range(1, args.rounds + 1):
            print(f"\n== round {round_}")
            samples = asyncio.run(traced_copy(src, dst, src_pw, f"dest{round_}", Path(tmp), args))
            summarise(samples, args.step)


if __name__ == "__main__":
    main()
