"""A cursor over one framed response: atoms, numbers, strings, literals, lists (RFC 3501 s. 9)."""

from __future__ import annotations

import re

from mailmover.errors import ProtocolError
from mailmover.imap.proto.framing import Frame

# ATOM-CHAR: any CHAR except atom-specials; 8-bit bytes are tolerated (broken servers).
_ATOM = re.compile(rb'[^\x00-\x20\x7f(){%*"\\\]]+')
# ASTRING-CHAR (ATOM-CHAR plus "]"); "%" and "*" tolerated in mailbox names.
_ASTRING_ATOM = re.compile(rb'[^\x00-\x20\x7f(){"\\]+')
# Response and FETCH item names stop where a section "[" or a partial "<" begins.
_NAME = re.compile(rb'[^\x00-\x20\x7f(){%*"\\\[\]<>]+')
_FLAG = re.compile(rb'\\\*|\\?[^\x00-\x20\x7f(){%*"\\\]]+')
#: the flags inside a flag list's parentheses, spaces between (a pattern, no group)
FLAG_LIST_ITEMS = rb"(?: *(?:%s)(?: +(?:%s))*)?" % (_FLAG.pattern, _FLAG.pattern)
_FLAG_LIST = re.compile(rb"\((%s) *\)" % FLAG_LIST_ITEMS)
_NUMBER = re.compile(rb"[0-9]+")
_QUOTED = re.compile(rb'"([^"\\]*(?:\\.[^"\\]*)*)"', re.DOTALL)
_ESCAPE = re.compile(rb"\\(.)", re.DOTALL)
_LITERAL = re.compile(rb"~?\{([0-9]+)\}")
# Anything in a value being skipped that is neither a list, a string nor a literal.
_BARE = re.compile(rb'(?:[^\x00-\x20\x7f()"{\[]|\[[^\]]*\])+')

_MAX_DIGITS = 20  # 2**64 has 20 digits: MODSEQ, X-GM-MSGID


def text(raw: bytes) -> str:
    """Bytes from the wire as str (UTF-8, undecodable bytes kept as surrogates)."""
    return raw.decode("utf-8", "surrogateescape")


class Reader:
    """Reads tokens from a :class:`Frame`, moving across its literals."""

    __slots__ = ("_frame", "_index", "line", "pos")

    def __init__(self, frame: Frame) -> None:
        self._frame = frame
        self._index = 0
        self.line = frame.lines[0]
        self.pos = 0

    # -- position ------------------------------------------------------------------

    def error(self, what: str) -> ProtocolError:
        """A ProtocolError naming what was expected and showing where."""
        near = self.line[self.pos : self.pos + 40]
        return ProtocolError(f"{what} at {near!r}" if near else f"{what} at end of line")

    def peek(self) -> int:
        """The next byte, or -1 at the end of the line."""
        return self.line[self.pos] if self.pos < len(self.line) else -1

    def at_end(self) -> bool:
        """Whether the whole response has been read."""
        return self.pos >= len(self.line) and self._index == len(self._frame.literals)

    def on_last_line(self) -> bool:
        """Whether the current line is the response's last (no literal follows it)."""
        return self._index == len(self._frame.literals)

    def skip_spaces(self) -> int:
        """Skip spaces; return how many."""
        line, start = self.line, self.pos
        if start >= len(line) or line[start] != 0x20:
            return 0
        end = start + 1
        while end < len(line) and line[end] == 0x20:
            end += 1
        self.pos = end
        return end - start

    def space(self) -> None:
        """One or more spaces (RFC 3501 wants exactly one; servers sometimes send more)."""
        if not self.skip_spaces():
            raise self.error("expected a space")

    def expect(self, char: bytes) -> None:
        """The given single byte."""
        if self.peek() != char[0]:
            raise self.error(f"expected {char.decode()!r}")
        self.pos += 1

    def finish(self) -> None:
        """Require the end of the response (trailing spaces are tolerated)."""
        self.skip_spaces()
        if not self.at_end():
            raise self.error("unexpected data")

    # -- tokens --------------------------------------------------------------------

    def _match(self, pattern: re.Pattern[bytes], what: str) -> bytes:
        m = pattern.match(self.line, self.pos)
        if m is None:
            raise self.error(f"expected {what}")
        self.pos = m.end()
        return m.group()

    def atom(self) -> bytes:
        return self._match(_ATOM, "an atom")

    def name(self) -> bytes:
        """A response or FETCH item name, upper-cased."""
        return self._match(_NAME, "a name").upper()

    def flag(self) -> bytes:
        return self._match(_FLAG, "a flag")

    def number(self) -> int:
        digits = self._match(_NUMBER, "a number")
        if len(digits) > _MAX_DIGITS:
            raise self.error("number too large")
        return int(digits)

    def is_nil(self) -> bool:
        """Consume ``NIL`` (any case) if it comes next."""
        m = _ATOM.match(self.line, self.pos)
        if m is not None and m.group().upper() == b"NIL":
            self.pos = m.end()
            return True
        return False

    def at_string(self) -> bool:
        """Whether a quoted string or a literal comes next."""
        c = self.peek()
        if c == 0x7E:  # '~' starts a literal8 only before '{'
            return self.line[self.pos + 1 : self.pos + 2] == b"{"
        return c in (0x22, 0x7B)

    def literal(self) -> bytes:
        m = _LITERAL.match(self.line, self.pos)
        if m is None or m.end() != len(self.line):
            raise self.error("expected a literal at the end of the line")
        frame = self._frame
        if self._index >= len(frame.literals):
            raise self.error("literal missing")
        data = frame.literals[self._index]
        self._index += 1
        self.line = frame.lines[self._index]
        self.pos = 0
        return data

    def string(self) -> bytes:
        """A quoted string or a literal."""
        c = self.peek()
        if c == 0x22:  # '"'
            m = _QUOTED.match(self.line, self.pos)
            if m is None:
                raise self.error("unterminated quoted string")
            self.pos = m.end()
            raw = m.group(1)
            return _ESCAPE.sub(rb"\1", raw) if b"\\" in raw else raw
        if self.at_string():
            return self.literal()
        raise self.error("expected a string")

    def nstring(self) -> bytes | None:
        """A string or NIL (None)."""
        if self.is_nil():
            return None
        return self.string()

    def astring(self) -> bytes:
        """An atom (``]``, ``%`` and ``*`` allowed) or a string."""
        if self.at_string():
            return self.string()
        return self._match(_ASTRING_ATOM, "an atom or a string")

    # -- compounds -----------------------------------------------------------------

    def flag_list(self) -> tuple[str, ...]:
        """``(\\Seen $Label ...)``: flags as sent."""
        m = _FLAG_LIST.match(self.line, self.pos)
        if m is None:
            raise self.error("expected a list of flags")
        self.pos = m.end()
        return tuple(text(flag) for flag in m.group(1).split())

    def skip_value(self) -> None:
        """Skip one value of any shape: atom, number, string, literal, nested lists."""
        depth = 0
        while True:
            c = self.peek()
            if c == 0x28:  # '('
                depth += 1
                self.pos += 1
                self.skip_spaces()
                continue
            if c == 0x29:  # ')'
                if not depth:
                    raise self.error("unbalanced ')'")
                depth -= 1
                self.pos += 1
            elif self.at_string():
                self.string()
            else:
                self._match(_BARE, "a value")
            if not depth:
                return
            self.skip_spaces()

    def rest_raw(self) -> bytes:
        """The rest of the response as received, literals inlined, without the final CRLF."""
        frame = self._frame
        parts = [self.line[self.pos :]]
        for i in range(self._index, len(frame.literals)):
            parts += (b"\r\n", frame.literals[i], frame.lines[i + 1])
        self.line = frame.lines[-1]
        self.pos = len(self.line)
        self._index = len(frame.literals)
        return b"".join(parts)
