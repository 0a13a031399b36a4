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
    proc = subprocess.Popen(
        [sys.executable, str(PROXY), f"{host}:{port}", "--rtt-ms", str(rtt_ms)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        # "127.0.0.1:PORT -> HOST:PORT (+50 ms round trip)"
        if not line:
            raise RuntimeError(f"latency proxy exited with {proc.wait()}")
        yield int(line.split()[0].rpartition(":")[2])
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
