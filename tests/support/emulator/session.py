"""One client connection through the emulator, and its own connection to Dovecot.

Two pumps run per session. The command pump reads the client's commands one
at a time and either streams each to Dovecot as it arrives (lines and literal
bytes untouched) or, when the profile asks, buffers the whole command first so
the profile can refuse, rewrite or answer it. A synchronising literal
(``{n}``) is only read once someone said ``+``: Dovecot for a streamed command
(its ``+`` is forwarded, and a tagged refusal instead ends the command), the
emulator for a buffered one. The response pump cuts Dovecot's output into
whole responses, routes tagged ones to their commands, and lets the profile
rewrite them before they reach the client.

A profile may need Dovecot's help in the middle of a session: ``barrier()``
waits until every forwarded command has completed, after which ``internal()``
runs a command of the emulator's own on the same connection (its responses
never reach the client, except EXISTS, EXPUNGE and RECENT).
"""

from __future__ import annotations

import asyncio
import itertools
from typing import TYPE_CHECKING

from support.emulator.command import Command, Refusal
from support.emulator.framing import Frame, ResponseFramer, literal_marker, strip_eol
from support.emulator.streams import Inbound, Outbound

if TYPE_CHECKING:
    from support.emulator.profile import Profile
    from support.emulator.server import Emulator

_CHUNK = 64 * 1024
#: commands after which both directions are opaque to the emulator when they succeed
_OPAQUE_AFTER = frozenset({"STARTTLS", "COMPRESS"})
#: untagged data that reaches the client even while an internal command runs
_UNSOLICITED = frozenset({"EXISTS", "EXPUNGE", "RECENT"})


class Session:
    """A client connection through the emulator."""

    def __init__(
        self, emulator: Emulator, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.emulator = emulator
        self.cin = Inbound(reader, self._count_in)
        self.cout = Outbound(writer, self._count_out)
        self.profile: Profile = emulator.profile_for(self)
        self.user: str | None = None
        self.authenticated = False
        self.inflight: dict[str, Command] = {}
        self.bytes_in = 0
        self.bytes_out = 0
        self._pending = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._awaiting: Command | None = None
        self._internal: Command | None = None
        self._tags = (f"emu{n}" for n in itertools.count(1))
        self._framer = ResponseFramer()
        self._opaque = False
        self._up_reader: asyncio.StreamReader | None = None
        self._up: asyncio.StreamWriter | None = None

    # -- life --------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            self._up_reader, self._up = await asyncio.open_connection(
                self.emulator.target_host, self.emulator.target_port
            )
        except OSError:
            self.cout.abort()
            return
        client = asyncio.create_task(self._command_pump())
        server = asyncio.create_task(self._response_pump())
        try:
            done, _ = await asyncio.wait({client, server}, return_when=asyncio.FIRST_COMPLETED)
            if server not in done and client.exception() is None:
                # The client is gone: Dovecot closes once it has read the end of stream.
                await asyncio.wait({server}, timeout=5)
            for task in (client, server):
                if task.done() and not task.cancelled():
                    _note(self.emulator, task.exception())
        finally:
            for task in (client, server):
                task.cancel()
            await asyncio.gather(client, server, return_exceptions=True)
            self.abort()

    def abort(self) -> None:
        """Drop both connections now."""
        self.cout.abort()
        if self._up is not None and not self._up.transport.is_closing():
            self._up.transport.abort()

    @property
    def up(self) -> asyncio.StreamWriter:
        assert self._up is not None
        return self._up

    # -- what profiles use -------------------------------------------------------------

    async def barrier(self) -> None:
        """Wait until every command forwarded for the client has completed."""
        await self._idle.wait()

    async def forward(self, cmd: Command, data: bytes | None = None) -> None:
        """Send a buffered command (or ``data`` in its place) to Dovecot for the client."""
        self._register(cmd)
        self.up.write(cmd.wire() if data is None else data)
        await self.up.drain()
        await self._after_forward(cmd)

    async def forward_alone(self, cmd: Command, data: bytes | None = None) -> Frame:
        """Forward with nothing else in flight before or during it; its tagged response."""
        await self.barrier()
        await self.forward(cmd, data)
        return await cmd.done

    async def internal(self, line: bytes) -> tuple[Frame, list[Frame]]:
        """Run ``line`` (no tag) on the session's Dovecot connection; call after barrier()."""
        if self._pending:
            raise RuntimeError("internal() while client commands are in flight")
        cmd = Command(next(self._tags), "", internal=True)
        cmd.state["untagged"] = []
        self.inflight[cmd.tag] = cmd
        self._internal = cmd
        self.up.write(cmd.tag.encode() + b" " + line + b"\r\n")
        await self.up.drain()
        frame = await cmd.done
        return frame, cmd.state["untagged"]

    async def send(self, data: bytes, *, then_deflate: bool = False) -> None:
        """Write to the client (whole responses only)."""
        await self.cout.write(data, then_deflate=then_deflate)

    async def reply(self, cmd: Command, text: bytes) -> None:
        """The tagged completion of a command the emulator answered itself."""
        await self.send(cmd.tag.encode() + b" " + text + b"\r\n")

    async def bye(self, text: bytes) -> None:
        """``* BYE text`` and the end of the session."""
        await self.send(b"* BYE " + text + b"\r\n")
        self.close()

    def close(self) -> None:
        """End the session once what was written has gone out."""
        self.cout.writer.close()
        self.up.close()

    # -- the command pump --------------------------------------------------------------

    async def _command_pump(self) -> None:
        while not self._opaque:
            line = await self.cin.readline()
            if not line:
                if self.up.can_write_eof():
                    self.up.write_eof()
                return
            cmd = Command.start(line)
            if cmd is None:
                self.up.write(line)  # not a command: Dovecot answers it with "* BAD"
            elif self.profile.buffers(self, cmd):
                await self._buffered(cmd, line)
            else:
                await self._streamed(cmd, line)
        data = await self.cin.read_some()
        while data:
            self.up.write(data)
            await self.up.drain()
            data = await self.cin.read_some()
        if self.up.can_write_eof():
            self.up.write_eof()

    async def _streamed(self, cmd: Command, line: bytes) -> None:
        self._register(cmd)
        while True:
            marker = literal_marker(strip_eol(line))
            if marker is not None and not marker[1]:
                self._awaiting = cmd
            self.up.write(line)
            if marker is None:
                break
            size, nonsync = marker
            if not nonsync:
                await self.up.drain()
                signal = await cmd.signals.get()
                self._awaiting = None
                if signal == "done":
                    return  # refused before the literal: the client does not send it
            while size:
                data = await self.cin.read_up_to(size)
                self.up.write(data)
                size -= len(data)
                await self.up.drain()
            line = await self.cin.readline()
            if not line:
                return
        await self.up.drain()
        await self._after_forward(cmd)

    async def _buffered(self, cmd: Command, line: bytes) -> None:
        cmd.lines.append(strip_eol(line))
        while True:
            refusal = self.profile.check(self, cmd)
            marker = literal_marker(cmd.lines[-1])
            if refusal is not None:
                await self._refuse(cmd, marker, refusal)
                return
            if marker is None:
                break
            size, nonsync = marker
            if not nonsync:
                await self.send(self.profile.continuation)
            cmd.literals.append(await self.cin.readexactly(size))
            line = await self.cin.readline()
            if not line:
                return
            cmd.lines.append(strip_eol(line))
        await self.profile.handle(self, cmd)

    async def _refuse(
        self, cmd: Command, marker: tuple[int, bool] | None, refusal: Refusal
    ) -> None:
        # RFC 7888 section 4: the literals of a refused command that did not wait for
        # "+" are on their way all the same, and must be read (and dropped).
        while marker is not None and marker[1]:
            await self.cin.readexactly(marker[0])
            marker = literal_marker(strip_eol(await self.cin.readline()))
        await self.barrier()
        if refusal.bye is not None:
            # as for LOGOUT (RFC 3501 section 6.1.3): the BYE, then the tagged reply
            await self.send(b"* BYE " + refusal.bye + b"\r\n")
        await self.reply(cmd, refusal.reply)
        if refusal.bye is not None:
            self.close()

    async def _after_forward(self, cmd: Command) -> None:
        if cmd.name in ("AUTHENTICATE", "IDLE"):
            while await cmd.signals.get() == "+":
                line = await self.cin.readline()
                if not line:
                    return
                self.profile.on_sasl(self, cmd, line)
                self.up.write(line)
                await self.up.drain()
                if cmd.name == "IDLE":
                    break  # DONE; the client may send commands before IDLE completes
            self._awaiting = None
        if cmd.name in _OPAQUE_AFTER:
            self._opaque = (await cmd.done).status == "OK"
        elif cmd.name in ("LOGIN", "AUTHENTICATE") and (await cmd.done).status == "OK":
            await self.profile.on_login(self)

    def _register(self, cmd: Command) -> None:
        self.inflight[cmd.tag] = cmd
        self._pending += 1
        self._idle.clear()
        if cmd.name in ("AUTHENTICATE", "IDLE"):
            self._awaiting = cmd

    # -- the response pump -------------------------------------------------------------

    async def _response_pump(self) -> None:
        assert self._up_reader is not None
        try:
            while data := await self._up_reader.read(_CHUNK):
                for frame in self._framer.feed(data):
                    await self._route(frame)
                    if self._opaque:
                        break
                if self._opaque:
                    rest = self._framer.rest()
                    if rest:
                        await self.send(rest)
                    while data := await self._up_reader.read(_CHUNK):
                        await self.send(data)
                    break
        finally:
            for cmd in list(self.inflight.values()):
                if not cmd.done.done():
                    cmd.done.set_exception(ConnectionResetError("Dovecot closed the connection"))
                    cmd.done.exception()  # retrieved: nobody may be waiting
                cmd.signals.put_nowait("done")
            self.inflight.clear()
        self.cout.writer.close()

    async def _route(self, frame: Frame) -> None:
        if frame.is_continuation:
            await self.send(frame.raw)
            if self._awaiting is not None:
                self._awaiting.signals.put_nowait("+")
            return
        tag = frame.tag
        cmd = self.inflight.pop(tag, None) if tag is not None else None
        if cmd is not None and cmd.internal:
            self._internal = None
            cmd.done.set_result(frame)
            return
        if cmd is not None:
            if cmd.name in ("LOGIN", "AUTHENTICATE") and frame.status == "OK":
                self.authenticated = True
            out = await self.profile.on_tagged(self, cmd, frame)
            if out:
                await self.send(out)
            self._opaque = cmd.name in _OPAQUE_AFTER and frame.status == "OK"
            cmd.done.set_result(frame)
            cmd.signals.put_nowait("done")
            self._pending -= 1
            if not self._pending:
                self._idle.set()
            return
        if self._internal is not None:
            self._internal.state["untagged"].append(frame)
            if frame.kind in _UNSOLICITED:
                await self.send(frame.raw)
            return
        out = await self.profile.on_untagged(self, frame)
        if out:
            await self.send(out)

    # -- accounting --------------------------------------------------------------------

    def _count_in(self, n: int) -> None:
        self.bytes_in += n
        if self.authenticated:
            self.profile.count(self, "up", n)

    def _count_out(self, n: int) -> None:
        self.bytes_out += n
        if self.authenticated:
            self.profile.count(self, "down", n)


def _note(emulator: Emulator, exc: BaseException | None) -> None:
    if exc is not None and not isinstance(exc, (ConnectionError, OSError, asyncio.CancelledError)):
        emulator.errors.append(exc)
