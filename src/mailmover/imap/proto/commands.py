"""Command serialisation: Python values to IMAP command bytes (sans-IO).

A serialised command is a list of *parts*. Every part but the last ends with a
synchronising literal announcement ``{n}\\r\\n``: the client sends a part, then
waits for a ``+`` continuation before sending the next. With LITERAL+
(RFC 7888) literals are announced ``{n+}`` and the whole command is one part.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from mailmover.imap.proto.dates import imap_date, imap_datetime, parse_imap_datetime
from mailmover.imap.proto.utf7 import encode as utf7_encode

__all__ = [
    "Announced",
    "Arg",
    "Atom",
    "FlagList",
    "Literal",
    "Mailbox",
    "ParenList",
    "flag_list",
    "imap_date",
    "imap_datetime",
    "parse_imap_datetime",
    "quote",
    "serialize",
]


@dataclass(frozen=True, slots=True)
class Atom:
    """Sent verbatim (``UID``, ``FETCH``, ``(FLAGS BODY.PEEK[])``, ``\\Seen``)."""

    value: str


@dataclass(frozen=True, slots=True)
class Literal:
    """Always sent as a literal (message bodies). ``binary`` uses ``~{n}`` (RFC 3516)."""

    data: bytes
    binary: bool = False


@dataclass(frozen=True, slots=True)
class Announced:
    """A literal of ``size`` bytes whose data is not part of the command: the
    serialised command ends a part with its announcement, and whoever sends the
    parts writes the data before the next part (a message relayed as it arrives)."""

    size: int


@dataclass(frozen=True, slots=True)
class Mailbox:
    """A mailbox name: modified UTF-7 encoded (unless utf8), then as an astring."""

    name: str


@dataclass(frozen=True, slots=True)
class ParenList:
    """``(a b c)`` of arguments."""

    items: Sequence[Arg]


@dataclass(frozen=True, slots=True)
class FlagList:
    """``(\\Seen $Forwarded)``: flags, each sent verbatim (as ``ParenList`` of ``Atom`` s)."""

    flags: tuple[str, ...]


@functools.lru_cache(maxsize=1024)
def flag_list(flags: tuple[str, ...]) -> FlagList:
    """The ``FlagList`` of ``flags``; a folder's messages share a few, made once."""
    return FlagList(flags)


Arg = (
    str | int | bytes | Atom | Literal | Announced | Mailbox | ParenList | FlagList | datetime
) | None
"""str: astring (atom if it can be, else quoted, else literal); int: number;
bytes: literal; datetime: quoted IMAP date-time; None: NIL."""


# A conservative subset of RFC 3501 ATOM-CHAR: no atom-specials ("(", ")", "{",
# SP, CTL, "%", "*", DQUOTE, "\", "]") and nothing else a server might misread.
_ATOM = re.compile(r"[A-Za-z0-9!#$&'+,\-./:;<=>?@^_`|~]+", re.ASCII)
# RFC 3501 tag: ASTRING-CHAR except "+".
_TAG = re.compile(r"[A-Za-z0-9!#$&',\-./:;<=>?@^_`|~]+", re.ASCII)
_QUOTABLE = re.compile(r"[\x20-\x7e]*", re.ASCII)
_QUOTABLE_UTF8 = re.compile(r"[^\x00-\x1f\x7f]*")
_UNSAFE_VERBATIM = re.compile(r"[\x00\r\n]")
#: Strings this long or longer go as literals (RFC 7162 3.2.1 asks to keep lines short).
MAX_QUOTED = 1000
#: RFC 7888 LITERAL-: the largest non-synchronising literal.
LITERAL_MINUS_MAX = 4096


def serialize(
    tag: str,
    name: str,
    args: Sequence[Arg] = (),
    *,
    literal_plus: bool = False,
    literal_minus: bool = False,
    utf8: bool = False,
) -> list[bytes]:
    """Serialise ``tag name args...`` into parts (see module docstring).

    ``literal_minus`` (RFC 7888 LITERAL-) allows ``{n+}`` only up to 4096 bytes.
    ``utf8`` (after ``ENABLE UTF8=ACCEPT``, RFC 6855) sends mailbox names and
    strings as UTF-8. ValueError (TypeError for an unknown type) when an
    argument cannot be sent.
    """
    if not _TAG.fullmatch(tag):
        raise ValueError(f"not a valid IMAP tag: {tag!r}")
    writer = _Writer(literal_plus=literal_plus, literal_minus=literal_minus, utf8=utf8)
    writer.out += (tag.encode("ascii"), b" ", _verbatim(name))
    for arg in args:
        writer.out.append(b" ")
        writer.write(arg)
    writer.out.append(b"\r\n")
    writer.parts.append(b"".join(writer.out))
    return writer.parts


class _Writer:
    """Collects a command's bytes as pieces, joined once per part."""

    def __init__(self, *, literal_plus: bool, literal_minus: bool, utf8: bool) -> None:
        self.literal_plus = literal_plus
        self.literal_minus = literal_minus
        self.utf8 = utf8
        self.parts: list[bytes] = []
        self.out: list[bytes] = []

    def write(self, arg: Arg) -> None:
        # The common types by exact type first; bool (an int never meant as a number)
        # and subclasses go through the checks below.
        kind = type(arg)
        if kind is bytes:
            assert isinstance(arg, bytes)
            self.literal(arg, binary=False)
        elif kind is FlagList:
            assert isinstance(arg, FlagList)
            self.out.append(_flag_list_bytes(arg.flags))
        elif kind is Literal:
            assert isinstance(arg, Literal)
            self.literal(arg.data, binary=arg.binary)
        elif kind is Atom:
            assert isinstance(arg, Atom)
            self.out.append(_verbatim(arg.value))
        elif kind is ParenList:
            assert isinstance(arg, ParenList)
            self.paren_list(arg)
        elif kind is datetime:
            assert isinstance(arg, datetime)
            # a date-time is ASCII digits, letters, spaces, ":" and "+"/"-": safe to quote
            self.out.append(b'"%s"' % imap_datetime(arg).encode("ascii"))
        else:
            self.write_other(arg)

    def write_other(self, arg: Arg) -> None:
        if isinstance(arg, bool):
            raise TypeError(f"cannot send a bool as an IMAP argument: {arg!r}")
        if arg is None:
            self.out.append(b"NIL")
        elif isinstance(arg, str):
            self.astring(arg)
        elif isinstance(arg, int):
            if arg < 0:
                raise ValueError(f"IMAP numbers are not negative: {arg}")
            self.out.append(str(arg).encode("ascii"))
        elif isinstance(arg, bytes):
            self.literal(arg, binary=False)
        elif isinstance(arg, Literal):
            self.literal(arg.data, binary=arg.binary)
        elif isinstance(arg, Mailbox):
            self.astring(arg.name if self.utf8 else utf7_encode(arg.name))
        elif isinstance(arg, Atom):
            self.out.append(_verbatim(arg.value))
        elif isinstance(arg, datetime):
            self.out.append(quote(imap_datetime(arg)))
        elif isinstance(arg, ParenList):
            self.paren_list(arg)
        elif isinstance(arg, FlagList):
            self.out.append(_flag_list_bytes(arg.flags))
        elif isinstance(arg, Announced):
            self.announced(arg.size)
        else:
            raise TypeError(f"cannot send {type(arg).__name__} as an IMAP argument")

    def paren_list(self, arg: ParenList) -> None:
        self.out.append(b"(")
        for index, item in enumerate(arg.items):
            if index:
                self.out.append(b" ")
            self.write(item)
        self.out.append(b")")

    def astring(self, value: str) -> None:
        if "\x00" in value:
            raise ValueError("IMAP strings cannot contain NUL")
        data = value.encode("utf-8")
        if len(data) >= MAX_QUOTED:
            self.literal(data, binary=False)
        elif _ATOM.fullmatch(value) and value.upper() != "NIL":
            self.out.append(data)
        elif _QUOTABLE.fullmatch(value) or (self.utf8 and _QUOTABLE_UTF8.fullmatch(value)):
            self.out.append(quote(value, utf8=self.utf8))
        else:
            self.literal(data, binary=False)

    def literal(self, data: bytes, *, binary: bool) -> None:
        size = len(data)
        nonsync = self.literal_plus or (self.literal_minus and size <= LITERAL_MINUS_MAX)
        announce = b"~{%d" % size if binary else b"{%d" % size
        if nonsync:
            self.out += (announce, b"+}\r\n", data)
        else:
            self.out += (announce, b"}\r\n")
            self.parts.append(b"".join(self.out))
            self.out = [data]

    def announced(self, size: int) -> None:
        """The announcement alone; it ends a part (``{n+}`` too), the data goes between."""
        nonsync = self.literal_plus or (self.literal_minus and size <= LITERAL_MINUS_MAX)
        self.out += (b"{%d" % size, b"+}\r\n" if nonsync else b"}\r\n")
        self.parts.append(b"".join(self.out))
        self.out = []


@functools.lru_cache(maxsize=4096)
def _verbatim(value: str) -> bytes:
    """``value`` as sent verbatim (names, atoms, flags: a few distinct ones, remembered)."""
    if not value or not value.isascii() or _UNSAFE_VERBATIM.search(value):
        raise ValueError(f"cannot send verbatim: {value!r}")
    return value.encode("ascii")


@functools.lru_cache(maxsize=1024)
def _flag_list_bytes(flags: tuple[str, ...]) -> bytes:
    return b"(" + b" ".join(_verbatim(flag) for flag in flags) + b")"


def quote(value: str, *, utf8: bool = False) -> bytes:
    """An IMAP quoted string; ValueError when it cannot be one (CR, LF, NUL).

    Non-ASCII is allowed only with ``utf8`` (RFC 6855) and is sent as UTF-8.
    """
    if _UNSAFE_VERBATIM.search(value):
        raise ValueError("an IMAP quoted string cannot contain CR, LF or NUL")
    if not utf8 and not value.isascii():
        raise ValueError("non-ASCII needs a literal unless UTF8=ACCEPT is enabled")
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return b'"' + escaped.encode("utf-8") + b'"'
