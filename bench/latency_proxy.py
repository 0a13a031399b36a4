"""A TCP proxy that adds round-trip latency, for benchmarks over a simulated slow link.

    python bench/latency_proxy.py 127.0.0.1:1143 --rtt-ms 50      # forward until Ctrl-C
    python bench/latency_proxy.py 127.0.0.1:1143 127.0.0.1:2143 --rtt-ms 50 --mbit 40
    python bench/latency_proxy.py --measure --rtt-ms 50 --mbit 40  # print what it adds

Several targets share one line: ``--mbit`` caps each direction for all of them
together (a source and a destination behind the same 40 Mbit/s link), and
``--cut-every`` cuts connections at seeded random points, on average every N
bytes of their traffic. One line is printed per target, in order:
``127.0.0.1:PORT -> HOST:PORT (...)``.

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

from support.proxy import Network, Proxy

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


async def measure(rtt_ms: float, mbit: float | None) -> None:
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
        Proxy("127.0.0.1", sink_port, delay_ms=rtt_ms / 2, network=_network(mbit)) as capped,
    ):
        direct = statistics.median(await _round_trips(echo_port))
        proxied = statistics.median(await _round_trips(slow_echo.port))
        print(f"round trip: direct {direct * 1000:.2f} ms, through proxy {proxied * 1000:.2f} ms")
        print(f"  added {(proxied - direct) * 1000:.2f} ms for --rtt-ms {rtt_ms:g}")
        for label, port in [
            ("direct", sink_port),
            ("proxy, no delay", plain_sink.port),
            (f"proxy, {rtt_ms:g} ms", slow_sink.port),
            *([(f"{rtt_ms:g} ms, {mbit:g} Mbit/s", capped.port)] if mbit else []),
        ]:
            rate = await _bandwidth(port)
            print(f"bandwidth {label:>16}: {rate / 1e6:8.1f} MB/s ({BULK >> 20} MiB)")


def _network(mbit: float | None, cut_every: float | None = None, seed: int = 0) -> Network:
    rate = mbit * 1e6 / 8 if mbit else None
    return Network(rate=rate, cut_every=cut_every, seed=seed)


async def serve(
    targets: list[str],
    rtt_ms: float,
    port: int,
    mbit: float | None,
    cut_every: float | None,
    seed: int,
) -> None:
    network = _network(mbit, cut_every, seed)
    async with contextlib.AsyncExitStack() as stack:
        for i, target in enumerate(targets):
            host, _, target_port = target.rpartition(":")
            p = await stack.enter_async_context(
                Proxy(
                    host or "127.0.0.1",
                    int(target_port),
                    delay_ms=rtt_ms / 2,
                    port=port + i if port else 0,
                    network=network,
                )
            )
            extra = f", {mbit:g} Mbit/s each way" if mbit else ""
            extra += f", a cut every {cut_every:,.0f} bytes on average" if cut_every else ""
            print(f"127.0.0.1:{p.port} -> {target} (+{rtt_ms:g} ms round trip{extra})")
        sys.stdout.flush()
        await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", help="host:port to forward to (several: one line)")
    parser.add_argument("--rtt-ms", type=float, default=50.0, help="added round trip (ms)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: free)")
    parser.add_argument("--mbit", type=float, help="bandwidth cap per direction (Mbit/s)")
    parser.add_argument("--cut-every", type=float, help="cut a connection every N bytes (mean)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the cut points")
    parser.add_argument("--measure", action="store_true", help="measure what the proxy adds")
    args = parser.parse_args()
    if args.measure:
        asyncio.run(measure(args.rtt_ms, args.mbit))
    elif args.targets:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(
                serve(args.targets, args.rtt_ms, args.port, args.mbit, args.cut_every, args.seed)
            )
    else:
        parser.error("give a target host:port, or --measure")


if __name__ == "__main__":
    main()
