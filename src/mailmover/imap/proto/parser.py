"""Incremental IMAP response parser: bytes in, typed responses out (sans-IO)."""

from __future__ import annotations

from typing import Literal

from mailmover.errors import ProtocolError
from mailmover.imap.proto import utf7
from mailmover.imap.proto.codes import parse_resp_text
from mailmover.imap.proto.fastfetch import fast_fetch
from mailmover.imap.proto.framing import STATUS_LINE, Frame, Framer
from mailmover.imap.proto.lexer import Reader, text
from mailmover.imap.proto.responses import (
    Continuation,
    Enabled,
    Response,
    StatusKind,
    Tagged,
    Unreadable,
    UntaggedStatus,
)
from mailmover.imap.proto.untagged import parse_untagged

#: Default bound on the bytes outside literals in one response. A ``* SEARCH``
#: over a mailbox of a million messages is about 8 MB, hence not 1 MiB.
MAX_RESPONSE_TEXT = 16 * 1024 * 1024
#: how much of an unreadable response's first line is kept to name it
SHOWN = 120

_STATUS: dict[bytes, StatusKind] = {
    b"OK": "OK",
    b"NO": "NO",
    b"BAD": "BAD",
    b"PREAUTH": "PREAUTH",
    b"BYE": "BYE",
}
_TAGGED: dict[bytes, Literal["OK", "NO", "BAD"]] = {b"OK": "OK", b"NO": "NO", b"BAD": "BAD"}
#: ENABLEd extensions after which the server sends mailbox names as UTF-8
_UTF8_EXTENSIONS = frozenset({"UTF8=ACCEPT", "UTF8=ONLY", "IMAP4REV2"})


class ResponseParser:
    """Feed it bytes in any chunking; it yields complete responses in order.

    >>> p = ResponseParser()
    >>> p.feed(b"* OK ready\\r\\nA1 OK do")
    [UntaggedStatus(status='OK', code=None, text='ready')]
    >>> p.feed(b"ne\\r\\n")
    [Tagged(tag='A1', status='OK', code=None, text='done')]

    Literals ``{n}\\r\\n`` are collected without quadratic copying.
    Malformed input raises :class:`mailmover.errors.ProtocolError`; after that
    the parser is unusable (the connection must be dropped). An untagged
    response that is whole but unreadable inside is returned as ``Unreadable``
    instead, and parsing goes on.
    ``utf8_names`` (set after ``ENABLE UTF8=ACCEPT``) turns off modified UTF-7
    decoding of mailbox names; the parser sets it itself on ``* ENABLED UTF8=ACCEPT``
    (or ``IMAP4REV2``) so that names later in the same chunk are read right.
    ``max_response_text`` bounds the bytes outside literals in one response.
    """

    def __init__(self, *, max_response_text: int = MAX_RESPONSE_TEXT) -> None:
        self.utf8_names = False
        self._framer = Framer(max_response_text)
        self._failed = False

    def feed(self, data: bytes) -> list[Response]:
        """Take bytes from the server; return the responses they complete, in order.

        On ProtocolError, responses completed earlier in the same call are lost.
        """
        if self._failed:
            raise ProtocolError("the response parser failed earlier; drop the connection")
        try:
            return [self._parse(frame) for frame in self._framer.feed(data)]
        except ProtocolError:
            self._failed = True
            raise

    @property
    def pending(self) -> int:
        """Bytes received but not yet part of a complete response."""
        return self._framer.pending

    def _decode_name(self, raw: bytes) -> str:
        """A mailbox name as sent by the server, decoded per ``utf8_names``."""
        name = text(raw)
        # modified UTF-7 is pure ASCII; 8-bit names come from servers sending raw UTF-8
        if self.utf8_names or "&" not in name or not name.isascii():
            return name
        return utf7.decode(name)

    def _parse(self, frame: Frame) -> Response:
        line = frame.lines[0]
        if line.startswith(b"* "):
            fetch = fast_fetch(frame)
            if fetch is not None:
                return fetch
        if line.startswith(b"+"):
            return Continuation(text(line[1:].lstrip(b" ")))
        status = STATUS_LINE.match(line)
        if status is not None:
            tag, word = status.group(1), status.group(2).upper()
            code, message = parse_resp_text(line[status.end() :])
            if tag is None:
                return UntaggedStatus(_STATUS[word], code, message)
            if word not in _TAGGED:
                raise ProtocolError(f"tagged {word.decode()} response")
            return Tagged(text(tag), _TAGGED[word], code, message)
        if not line.startswith(b"*"):
            raise ProtocolError(f"not an IMAP response: {line[:40]!r}")
        reader = Reader(frame)
        reader.pos = 1
        try:
            response = parse_untagged(reader, self._decode_name)
        except ProtocolError as exc:
            # The frame is whole (lines and literals counted): skip it, read on.
            return Unreadable(text(line[:SHOWN]), exc.message)
        if isinstance(response, Enabled) and response.capabilities & _UTF8_EXTENSIONS:
            self.utf8_names = True
        return response
