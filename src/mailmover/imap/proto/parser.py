"""Incremental IMAP response parser: bytes in, typed responses out (sans-IO)."""

from __future__ import annotations

from mailmover.imap.proto.responses import Response


class ResponseParser:
    """Feed it bytes in any chunking; it yields complete responses in order.

    >>> p = ResponseParser()
    >>> p.feed(b"* OK ready\\r\\nA1 OK do")
    [UntaggedStatus(status='OK', code=None, text='ready')]
    >>> p.feed(b"ne\\r\\n")
    [Tagged(tag='A1', status='OK', code=None, text='done')]

    Literals ``{n}\\r\\n`` are collected without quadratic copying.
    Malformed input raises :class:`mailmover.errors.ProtocolError`; after that
    the parser is unusable (the connection must be dropped).
    ``utf8_names`` (set after ``ENABLE UTF8=ACCEPT``) turns off modified UTF-7
    decoding of mailbox names.
    """

    def __init__(self) -> None:
        self.utf8_names = False

    def feed(self, data: bytes) -> list[Response]:
        raise NotImplementedError

    @property
    def pending(self) -> int:
        """Bytes received but not yet part of a complete response."""
        raise NotImplementedError
