"""Typed IMAP server responses (RFC 3501 section 7 and extensions).

These are the events :class:`mailmover.imap.proto.parser.ResponseParser` yields.
Strings are ``str`` decoded as UTF-8 with ``surrogateescape`` (so 8-bit junk
survives a round trip); mailbox names are decoded from modified UTF-7 unless
the server ENABLEd UTF8=ACCEPT, in which case they arrive as UTF-8.
Message data (``BODY[...]`` sections) stays ``bytes``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, TypeAlias

StatusKind: TypeAlias = Literal["OK", "NO", "BAD", "PREAUTH", "BYE"]


@dataclass(frozen=True, slots=True)
class ResponseCode:
    """A bracketed response code such as ``[APPENDUID 38505 3955]``.

    ``name`` is upper-case. ``text`` is what followed the name inside the
    brackets, verbatim (empty when nothing did). ``value`` is the parsed form for
    the codes mailmover reads:

    - ``UIDVALIDITY``, ``UIDNEXT``, ``UNSEEN``, ``HIGHESTMODSEQ``, ``APPENDLIMIT``: ``int``
    - ``APPENDUID``: ``(uidvalidity, [uid, ...])`` with ranges expanded
    - ``COPYUID``: ``(uidvalidity, [src uid, ...], [dst uid, ...])``
    - ``CAPABILITY``: ``frozenset`` of upper-case capability names
    - ``PERMANENTFLAGS``: ``tuple`` of flags as sent (``\\*`` included)
    - anything else (``TRYCREATE``, ``ALERT``, ``OVERQUOTA``, ``LIMIT``, ``TOOBIG``,
      ``UNAVAILABLE``, ``INUSE``, ``AUTHENTICATIONFAILED``, ``READ-ONLY`` …): ``None``
    """

    name: str
    text: str = ""
    value: object = None


@dataclass(frozen=True, slots=True)
class Tagged:
    """A tagged completion: ``A1 OK [code] text``."""

    tag: str
    status: Literal["OK", "NO", "BAD"]
    code: ResponseCode | None
    text: str


@dataclass(frozen=True, slots=True)
class Continuation:
    """A continuation request: ``+ text`` (text may be base64 for SASL)."""

    text: str


@dataclass(frozen=True, slots=True)
class UntaggedStatus:
    """``* OK/NO/BAD/PREAUTH/BYE [code] text`` (the greeting is one of these)."""

    status: StatusKind
    code: ResponseCode | None
    text: str


@dataclass(frozen=True, slots=True)
class Capability:
    """``* CAPABILITY ...``; names upper-cased."""

    capabilities: frozenset[str]


@dataclass(frozen=True, slots=True)
class Enabled:
    """``* ENABLED ...`` (RFC 5161); names upper-cased."""

    capabilities: frozenset[str]


@dataclass(frozen=True, slots=True)
class ListMailbox:
    """``* LIST (attrs) "delim" name`` or ``* LSUB ...``.

    ``attributes`` keep their backslash and are compared case-insensitively by
    callers (stored as sent). ``delimiter`` is None for NIL. ``name`` is decoded.
    """

    kind: Literal["LIST", "LSUB"]
    attributes: frozenset[str]
    delimiter: str | None
    name: str


@dataclass(frozen=True, slots=True)
class NamespaceEntry:
    prefix: str
    delimiter: str | None


@dataclass(frozen=True, slots=True)
class Namespace:
    """``* NAMESPACE`` (RFC 2342): personal, other users', shared; each may be empty."""

    personal: tuple[NamespaceEntry, ...]
    other: tuple[NamespaceEntry, ...]
    shared: tuple[NamespaceEntry, ...]


@dataclass(frozen=True, slots=True)
class MailboxStatus:
    """``* STATUS name (MESSAGES n UIDNEXT n ...)``; item names upper-cased."""

    name: str
    items: dict[str, int]


@dataclass(frozen=True, slots=True)
class Exists:
    count: int


@dataclass(frozen=True, slots=True)
class Recent:
    count: int


@dataclass(frozen=True, slots=True)
class Expunge:
    seq: int


@dataclass(frozen=True, slots=True)
class Flags:
    """``* FLAGS (...)``: the flags defined in the selected mailbox."""

    flags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Search:
    """``* SEARCH n n ...`` (optionally ``(MODSEQ n)`` at the end, RFC 7162)."""

    numbers: tuple[int, ...]
    modseq: int | None = None


@dataclass(frozen=True, slots=True)
class ESearch:
    """``* ESEARCH (TAG "A1") UID MIN n MAX n COUNT n ALL set`` (RFC 4731).

    ``all`` is the ALL set expanded to numbers; ``items`` holds the other
    numeric results (MIN, MAX, COUNT, MODSEQ) upper-cased.
    """

    tag: str | None
    uid: bool
    all: tuple[int, ...]
    items: dict[str, int]


@dataclass(slots=True)
class Fetch:
    """``* n FETCH (...)``. Only the items the server sent are set.

    ``body`` maps the section exactly as the server named it, upper-cased and
    without ``<origin>`` (``""`` for ``BODY[]``, ``"HEADER.FIELDS (MESSAGE-ID)"``,
    ``"1.MIME"``) to its bytes; a NIL section maps to ``b""``. ``RFC822`` maps to
    ``""`` too, ``RFC822.HEADER`` to ``"HEADER"``. ``binary`` holds ``BINARY[...]``
    sections (RFC 3516, content transfer decoding undone) keyed the same way.
    ``origins`` holds the ``<origin>`` of each partial section the server sent
    (``BODY[]<1048576>`` answers ``BODY.PEEK[]<1048576.262144>``: its bytes start
    there; an origin past the end comes with an empty string).
    """

    seq: int
    uid: int | None = None
    flags: tuple[str, ...] | None = None
    internaldate: datetime | None = None
    size: int | None = None
    modseq: int | None = None
    body: dict[str, bytes] = field(default_factory=dict)
    gm_msgid: int | None = None
    gm_thrid: int | None = None
    gm_labels: tuple[str, ...] | None = None
    binary: dict[str, bytes] = field(default_factory=dict)
    origins: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class UntaggedOther:
    """Any other untagged response (``* ID (...)``, ``* QUOTA ...``, ``* VANISHED ...``).

    ``name`` is the upper-cased first atom after ``*`` (after the number for
    ``* n NAME``); ``number`` is that number or None; ``raw`` is the rest of the
    response as received, literals inlined, without the final CRLF.
    """

    name: str
    number: int | None
    raw: bytes


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A complete untagged response the parser could not read: skipped, not fatal.

    The framing (lines and literals) was sound, so the responses after it are
    read as usual; ``line`` is the start of its first line (never literal data),
    ``reason`` what the parser objected to.
    """

    line: str
    reason: str


Untagged: TypeAlias = (
    UntaggedStatus
    | UntaggedOther
    | Unreadable
    | Capability
    | Enabled
    | ListMailbox
    | Namespace
    | MailboxStatus
    | Exists
    | Recent
    | Expunge
    | Flags
    | Search
    | ESearch
    | Fetch
)

Response: TypeAlias = Tagged | Continuation | Untagged
