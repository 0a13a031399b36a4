"""IMAP framing for the emulator: responses as exact byte frames, and a tokenizer.

A response :class:`Frame` keeps the bytes it was cut from (``raw``), so that an
unchanged response is forwarded byte for byte, next to its lines (without line
endings) and the literals that follow them. :func:`tokenize` reads the
arguments of a command or a response as atoms, strings and parenthesised lists.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from mailmover.imap.proto.framing import STATUS_LINE, is_text_response, literal_size

#: ``{n}``, ``{n+}`` (RFC 7888) or ``~{n}`` (RFC 3516) ending a command line
_MARKER = re.compile(rb"~?\{([0-9]{1,19})(\+?)\}\Z")
_ATOM = re.compile(rb'[^\x00-\x20()"\x7f]+')
_CAPABILITY_CODE = re.compile(rb"\[CAPABILITY ([^\]]*)\]", re.IGNORECASE)


def literal_marker(line: bytes) -> tuple[int, bool] | None:
    """``(size, non_synchronising)`` of the literal announced at the end of a command line."""
    match = _MARKER.search(line)
    if match is None:
        return None
    return int(match.group(1)), match.group(2) == b"+"


def strip_eol(line: bytes) -> bytes:
    """A line without its CRLF (or bare LF)."""
    if line.endswith(b"\r\n"):
        return line[:-2]
    return line[:-1] if line.endswith(b"\n") else line


def build(lines: list[bytes], literals: list[bytes]) -> bytes:
    """Lines and the literals after them, as they go on the wire (CRLF line ends)."""
    out = bytearray()
    for i, line in enumerate(lines):
        out += line + b"\r\n"
        if i < len(literals):
            out += literals[i]
    return bytes(out)


@dataclass
class Frame:
    """One server response: exact bytes, lines without line ends, literals after lines."""

    raw: bytes
    lines: list[bytes]
    literals: list[bytes] = field(default_factory=list)

    @property
    def is_continuation(self) -> bool:
        return self.lines[0].startswith(b"+")

    @property
    def tag(self) -> str | None:
        """The tag of a tagged status response, else None."""
        match = STATUS_LINE.match(self.lines[0])
        if match is None or match.group(1) is None:
            return None
        return match.group(1).decode("ascii", "replace")

    @property
    def status(self) -> str | None:
        """OK, NO, BAD, PREAUTH or BYE for a status response, else None."""
        match = STATUS_LINE.match(self.lines[0])
        return None if match is None else match.group(2).upper().decode()

    @property
    def kind(self) -> str:
        """The upper-cased response name: ``FETCH`` for ``* 3 FETCH``, ``LIST``, ``OK``..."""
        words = self.lines[0].split(b" ", 3)
        if len(words) > 2 and words[1].isdigit():
            return words[2].upper().decode("ascii", "replace")
        return words[1].upper().decode("ascii", "replace") if len(words) > 1 else ""

    def with_lines(self, lines: list[bytes]) -> Frame:
        """The same response with its lines replaced (literals kept)."""
        return Frame(build(lines, self.literals), lines, self.literals)


def rewrite_capability_code(line: bytes, rewrite: Callable[[list[bytes]], list[bytes]]) -> bytes:
    """``line`` with the list inside any ``[CAPABILITY ...]`` code rewritten."""
    return _CAPABILITY_CODE.sub(
        lambda m: b"[CAPABILITY " + b" ".join(rewrite(m.group(1).split())) + b"]", line
    )


class ResponseFramer:
    """Cuts server bytes into :class:`Frame` s; ``rest()`` hands back what is not a frame yet."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._buf = bytearray()
        self._pos = 0  # start of the current line
        self._scan = 0  # no LF before this offset
        self._need = 0  # literal bytes still to come
        self._lines: list[bytes] = []
        self._literals: list[bytes] = []
        self._text_only = False

    def feed(self, data: bytes) -> list[Frame]:
        buf = self._buf
        buf += data
        frames: list[Frame] = []
        while True:
            if self._need:
                if len(buf) - self._pos < self._need:
                    break
                end = self._pos + self._need
                self._literals.append(bytes(buf[self._pos : end]))
                self._pos = self._scan = end
                self._need = 0
                continue
            nl = buf.find(b"\n", max(self._scan, self._pos))
            if nl < 0:
                self._scan = len(buf)
                break
            line = strip_eol(bytes(buf[self._pos : nl + 1]))
            self._pos = self._scan = nl + 1
            if not self._lines:
                self._text_only = is_text_response(line)
            self._lines.append(line)
            size = None if self._text_only else literal_size(line)
            if size is None:
                frames.append(Frame(bytes(buf[: self._pos]), self._lines, self._literals))
                del buf[: self._pos]
                self._pos = self._scan = 0
                self._lines, self._literals = [], []
            elif size == 0:
                self._literals.append(b"")
            else:
                self._need = size
        return frames

    def rest(self) -> bytes:
        """The bytes held back (part of a response); the framer is empty afterwards."""
        data = bytes(self._buf)
        self._reset()
        return data


# -- tokens --------------------------------------------------------------------------------


class Atom(bytes):
    """An atom (NIL, numbers, flags, sequence sets) as sent."""


class String(bytes):
    """A quoted string (unescaped) or a literal."""


class Lit(String):
    """A literal (``{n}``) that has been received."""


@dataclass(frozen=True)
class Pending:
    """A literal announced at the end of the last line but not received yet."""

    size: int
    nonsync: bool


Token = Atom | String | Pending | list["Token"]  # String covers Lit


def tokenize(lines: list[bytes], literals: list[bytes]) -> list[Token]:
    """The tokens of a command or response; unbalanced parentheses are closed at the end."""
    stack: list[list[Token]] = [[]]
    for i, line in enumerate(lines):
        marker = _MARKER.search(line)
        body = line[: marker.start()] if marker else line
        pos = 0
        while pos < len(body):
            char = body[pos]
            if char == 0x20:
                pos += 1
            elif char == 0x28:  # (
                stack.append([])
                pos += 1
            elif char == 0x29:  # )
                if len(stack) > 1:
                    inner = stack.pop()
                    stack[-1].append(inner)
                pos += 1
            elif char == 0x22:  # "
                value, pos = _quoted(body, pos)
                stack[-1].append(String(value))
            else:
                match = _ATOM.match(body, pos)
                end = match.end() if match else pos + 1
                stack[-1].append(Atom(body[pos:end]))
                pos = end
        if marker:
            if i < len(literals):
                stack[-1].append(Lit(literals[i]))
            else:
                stack[-1].append(Pending(int(marker.group(1)), marker.group(2) == b"+"))
    while len(stack) > 1:
        inner = stack.pop()
        stack[-1].append(inner)
    return stack[0]


def _quoted(body: bytes, pos: int) -> tuple[bytes, int]:
    out = bytearray()
    pos += 1
    while pos < len(body):
        char = body[pos]
        if char == 0x5C and pos + 1 < len(body):  # backslash
            out.append(body[pos + 1])
            pos += 2
        elif char == 0x22:
            return bytes(out), pos + 1
        else:
            out.append(char)
            pos += 1
    return bytes(out), pos


def text(token: Token) -> str:
    """An atom or string token as text (mailbox names stay in their wire form)."""
    if isinstance(token, bytes):
        return token.decode("utf-8", "surrogateescape")
    raise ValueError(f"expected an atom or a string, got {token!r}")


def quoted(value: str | bytes) -> bytes:
    """``value`` as a quoted string (it must not hold CR, LF or NUL)."""
    raw = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
    return b'"' + raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
