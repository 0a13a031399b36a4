"""The client side of an emulated session: buffered reads and locked writes.

Either side can switch to COMPRESS=DEFLATE (RFC 4978) when the emulator
itself answers COMPRESS: the upstream link to Dovecot stays uncompressed.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable

_CHUNK = 64 * 1024


class Inbound:
    """Bytes from the client, read by line or by count."""

    def __init__(self, reader: asyncio.StreamReader, count: Callable[[int], None]) -> None:
        self._reader = reader
        self._count = count
        self._buf = bytearray()
        self._inflate: zlib._Decompress | None = None
        self.eof = False

    async def _fill(self) -> bool:
        data = await self._reader.read(_CHUNK)
        if not data:
            self.eof = True
            return False
        self._count(len(data))
        if self._inflate is not None:
            data = self._inflate.decompress(data)
        self._buf += data
        return True

    async def readline(self) -> bytes:
        """One line with its line end; what is left at end of stream; b"" at end of stream."""
        scan = 0
        while True:
            nl = self._buf.find(b"\n", scan)
            if nl >= 0:
                line = bytes(self._buf[: nl + 1])
                del self._buf[: nl + 1]
                return line
            scan = len(self._buf)
            if not await self._fill():
                line = bytes(self._buf)
                self._buf.clear()
                return line

    async def readexactly(self, size: int) -> bytes:
        """``size`` bytes; raises ConnectionResetError when the client leaves first."""
        while len(self._buf) < size:
            if not await self._fill():
                raise ConnectionResetError("the client closed in the middle of a literal")
        data = bytes(self._buf[:size])
        del self._buf[:size]
        return data

    async def read_up_to(self, size: int) -> bytes:
        """Between 1 and ``size`` bytes, as soon as some are there (for streaming literals)."""
        if not self._buf and not await self._fill():
            raise ConnectionResetError("the client closed in the middle of a literal")
        data = bytes(self._buf[:size])
        del self._buf[:size]
        return data

    async def read_some(self) -> bytes:
        """Whatever is buffered, or the next chunk; b"" at end of stream."""
        if not self._buf and not await self._fill():
            return b""
        data = bytes(self._buf)
        self._buf.clear()
        return data

    def start_inflate(self) -> None:
        """From now on the client's bytes are deflated (those already buffered too)."""
        self._inflate = zlib.decompressobj(-15)
        self._buf = bytearray(self._inflate.decompress(bytes(self._buf)))


class Outbound:
    """Bytes to the client, one whole response at a time."""

    def __init__(self, writer: asyncio.StreamWriter, count: Callable[[int], None]) -> None:
        self.writer = writer
        self._count = count
        self._lock = asyncio.Lock()
        self._deflate: zlib._Compress | None = None

    async def write(self, data: bytes, *, then_deflate: bool = False) -> None:
        """Send ``data`` whole; with ``then_deflate``, compress everything sent after it."""
        async with self._lock:
            if self._deflate is not None:
                data = self._deflate.compress(data) + self._deflate.flush(zlib.Z_SYNC_FLUSH)
            self._count(len(data))
            self.writer.write(data)
            if then_deflate:
                self._deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
            await self.writer.drain()

    def abort(self) -> None:
        if not self.writer.transport.is_closing():
            self.writer.transport.abort()
