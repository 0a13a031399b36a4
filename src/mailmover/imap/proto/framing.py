"""Splitting a byte stream into whole IMAP responses (lines plus the literals they announce)."""

from __future__ import annotations

import re
from typing import NamedTuple

from mailmover.errors import ProtocolError

#: ``* OK``, ``* BYE``, ``A1 NO``... (any case). These carry text, never literals, so a
#: ``{5}`` at the end of their line is text (RFC 3501 section 7.1: resp-text is TEXT-CHARs).
STATUS_LINE = re.compile(
    rb'(?:\* *|([^\x00-\x20\x7f(){%*"\\+]+) +)(OK|NO|BAD|PREAUTH|BYE)(?=[ \[]|\Z)',
    re.IGNORECASE,
)

#: More digits than this in ``{n}`` is not a size any server means.
_MAX_LITERAL_DIGITS = 19


class Frame(NamedTuple):
    """One response: ``lines`` without their CRLF; ``literals[i]`` follows ``lines[i]``."""

    lines: list[bytes]
    literals: list[bytes]


def is_text_response(line: bytes) -> bool:
    """Whether a response's first line starts a continuation or a status response."""
    return line.startswith(b"+") or STATUS_LINE.match(line) is not None


def literal_size(line: bytes) -> int | None:
    """The size announced by ``{n}`` or ``~{n}`` ending ``line``, or None."""
    if not line.endswith(b"}"):
        return None
    start = line.rfind(b"{")
    digits = line[start + 1 : -1]
    if start < 0 or not digits.isdigit():
        return None
    if len(digits) > _MAX_LITERAL_DIGITS:
        raise ProtocolError(f"absurd literal size {digits[:24]!r}")
    return int(digits)


class Framer:
    """Cuts fed bytes into :class:`Frame` s.

    Each byte is scanned for a line end once; literal bytes are set aside in
    chunks and joined once, so a literal of any size costs linear time.
    ``max_text`` bounds the bytes outside literals in one response.
    """

    def __init__(self, max_text: int) -> None:
        self._max_text = max_text
        self._buf = bytearray()
        self._scan = 0  # bytes of _buf before this offset hold no LF
        self._lines: list[bytes] = []
        self._literals: list[bytes] = []
        self._chunks: list[bytes] = []
        self._need = 0  # literal bytes still to come
        self._text = 0  # bytes outside literals in the current response
        self._held = 0  # bytes of the current response already framed
        self._text_only = False

    @property
    def pending(self) -> int:
        """Bytes received but not yet part of a complete frame."""
        return self._held + len(self._buf)

    def feed(self, data: bytes) -> list[Frame]:
        """Take more bytes; return the frames they complete."""
        if not isinstance(data, bytes):
            data = bytes(data)
        if self._need and not self._buf and data:
            # the middle of a large literal: keep the caller's chunk, do not buffer it
            take = min(self._need, len(data))
            self._add_literal(data if take == len(data) else data[:take])
            data = data[take:]
        if self._buf:
            buf = self._buf
            buf += data
            if not self._need and buf.find(b"\n", self._scan) < 0:
                # a line still incomplete (a long one comes in many chunks): keep it
                self._scan = len(buf)
                # the line may still lose a trailing CR, hence the - 1
                if self._text + len(buf) - 1 > self._max_text:
                    raise ProtocolError(f"response longer than {self._max_text} bytes")
                return []
            data = bytes(buf)  # slices of bytes are one copy, of a bytearray two
        frames: list[Frame] = []
        pos, scan, size = 0, self._scan, len(data)
        while pos < size:
            need = self._need
            if need:
                take = min(need, size - pos)
                if take == need and not self._chunks:  # a whole literal: no chunks to join
                    self._literals.append(data[pos : pos + take])
                    self._need = 0
                    self._held += take
                else:
                    self._add_literal(data[pos : pos + take])
                pos = scan = pos + take
                continue
            nl = data.find(b"\n", scan if scan > pos else pos)
            if nl < 0:
                scan = size
                if self._text + size - pos - 1 > self._max_text:
                    raise ProtocolError(f"response longer than {self._max_text} bytes")
                break
            end = nl - 1 if nl > pos and data[nl - 1] == 0x0D else nl
            if self._text + end - pos > self._max_text:
                raise ProtocolError(f"response longer than {self._max_text} bytes")
            line = data[pos:end]
            self._text += end - pos
            self._held += nl + 1 - pos
            pos = scan = nl + 1
            frame = self._add_line(line)
            if frame is not None:
                frames.append(frame)
        self._buf = bytearray(data[pos:]) if pos < size else bytearray()
        self._scan = scan - pos
        return frames

    def _add_line(self, line: bytes) -> Frame | None:
        if not self._lines:
            # "* 12 FETCH ...": numbered data, never a status response (the common case)
            numbered = line[:2] == b"* " and line[2:3].isdigit()
            self._text_only = not numbered and is_text_response(line)
        self._lines.append(line)
        size = None if self._text_only else literal_size(line)
        if size is None:
            frame = Frame(self._lines, self._literals)
            self._lines, self._literals = [], []
            self._text = self._held = 0
            return frame
        if size == 0:
            self._literals.append(b"")
        else:
            self._need = size
        return None

    def _add_literal(self, chunk: bytes) -> None:
        self._chunks.append(chunk)
        self._need -= len(chunk)
        self._held += len(chunk)
        if not self._need:
            chunks, self._chunks = self._chunks, []
            self._literals.append(chunks[0] if len(chunks) == 1 else b"".join(chunks))
