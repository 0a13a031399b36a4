"""Response text and bracketed response codes (RFC 3501 s. 7.1, RFC 4315, 5530, 7162, 7889)."""

from __future__ import annotations

import re
from collections.abc import Callable

from mailmover.errors import ProtocolError
from mailmover.imap.proto.framing import Frame
from mailmover.imap.proto.lexer import Reader, text
from mailmover.imap.proto.responses import ResponseCode
from mailmover.imap.proto.sequences import parse_sequence_set

_CODE_NAME = re.compile(rb'[^\x00-\x20\x7f(){%*"\\\]]+')
_NUMBER = re.compile(rb" *([0-9]{1,20}) *")
_SET = rb"([0-9]+(?::[0-9]+)?(?:,[0-9]+(?::[0-9]+)?)*)"
_APPENDUID = re.compile(rb" *([0-9]{1,20}) +" + _SET + rb" *")
_COPYUID = re.compile(rb" *([0-9]{1,20}) +" + _SET + rb" +" + _SET + rb" *")


def _int(raw: bytes) -> object:
    m = _NUMBER.fullmatch(raw)
    return None if m is None else int(m.group(1))


def _appenduid(raw: bytes) -> object:
    m = _APPENDUID.fullmatch(raw)
    if m is None:
        return None
    return int(m.group(1)), parse_sequence_set(m.group(2))


def _copyuid(raw: bytes) -> object:
    m = _COPYUID.fullmatch(raw)
    if m is None:
        return None
    source, dest = parse_sequence_set(m.group(2)), parse_sequence_set(m.group(3))
    # RFC 4315 s. 3: the two sets pair up one to one; a mismatch cannot be trusted.
    if len(source) != len(dest):
        return None
    return int(m.group(1)), source, dest


def _capability(raw: bytes) -> object:
    return frozenset(text(word).upper() for word in raw.split())


def _permanentflags(raw: bytes) -> object:
    reader = Reader(Frame([raw.strip(b" ")], []))
    flags = reader.flag_list()
    reader.finish()
    return flags


_VALUES: dict[str, Callable[[bytes], object]] = {
    "UIDVALIDITY": _int,
    "UIDNEXT": _int,
    "UNSEEN": _int,
    "HIGHESTMODSEQ": _int,
    "APPENDLIMIT": _int,
    "APPENDUID": _appenduid,
    "COPYUID": _copyuid,
    "CAPABILITY": _capability,
    "PERMANENTFLAGS": _permanentflags,
}


def parse_code(inner: bytes) -> ResponseCode | None:
    """The code between ``[`` and ``]``; None when ``inner`` does not start with an atom.

    A code whose arguments cannot be read keeps its name and text with value None.
    """
    m = _CODE_NAME.match(inner)
    if m is None:
        return None
    name = text(m.group()).upper()
    rest = inner[m.end() :]
    if rest.startswith(b" "):
        rest = rest[1:]
    value: object = None
    parse = _VALUES.get(name)
    if parse is not None:
        try:
            value = parse(rest)
        except (ValueError, ProtocolError):
            value = None
    return ResponseCode(name, text(rest), value)


def parse_resp_text(raw: bytes) -> tuple[ResponseCode | None, str]:
    """``[code] text`` (both optional) after a status word.

    Servers are lenient here: the space before the text may be missing, and a
    ``[`` that does not open a well-formed code is plain text (Gmail:
    ``A1 OK [READ-WRITE] [Gmail]/All Mail selected.``).
    """
    raw = raw.lstrip(b" ")
    if raw.startswith(b"["):
        close = raw.find(b"]")
        if close > 0:
            code = parse_code(raw[1:close])
            if code is not None:
                return code, text(raw[close + 1 :].lstrip(b" "))
    return None, text(raw)
