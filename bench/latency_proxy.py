"""A TCP proxy that adds round-trip latency, for benchmarks over a simulated slow link.

    python bench/latency_proxy.py 127.0.0.1:1143 --rtt-ms 50      # forward until Ctrl-C
    python bench/latency_proxy.py --measure --rtt-ms 50            # print what it adds

The proxy itself lives in tests/support/proxy.py; ``--measure`` runs it against
a local echo server and prints the round trip and the bandwidth with and
without it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.proxy import Proxy

BULK = 256 * 1024 * 1024


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(256 * 1024):
        writer.write(data)
        await writer.drain()
    writer.close()


async def _sink(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    total = 0
    while data := await reader.read(256 * 1024):
        total += len(data)
    writer.write(str(total).encode())
    await writer.drain()
    writer.close()


async def _round_trips(port: int, count: int = 30) -> list[float]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    times = []
    for _ in range(count):
        start = time.perf_counter()
        writer.write(b"ping\r\n")
        await reader.readexactly(6)
        times.append(time.perf_counter() - start)
    writer.close()
    return times


async def _bandwidth(port: int, size: int = BULK) -> float:
    """Bytes per second pushed one way and confirmed by the far end."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    block = os.urandom(1024 * 1024)
    start = time.perf_counter()
    for _ in range(size // len(block)):
        writer.write(block)
        await writer.drain()
    writer.write_eof()
    received = int(await reader.read())
    elapsed = time.perf_counter() - start
    writer.close()
    assert received == size, received
    return size / elapsed


async def measure(rtt_ms: float) -> None:
    echo = await asyncio.start_server(_echo, "127.0.0.1", 0)
    sink = await asyncio.start_server(_sink, "127.0.0.1", 0)
    echo_port = echo.sockets[0].getsockname()[1]
    sink_port = sink.sockets[0].getsockname()[1]
    async with (
        echo,
        sink,
        Proxy("127.0.0.1", echo_port, delay_ms=rtt_ms / 2) as slow_echo,
        Proxy("127.0.0.1", sink_port, delay_ms=rtt_ms / 2) as slow_sink,
        Proxy("127.0.0.1", sink_port) as plain_sink,
    ):
        direct = statistics.median(await _round_trips(echo_port))
        proxied = statistics.median(await _round_trips(slow_echo.port))
        print(f"round trip: direct {direct * 1000:.2f} ms, through proxy {proxied * 1000:.2f} ms")
        print(f"  added {(proxied - direct) * 1000:.2f} ms for --rtt-ms {rtt_ms:g}")
        for label, port in [
            ("direct", sink_port),
            ("proxy, no delay", plain_sink.port),
            (f"proxy, {rtt_ms:g} ms", slow_sink.port),
        ]:
            rate = await _bandwidth(port)
            print(f"bandwidth {label:>16}: {rate / 1e6:8.1f} MB/s ({BULK >> 20} MiB)")


async def serve(target: str, rtt_ms: float, port: int) -> None:
    host, _, target_port = target.rpartition(":")
    async with Proxy(host or "127.0.0.1", int(target_port), delay_ms=rtt_ms / 2, port=port) as p:
        print(f"127.0.0.1:{p.port} -> {target} (+{rtt_ms:g} ms round trip)", flush=True)
        await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", nargs="?", help="host:port to forward to")
    parser.add_argument("--rtt-ms", type=float, default=50.0, help="added round trip (ms)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: free)")
    parser.add_argument("--measure", action="store_true", help="measure what the proxy adds")
    args = parser.parse_args()
    if args.measure:
        asyncio.run(measure(args.rtt_ms))
    elif args.target:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve(args.target, args.rtt_ms, args.port))
    else:
        parser.error("give a target host:port, or --measure")


if __name__ == "__main__":
    main()
