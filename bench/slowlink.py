"""A simulated slow link: bench/latency_proxy.py run as its own process.

The proxy gets its own process (and so its own interpreter and core) so that
its forwarding does not compete for the GIL with the client being measured.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PROXY = Path(__file__).resolve().with_name("latency_proxy.py")


@contextmanager
def slow_link(port: int, rtt_ms: float, host: str = "127.0.0.1") -> Iterator[int]:
    """Forward a free loopback port to ``host:port`` adding ``rtt_ms`` per round trip;
    yield that port."""
    with shared_link([port], rtt_ms, host=host) as ports:
        yield ports[0]


@contextmanager
def shared_link(
    ports: list[int],
    rtt_ms: float,
    *,
    mbit: float | None = None,
    cut_every: float | None = None,
    seed: int = 0,
    host: str = "127.0.0.1",
) -> Iterator[list[int]]:
    """Forward a free loopback port to each of ``ports`` through one line: ``rtt_ms`` per
    round trip, ``mbit`` per direction for all together, a cut every ``cut_every`` bytes
    on average; yield the ports, in order."""
    cmd = [sys.executable, str(PROXY), *(f"{host}:{p}" for p in ports), "--rtt-ms", str(rtt_ms)]
    if mbit:
        cmd += ["--mbit", str(mbit)]
    if cut_every:
        cmd += ["--cut-every", str(cut_every), "--seed", str(seed)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        forwarded = []
        for _ in ports:
            line = proc.stdout.readline()
            # "127.0.0.1:PORT -> HOST:PORT (+50 ms round trip)"
            if not line:
                raise RuntimeError(f"latency proxy exited with {proc.wait()}")
            forwarded.append(int(line.split()[0].rpartition(":")[2]))
        yield forwarded
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
