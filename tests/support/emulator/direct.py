"""A plain IMAP connection of the emulator's own to Dovecot, one command at a time."""

from __future__ import annotations

import asyncio
import contextlib
import itertools

from support.emulator.framing import Frame, ResponseFramer

_CHUNK = 64 * 1024


class DirectError(Exception):
    """Dovecot refused a command of the emulator's own."""


class Direct:
    """Logged in with the same credentials as a client session; used for bookkeeping."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._framer = ResponseFramer()
        self._frames: list[Frame] = []
        self._tags = (f"d{n}" for n in itertools.count(1))

    @property
    def connected(self) -> bool:
        return self._writer is not None and not self._writer.transport.is_closing()

    async def open(self, login: bytes) -> None:
        """Connect, read the greeting and log in with ``login`` (a command without tag)."""
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        await self._next()
        await self.run(login)

    async def run(self, line: bytes, *, check: bool = True) -> tuple[Frame, list[Frame]]:
        """The tagged response and the untagged data of one command."""
        assert self._writer is not None
        tag = next(self._tags)
        self._writer.write(tag.encode() + b" " + line + b"\r\n")
        await self._writer.drain()
        untagged: list[Frame] = []
        while True:
            frame = await self._next()
            if frame.tag == tag:
                if check and frame.status != "OK":
                    what = line.split(b" ", 1)[0].decode("ascii", "replace")
                    raise DirectError(f"{what}: {frame.lines[0].decode(errors='replace')}")
                return frame, untagged
            untagged.append(frame)

    async def _next(self) -> Frame:
        assert self._reader is not None
        while not self._frames:
            data = await self._reader.read(_CHUNK)
            if not data:
                raise ConnectionResetError("Dovecot closed the emulator's own connection")
            self._frames += self._framer.feed(data)
        return self._frames.pop(0)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
            self._writer = None
