"""An asyncio TCP proxy on 127.0.0.1 that adds latency and injects faults.

Latency: every chunk read in one direction is written ``delay_ms`` later, while
reading goes on, so order and throughput are kept and each round trip grows by
``2 × delay_ms``.

Faults, armed from the test while connections run: ``cut_after`` forwards N
more bytes in a direction and then closes both sides; ``stall_after`` forwards
N more bytes and then nothing more in that direction, keeping the connection
open; ``close_connections`` drops every connection (or one) now. Bytes are counted
per connection from when the fault is armed (or the connection opened); a fault
fires when its N-th byte has gone through (N = 0: when data next arrives), once,
on the first connection to get there, unless ``every_connection`` is set.

A :class:`Network` models the link itself and may be shared by several proxies
(a source and a destination behind the same line): ``rate`` caps the bytes per
second in each direction, all connections together, with a sender held back
once a fraction of a second of data waits on the line; ``cut_every`` cuts a
connection at random points (seeded) on average every N bytes of traffic, both
directions and all connections counted together, inside literals or not, for
as long as the network is used.

A man in the middle: ``tap(connection, direction, data)``, when set, sees every
chunk read (``connection`` numbers the accepted connections from 1) and returns
the bytes to pass on instead, so a test can watch the traffic or rewrite it.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from enum import Enum
from types import TracebackType
from typing import Any, Literal, Self

Direction = Literal["to_server", "to_client"]
Tap = Callable[[int, Direction, bytes], bytes]

_CHUNK = 64 * 1024
#: chunks held per direction while they wait out the delay (bounds memory, not speed)
_QUEUE_CHUNKS = 1024


class _Fault(Enum):
    CUT = "cut"
    STALL = "stall"


_EOF = object()


@dataclass(eq=False)
class _Rule:
    kind: _Fault
    direction: Direction
    nbytes: int
    every_connection: bool
    #: bytes each pipe had already forwarded when the rule was armed
    baselines: dict[_Pipe, int] = field(default_factory=dict)


class Network:
    """The line between the client and the servers: a bandwidth cap and steady cuts."""

    #: seconds of data a direction may have waiting on the line before senders are held
    BUFFER = 0.05

    def __init__(
        self, *, rate: float | None = None, cut_every: float | None = None, seed: int = 0
    ) -> None:
        if rate is not None and rate <= 0:
            raise ValueError("rate must be positive")
        if cut_every is not None and cut_every <= 0:
            raise ValueError("cut_every must be positive")
        #: bytes per second in each direction; None: no cap
        self.rate = rate
        self.cut_every = cut_every
        self._rng = random.Random(seed)
        self._free: dict[Direction, float] = {"to_server": 0.0, "to_client": 0.0}
        self._until_cut = self._draw()
        #: connections cut by ``cut_every`` so far, by the direction of the byte cut at
        self.cuts: dict[Direction, int] = {"to_server": 0, "to_client": 0}
        #: bytes carried, both directions, since the network was made
        self.traffic = 0

    def _draw(self) -> float:
        return self._rng.expovariate(1 / self.cut_every) if self.cut_every else float("inf")

    def cut_within(self, size: int, direction: Direction = "to_client") -> int | None:
        """Bytes of the next ``size`` that pass before a steady cut, or None: all pass."""
        if self.cut_every is None:
            self.traffic += size
            return None
        if size < self._until_cut:
            self._until_cut -= size
            self.traffic += size
            return None
        head = int(self._until_cut)
        self.traffic += head
        self.cuts[direction] += 1
        self._until_cut = self._draw()
        return head

    def pace(self, direction: Direction, size: int, now: float) -> tuple[float, float]:
        """When ``size`` bytes sent now have crossed the line, and how long the sender
        should wait before sending more."""
        if self.rate is None:
            return now, 0.0
        done = max(now, self._free[direction]) + size / self.rate
        self._free[direction] = done
        return done, max(0.0, done - now - self.BUFFER)


class Proxy:
    """Forwards connections on ``host:port`` (``port`` 0: a free one) to the target."""

    def __init__(
        self,
        target_host: str,
        target_port: int,
        *,
        delay_ms: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
        network: Network | None = None,
        rate: float = 0.0,
    ) -> None:
        self.target_host = target_host
        self.target_port = target_port
        #: one-way delay added in each direction; takes effect for data read after a change
        self.delay_ms = delay_ms
        self.host = host
        self._port = port
        #: the line this proxy's connections share (bandwidth, steady cuts)
        self.network = network or Network()
        #: bytes per second each direction of each connection forwards at most (0: no limit)
        self.rate = rate
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._rules: list[_Rule] = []
        self._closing = False
        #: connections accepted so far
        self.accepted = 0
        #: the most connections open at once so far
        self.peak_connections = 0
        #: bytes passed on (or waiting out the delay) per direction, all connections together
        self.bytes_forwarded: dict[Direction, int] = {"to_server": 0, "to_client": 0}
        #: sees (and may rewrite) every chunk read; see the module's docstring
        self.tap: Tap | None = None

    async def start(self) -> Self:
        """Start listening."""
        self._server = await asyncio.start_server(self._handle, self.host, self._port)
        self._port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        """Stop listening and drop every connection."""
        self._closing = True
        if self._server is not None:
            self._server.close()
        self.close_connections()
        # Dropped connections end their handlers; cancelling them instead would make
        # asyncio's streams log the CancelledError.
        if self._handlers:
            await asyncio.wait(self._handlers, timeout=5)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def port(self) -> int:
        """The port clients connect to."""
        if self._server is None:
            raise RuntimeError("the proxy is not started")
        return self._port

    @property
    def open_connections(self) -> int:
        """Connections currently being forwarded."""
        return len(self._links)

    # -- faults ------------------------------------------------------------------------

    def cut_after(
        self, nbytes: int, direction: Direction = "to_client", *, every_connection: bool = False
    ) -> None:
        """Forward ``nbytes`` more bytes in ``direction``, then close both sides."""
        self._arm(_Fault.CUT, nbytes, direction, every_connection)

    def stall_after(
        self, nbytes: int, direction: Direction = "to_client", *, every_connection: bool = False
    ) -> None:
        """Forward ``nbytes`` more bytes in ``direction``, then stop forwarding that way."""
        self._arm(_Fault.STALL, nbytes, direction, every_connection)

    def clear_faults(self) -> None:
        """Disarm the faults that have not fired (stalled connections stay stalled)."""
        self._rules.clear()

    def close_connections(self, number: int | None = None) -> None:
        """Drop every open connection now (or the one ``number``, as ``tap`` numbers them)."""
        for link in list(self._links):
            if number is None or link.number == number:
                link.abort()

    def _arm(self, kind: _Fault, nbytes: int, direction: Direction, every: bool) -> None:
        if nbytes < 0:
            raise ValueError("nbytes must not be negative")
        rule = _Rule(kind, direction, nbytes, every)
        for link in self._links:
            pipe = link.pipes[direction]
            rule.baselines[pipe] = pipe.count
        self._rules.append(rule)

    def _fault_for(self, pipe: _Pipe, incoming: int) -> tuple[_Rule, int] | None:
        """The rule this chunk triggers on ``pipe`` and how much of it goes first."""
        for rule in self._rules:
            if rule.direction != pipe.direction:
                continue
            sent = pipe.count - rule.baselines.get(pipe, 0)
            if sent + incoming >= rule.nbytes:
                if not rule.every_connection:
                    self._rules.remove(rule)
                return rule, max(0, rule.nbytes - sent)
        return None

    # -- connections -------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self.accepted += 1
        number = self.accepted
        try:
            try:
                target = await asyncio.open_connection(self.target_host, self.target_port)
            except OSError:
                writer.transport.abort()
                return
            if self._closing:
                writer.transport.abort()
                target[1].transport.abort()
                return
            link = _Link(self, (reader, writer), target, number)
            self._links.add(link)
            self.peak_connections = max(self.peak_connections, len(self._links))
            try:
                await link.run()
            finally:
                self._links.discard(link)
        finally:
            self._handlers.discard(task)


class _Link:
    """One client connection and its connection to the target."""

    def __init__(
        self,
        proxy: Proxy,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        server: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        number: int,
    ) -> None:
        self.proxy = proxy
        self.number = number
        self.writers = (client[1], server[1])
        self.pipes: dict[Direction, _Pipe] = {
            "to_server": _Pipe(self, "to_server", client[0], server[1]),
            "to_client": _Pipe(self, "to_client", server[0], client[1]),
        }

    async def run(self) -> None:
        tasks = [asyncio.create_task(step) for p in self.pipes.values() for step in p.steps()]
        graceful = False
        try:
            await asyncio.gather(*tasks)
            graceful = True
        except (ConnectionError, OSError):
            pass
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for writer in self.writers:
                if graceful:
                    writer.close()
                elif not writer.transport.is_closing():
                    writer.transport.abort()

    def abort(self) -> None:
        """Close both sides now, except one already closing (it delivers what it holds)."""
        for writer in self.writers:
            if not writer.transport.is_closing():
                writer.transport.abort()


class _Pipe:
    """One direction of a link: reads chunks, holds each for the delay, writes it."""

    def __init__(
        self,
        link: _Link,
        direction: Direction,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.link = link
        self.direction = direction
        self.reader = reader
        self.writer = writer
        #: bytes passed on (or waiting out the delay) in this direction
        self.count = 0
        self.queue: asyncio.Queue[tuple[float, object]] = asyncio.Queue(_QUEUE_CHUNKS)

    def steps(self) -> tuple[Coroutine[Any, Any, None], ...]:
        return (self._read(), self._write())

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        proxy = self.link.proxy
        network = proxy.network
        while True:
            data = await self.reader.read(_CHUNK)
            now = loop.time()
            if not data:
                await self.queue.put((now + proxy.delay_ms / 1000, _EOF))
                return
            if proxy.tap is not None:
                data = proxy.tap(self.link.number, self.direction, data)
            fault = proxy._fault_for(self, len(data))
            kind = None
            if fault is not None:
                rule, head = fault
                data, kind = data[:head], rule.kind
            steady = network.cut_within(len(data), self.direction)
            if steady is not None:
                data, kind = data[:steady], _Fault.CUT
            self.count += len(data)
            proxy.bytes_forwarded[self.direction] += len(data)
            crossed, hold = network.pace(self.direction, len(data), now)
            due = crossed + proxy.delay_ms / 1000
            if data:
                await self.queue.put((due, data))
                if proxy.rate > 0:  # read no faster: the sender feels it (TCP backpressure)
                    await asyncio.sleep(len(data) / proxy.rate)
            if kind is not None:
                await self.queue.put((due, kind))
                if kind is _Fault.STALL:
                    await self._discard()
                return
            if hold:
                await asyncio.sleep(hold)

    async def _discard(self) -> None:
        # A stalled direction forwards nothing, but the sender giving up ends the link.
        while await self.reader.read(_CHUNK):
            pass
        self.link.abort()

    async def _write(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due, item = await self.queue.get()
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if item is _EOF:
                if self.writer.can_write_eof():
                    with contextlib.suppress(OSError):
                        self.writer.write_eof()
                return
            if item is _Fault.STALL:
                return
            if item is _Fault.CUT:
                self.writer.close()
                self.link.abort()
                return
            assert isinstance(item, bytes)
            self.writer.write(item)
            await self.writer.drain()
