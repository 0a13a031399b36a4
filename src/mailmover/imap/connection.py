"""One IMAP connection with several commands in flight (pipelining, as in mbsync).

A queue of commands not yet sent and a table of commands in flight, matched by
tag. The writer releases the next command only when the previous one does not
await a ``+`` continuation and the window is not full. One reader parses
responses and routes them: tagged completions by tag, FETCH data by UID (or
sequence number) to the command that asked for it, other untagged data to the
oldest command in flight that collects that kind. Two commands that would
collect the same kind of untagged data are never in flight together, so
routing cannot guess wrong; except across a ``behind`` barrier (a pipelined
SELECT or EXAMINE sent while the previous mailbox's commands are answered):
a server runs a command that changes the selected mailbox only once those
before it are done (RFC 3501 section 5.5), so their replies all come first and
the oldest command still in flight is the one they answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import zlib
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Protocol

from mailmover.errors import ConnectionLost, IMAPTimeout, MailmoverError, ProtocolError
from mailmover.imap.failures import error_for
from mailmover.imap.proto.parser import ResponseParser
from mailmover.imap.proto.responses import (
    Continuation,
    Fetch,
    MailboxStatus,
    Response,
    Tagged,
    Unreadable,
    Untagged,
    UntaggedStatus,
)
from mailmover.imap.proto.sequences import UidRange
from mailmover.imap.trace import ProtocolTrace, summarize_part

log = logging.getLogger(__name__)

_WRITE_CHUNK = 256 * 1024
_STATUS: frozenset[type] = frozenset({MailboxStatus})


@dataclass(slots=True)
class Result:
    """What a completed command returned."""

    tagged: Tagged
    untagged: list[Untagged] = field(default_factory=list)
    fetches: list[Fetch] = field(default_factory=list)


ContinuationHandler = Callable[[str], bytes | None]


class LiteralStream(Protocol):
    """The data of a command's last literal (``Announced``), written as it comes: exactly
    ``size`` bytes, or an error, which drops the connection so that the server never
    completes the command (an unfinished APPEND stores nothing)."""

    size: int

    def chunks(self) -> AsyncIterator[bytes | memoryview]: ...


@dataclass(eq=False)
class Command:
    """A serialised command and how to route its responses."""

    tag: str
    name: str
    parts: list[bytes]
    collects: frozenset[type] = frozenset()
    uids: UidRange | None = None
    seqs: UidRange | None = None
    status_mailbox: str | None = None
    barrier: bool = False  # nothing else in flight before or while it runs
    opens: bool = False  # a barrier that later commands may follow at once (pipelined SELECT)
    behind: bool = False  # an opening barrier sent without waiting for those in flight
    epoch: int = 0  # barriers queued up to this command: which mailbox it acts on
    secret: bool = False  # trace its name only
    on_continuation: ContinuationHandler | None = None
    on_fetch: Callable[[Fetch], None] | None = None
    after_ok: Callable[[], None] | None = None  # runs in the reader, before any later byte
    stream: LiteralStream | None = None  # written between the last two parts
    untagged: list[Untagged] = field(default_factory=list)
    fetches: list[Fetch] = field(default_factory=list)
    result: Result | None = None
    written: bool = False  # every byte of it was handed to the socket
    future: asyncio.Future[Result] = field(init=False)

    def conflicts(self, other: Command) -> bool:
        if self.barrier or (other.barrier and not other.opens):
            return True
        if self.epoch != other.epoch:  # a behind barrier between them orders their replies
            return False
        shared = self.collects & other.collects
        if shared == {MailboxStatus} and self.status_mailbox != other.status_mailbox:
            shared = frozenset()
        if shared:
            return True
        if self.on_fetch is not None and self.on_fetch is other.on_fetch:
            return False  # one handler takes the FETCH data of both, whichever gets it
        for mine, theirs in ((self.uids, other.uids), (self.seqs, other.seqs)):
            if mine and theirs and mine.overlaps(theirs):
                return True
        return False


class Connection:
    """Runs commands over a connected stream; see the module docstring."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        parser: ResponseParser,
        *,
        window: int = 64,
        read_timeout: float = 120.0,
        trace: ProtocolTrace | None = None,
        on_unsolicited: Callable[[Untagged], None] | None = None,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._parser = parser
        self.window = window
        self.read_timeout = read_timeout
        self._trace = trace
        self._on_unsolicited = on_unsolicited
        self._queue: deque[Command] = deque()
        self._inflight: dict[str, Command] = {}
        # Kept with _inflight, so that admitting a STATUS does not scan every command in
        # flight (2,000 pipelined STATUS would cost a second of CPU): barriers that hold
        # everything back, and the mailboxes of STATUS commands.
        self._fences = 0
        self._statuses: Counter[str | None] = Counter()
        self._epoch = 0
        self._wakeup = asyncio.Event()
        # the command whose "+" is awaited, and the future that receives it
        self._continuation: tuple[Command, asyncio.Future[str | None]] | None = None
        self._inflate: zlib._Decompress | None = None
        self._deflate: zlib._Compress | None = None
        self._error: MailmoverError | None = None
        self._bye: str | None = None
        self._closing = False
        self._last_io = asyncio.get_running_loop().time()
        self._tasks = [
            asyncio.create_task(self._read_loop(), name="imap-reader"),
            asyncio.create_task(self._write_loop(), name="imap-writer"),
        ]

    # -- public ------------------------------------------------------------------------

    @property
    def broken(self) -> MailmoverError | None:
        """The error that ended this connection, if one did."""
        return self._error

    def submit(self, command: Command) -> asyncio.Future[Result]:
        """Queue a command; the future resolves with its Result or raises its error."""
        command.future = asyncio.get_running_loop().create_future()
        self._epoch += command.barrier
        command.epoch = self._epoch
        if self._error is not None:
            command.future.set_exception(_unsent(self._error))
            command.future.exception()  # see _fail
        else:
            self._queue.append(command)
            self._wakeup.set()
        return command.future

    def start_compression(self) -> None:
        """Switch both directions to DEFLATE (RFC 4978); call right after COMPRESS's OK."""
        if self._parser.pending:
            raise ProtocolError("server sent data after COMPRESS before compression began")
        self._inflate = zlib.decompressobj(-15)
        # Level 1, not zlib's default 6: compressing runs on the event loop, where every
        # millisecond holds up all the other connections. On mail text level 1 was ~1.8x
        # faster (43 vs 24 MB/s) for 3 % more bytes (49 % vs 46 % of the input); on
        # base64 attachments the two are alike (tests/support/corpus, 2 shared cores).
        self._deflate = zlib.compressobj(1, zlib.DEFLATED, -15)

    def expect_close(self) -> None:
        """The next EOF is expected (LOGOUT)."""
        self._closing = True

    async def close(self) -> None:
        """Drop the connection without LOGOUT; pending commands fail."""
        self._closing = True
        self._fail(ConnectionLost("connection closed"))
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            self._writer.close()
            await asyncio.wait_for(self._writer.wait_closed(), 2)

    # -- writing -----------------------------------------------------------------------

    def _admissible(self, command: Command) -> bool:
        if len(self._inflight) >= self.window:
            return False
        if command.barrier and self._inflight:
            return command.behind and not self._fences
        if command.uids is None and command.seqs is None and command.collects <= _STATUS:
            # Only a barrier, or a STATUS of the same mailbox, can be in its way.
            if self._fences:
                return False
            if not command.collects:
                return True
            # Nor a command that collects every folder's STATUS (LIST-STATUS).
            return not self._statuses[command.status_mailbox] and not self._statuses[None]
        return not any(command.conflicts(other) for other in self._inflight.values())

    def _admit(self, command: Command) -> None:
        self._inflight[command.tag] = command
        self._fences += command.barrier and not command.opens
        if MailboxStatus in command.collects:
            self._statuses[command.status_mailbox] += 1

    def _done(self, tag: str) -> Command | None:
        command = self._inflight.pop(tag, None)
        if command is not None:
            self._fences -= command.barrier and not command.opens
            if MailboxStatus in command.collects:
                self._statuses[command.status_mailbox] -= 1
        return command

    async def _write_loop(self) -> None:
        try:
            while True:
                while not (self._queue and self._admissible(self._queue[0])):
                    self._wakeup.clear()
                    await self._wakeup.wait()
                command = self._queue.popleft()
                self._admit(command)
                await self._send(command)
        except MailmoverError as exc:
            self._fail(exc)
        except (ConnectionError, OSError) as exc:
            self._fail(self._lost(exc))

    async def _send(self, command: Command) -> None:
        # The continuation is expected *before* the bytes that provoke it are
        # written: the server's "+" can arrive while we are still draining.
        if self._trace:
            summary = f"{command.tag} {command.name}" if command.secret else None
            self._trace.sent(summary or summarize_part(command.parts[0]))
        last = len(command.parts) - 1
        streamed = last - 1 if command.stream is not None else -1
        for i, part in enumerate(command.parts):
            # Every part but the last ends in a literal's announcement: a synchronising
            # one waits for "+"; the streamed literal's may be non-synchronising.
            sync = i < last and not (i == streamed and part.endswith(b"+}\r\n"))
            if sync or (i == last and command.on_continuation is not None):
                self._expect_continuation(command)
            if i and self._trace and not command.secret:
                self._trace.sent(f"{command.tag} …{len(part)} bytes")
            await self._write(part, command if i == last else None)
            # A synchronising literal: wait for "+" (or a tagged refusal).
            if sync and await self._continuation_text() is None:
                return
            if i == streamed and command.stream is not None:
                await self._write_stream(command, command.stream)
        while command.on_continuation is not None:
            text = await self._continuation_text()
            reply = None if text is None else command.on_continuation(text)
            if reply is None:
                return
            if self._trace:
                self._trace.sent(f"{command.tag} <continuation reply>")
            self._expect_continuation(command)
            await self._write(reply + b"\r\n")

    async def _write_stream(self, command: Command, stream: LiteralStream) -> None:
        """The streamed literal's bytes; its error (or a wrong length) ends the connection,
        once the commands sent before it are answered (servers run them first)."""
        if self._trace:
            self._trace.sent(f"{command.tag} …relaying {stream.size} bytes")
        sent = 0
        try:
            async for chunk in stream.chunks():
                sent += len(chunk)
                if sent > stream.size:
                    break
                await self._write(chunk)
            if sent != stream.size:
                raise ConnectionLost(
                    f"a literal of {stream.size:,} bytes got {sent:,}: connection dropped"
                )
        except MailmoverError:
            before = [c.future for c in self._inflight.values() if c is not command]
            if before:
                await asyncio.wait(before, timeout=self.read_timeout)
            raise
        if self._trace:
            self._trace.sent(f"{command.tag} …{sent} bytes relayed")

    def _expect_continuation(self, command: Command) -> None:
        future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        if command.result is not None:
            future.set_result(None)  # already completed: nothing more to send
        self._continuation = (command, future)

    async def _continuation_text(self) -> str | None:
        assert self._continuation is not None
        try:
            return await self._continuation[1]
        finally:
            self._continuation = None

    async def _write(self, data: bytes | memoryview, ends: Command | None = None) -> None:
        """Write ``data``; ``ends``: the command it ends, ``written`` once its last byte
        is handed to the socket (before then the server cannot have all of it)."""
        view = memoryview(data)
        for start in range(0, len(view), _WRITE_CHUNK):
            chunk = view[start : start + _WRITE_CHUNK]
            last = start + _WRITE_CHUNK >= len(view)
            if self._deflate is not None:
                out = self._deflate.compress(chunk)
                if last:
                    out += self._deflate.flush(zlib.Z_SYNC_FLUSH)
                self._writer.write(out)
            else:
                self._writer.write(chunk)
            if last and ends is not None:
                ends.written = True
            await self._writer.drain()
            self._last_io = asyncio.get_running_loop().time()

    # -- reading -----------------------------------------------------------------------

    async def _read_loop(self) -> None:
        try:
            while True:
                data = await self._read_some()
                if self._inflate is not None:
                    data = self._inflate.decompress(data)
                for response in self._parser.feed(data):
                    self._dispatch(response)
        except MailmoverError as exc:
            self._fail(exc)
        except (ConnectionError, OSError, zlib.error) as exc:
            self._fail(self._lost(exc))

    async def _read_some(self) -> bytes:
        loop = asyncio.get_running_loop()
        while True:
            try:
                data = await asyncio.wait_for(self._reader.read(1 << 18), self.read_timeout)
            except TimeoutError:
                idle = loop.time() - self._last_io
                if self._inflight and idle >= self.read_timeout:
                    raise IMAPTimeout(
                        f"the server did not answer for {idle:.0f} s "
                        f"({len(self._inflight)} commands waiting)"
                    ) from None
                continue
            if not data:
                raise self._lost(None)
            self._last_io = loop.time()
            return data

    def _lost(self, exc: BaseException | None) -> ConnectionLost:
        if self._bye is not None:
            lost = ConnectionLost(f"the server closed the connection: {self._bye}")
            lost.bye = self._bye
            return lost
        detail = f": {exc}" if exc else ""
        return ConnectionLost(f"the connection was closed{detail}")

    def _dispatch(self, response: Response) -> None:
        if self._trace:
            self._trace.received(response)
        if isinstance(response, Tagged):
            self._complete(response)
        elif isinstance(response, Continuation):
            if self._continuation is None or self._continuation[1].done():
                raise ProtocolError("the server sent a continuation nobody asked for")
            self._continuation[1].set_result(response.text)
        elif isinstance(response, Fetch):
            self._route_fetch(response)
        elif isinstance(response, Unreadable):  # skipped: what it answered is missing
            log.warning("skipped a response the client could not read (%s): %s",
                        response.reason, response.line)  # fmt: skip
            self._unsolicited(response)
        else:
            if isinstance(response, UntaggedStatus) and response.status == "BYE":
                self._bye = response.text or "BYE"
            self._route(response)

    def _complete(self, tagged: Tagged) -> None:
        command = self._done(tagged.tag)
        if command is None:
            raise ProtocolError(f"the server completed a command it was not sent ({tagged.tag})")
        result = command.result = Result(tagged, command.untagged, command.fetches)
        waiting = self._continuation
        if waiting is not None and waiting[0] is command and not waiting[1].done():
            waiting[1].set_result(None)  # refused before its "+"
        if tagged.status == "OK":
            if command.after_ok is not None:
                command.after_ok()
            if not command.future.done():
                command.future.set_result(result)
        elif not command.future.done():
            command.future.set_exception(error_for(command.name, tagged))
            command.future.exception()  # see _fail
        self._wakeup.set()

    def _route_fetch(self, fetch: Fetch) -> None:
        for command in self._inflight.values():
            hit = (fetch.uid is not None and command.uids and fetch.uid in command.uids) or (
                command.seqs is not None and fetch.seq in command.seqs
            )
            if hit:
                if command.on_fetch is not None:
                    command.on_fetch(fetch)
                else:
                    command.fetches.append(fetch)
                return
        self._unsolicited(fetch)

    def _route(self, response: Untagged) -> None:
        kind = type(response)
        for command in self._inflight.values():  # dicts keep insertion order: oldest first
            if kind not in command.collects:
                continue
            if isinstance(response, MailboxStatus) and command.status_mailbox not in (
                None,
                response.name,
            ):
                continue
            command.untagged.append(response)
            return
        self._unsolicited(response)

    def _unsolicited(self, response: Untagged) -> None:
        if isinstance(response, UntaggedStatus) and response.code and response.code.name == "ALERT":
            log.warning("server alert: %s", response.text)
        if self._on_unsolicited is not None:
            self._on_unsolicited(response)

    # -- failure -----------------------------------------------------------------------

    def _fail(self, exc: MailmoverError) -> None:
        if self._error is not None:
            return
        if self._closing and isinstance(exc, ConnectionLost) and not self._inflight:
            exc = ConnectionLost("connection closed")
        self._error = exc
        pending = list(self._inflight.values()) + list(self._queue)
        self._inflight.clear()
        self._fences, self._statuses = 0, Counter()
        self._queue.clear()
        unsent = _unsent(exc)
        for command in pending:
            if not command.future.done():
                command.future.set_exception(exc if command.written else unsent)
                # Whoever still awaits it gets the error; a future nobody awaits any
                # more (its caller gave up first) must not be logged as unretrieved.
                command.future.exception()
        if self._continuation is not None and not self._continuation[1].done():
            self._continuation[1].set_result(None)
        self._wakeup.set()
        with contextlib.suppress(Exception):
            self._writer.transport.abort()


def _unsent(exc: MailmoverError) -> MailmoverError:
    """``exc`` for a command that was never wholly sent (``unsent``: the server cannot have
    carried it out, so a retry is never a double)."""
    try:
        copied = copy.copy(exc)
    except TypeError:  # a class whose constructor wants more than the message
        copied = ConnectionLost(exc.message)
    copied.unsent = True
    return copied
