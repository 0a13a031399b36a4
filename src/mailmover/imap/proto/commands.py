"""Command serialisation: Python values to IMAP command bytes (sans-IO).

A serialised command is a list of *parts*. Every part but the last ends with a
synchronising literal announcement ``{n}\\r\\n``: the client sends a part, then
waits for a ``+`` continuation before sending the next. With LITERAL+
(RFC 7888) literals are announced ``{n+}`` and the whole command is one part.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime


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
class Mailbox:
    """A mailbox name: modified UTF-7 encoded (unless utf8), then as an astring."""

    name: str


@dataclass(frozen=True, slots=True)
class ParenList:
    """``(a b c)`` of arguments."""

    items: Sequence[Arg]


Arg = str | int | bytes | Atom | Literal | Mailbox | ParenList | datetime | None
"""str: astring (atom if it can be, else quoted, else literal); int: number;
bytes: literal; datetime: quoted IMAP date-time; None: NIL."""


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
    """
    raise NotImplementedError


def quote(value: str) -> bytes:
    """An IMAP quoted string; ValueError when it cannot be one (CR, LF, NUL)."""
    raise NotImplementedError


def sequence_set(numbers: Iterable[int]) -> str:
    """Compress numbers into an IMAP sequence set: ``[1,2,3,7,9,10]`` → ``1:3,7,9:10``."""
    raise NotImplementedError


def parse_sequence_set(text: str) -> list[int]:
    """Expand ``1:3,7`` into ``[1, 2, 3, 7]`` (``*`` is not allowed)."""
    raise NotImplementedError


def imap_datetime(value: datetime) -> str:
    """``17-Jul-1996 02:44:25 -0700`` (RFC 3501 date-time, without quotes); naive means UTC."""
    raise NotImplementedError


def imap_date(value: datetime) -> str:
    """``17-Jul-1996`` for SEARCH SINCE/BEFORE."""
    raise NotImplementedError
