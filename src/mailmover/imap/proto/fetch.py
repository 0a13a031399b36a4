"""``* n FETCH (...)`` data items (RFC 3501 s. 7.4.2, 3516, 7162, Gmail's X-GM-EXT-1)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

from mailmover.imap.proto.dates import parse_imap_datetime
from mailmover.imap.proto.lexer import Reader, text
from mailmover.imap.proto.responses import Fetch

# An item name, its [section] and <origin> if any, and the space before its value.
_ITEM = re.compile(rb' *([^\x00-\x20\x7f(){%*"\\\[\]<>]+)(?:\[([^\]]*)\])?(?:<([0-9]+)>)? +')
_END = re.compile(rb" *\)")
#: sections of RFC822.* items as their BODY[] equivalents
_RFC822 = {b"RFC822": "", b"RFC822.HEADER": "HEADER", b"RFC822.TEXT": "TEXT"}


def read_internaldate(raw: bytes) -> datetime | None:
    """INTERNALDATE as an aware datetime; None when the server sent no valid date-time."""
    try:
        return parse_imap_datetime(raw.decode("ascii"))
    except ValueError:  # UnicodeDecodeError included
        return None


def parse_fetch(reader: Reader, seq: int, decode_name: Callable[[bytes], str]) -> Fetch:
    """The parenthesised item list after ``* seq FETCH``; unknown items are skipped."""
    fetch = Fetch(seq=seq)
    reader.expect(b"(")
    while True:
        item = _ITEM.match(reader.line, reader.pos)
        if item is None:
            end = _END.match(reader.line, reader.pos)
            if end is None:
                raise reader.error("expected a FETCH item")
            reader.pos = end.end()
            break
        reader.pos = item.end()
        name, section, origin = item.group(1).upper(), item.group(2), item.group(3)
        key = None if section is None else text(section).upper()
        _read_item(reader, fetch, name, key, decode_name)
        if key is not None and origin is not None:
            fetch.origins[key] = int(origin)
    reader.finish()
    return fetch


def _read_item(
    reader: Reader,
    fetch: Fetch,
    name: bytes,
    section: str | None,
    decode_name: Callable[[bytes], str],
) -> None:
    if section is not None:
        if name in (b"BODY", b"BODY.PEEK"):
            fetch.body[section] = reader.nstring() or b""
        elif name == b"BINARY":
            fetch.binary[section] = reader.nstring() or b""
        else:  # BINARY.SIZE[...] and extensions
            reader.skip_value()
    elif name in _RFC822:
        fetch.body[_RFC822[name]] = reader.nstring() or b""
    elif name == b"UID":
        fetch.uid = reader.number()
    elif name == b"FLAGS":
        fetch.flags = reader.flag_list()
    elif name == b"INTERNALDATE":
        raw = reader.nstring()
        fetch.internaldate = None if raw is None else read_internaldate(raw)
    elif name == b"RFC822.SIZE":
        fetch.size = reader.number()
    elif name == b"MODSEQ":
        fetch.modseq = _modseq(reader)
    elif name == b"X-GM-MSGID":
        fetch.gm_msgid = reader.number()
    elif name == b"X-GM-THRID":
        fetch.gm_thrid = reader.number()
    elif name == b"X-GM-LABELS":
        fetch.gm_labels = _labels(reader, decode_name)
    else:  # ENVELOPE, BODYSTRUCTURE, BODY, EMAILID, PREVIEW...
        reader.skip_value()


def _modseq(reader: Reader) -> int:
    """``(12345)`` (RFC 7162 s. 3.1.4.1); a bare number is tolerated."""
    if reader.peek() != 0x28:  # '('
        return reader.number()
    reader.pos += 1
    reader.skip_spaces()
    value = reader.number()
    reader.skip_spaces()
    reader.expect(b")")
    return value


def _labels(reader: Reader, decode_name: Callable[[bytes], str]) -> tuple[str, ...]:
    """Gmail labels: atoms (``\\Inbox`` keeps its backslash), quoted strings or literals."""
    if reader.is_nil():
        return ()
    reader.expect(b"(")
    labels: list[str] = []
    while True:
        reader.skip_spaces()
        if reader.peek() == 0x29:  # ')'
            reader.pos += 1
            return tuple(labels)
        raw = reader.flag() if reader.peek() == 0x5C else reader.astring()  # '\\'
        labels.append(decode_name(raw))
