"""The two FETCH shapes a copy reads by the hundred thousand, each read by one regex.

A copy lists every message (``UID FLAGS INTERNALDATE RFC822.SIZE``) and fetches
every body (``UID BODY[]``); reading those through the general parser
(:func:`mailmover.imap.proto.fetch.parse_fetch`) was the largest share of the
CPU of a copy of small messages. :func:`fast_fetch` reads only those items, in
any order, spelled as servers send them (upper case, single spaces) and gives
exactly what the general parser gives for them; for anything else it returns
None and the general parser reads the response.
"""

from __future__ import annotations

import functools
import re

from mailmover.imap.proto.fetch import read_internaldate
from mailmover.imap.proto.framing import Frame
from mailmover.imap.proto.lexer import FLAG_LIST_ITEMS, text
from mailmover.imap.proto.responses import Fetch

_N = rb"[0-9]{1,20}"
# UID, RFC822.SIZE, FLAGS and INTERNALDATE, each followed by " " and another item or by ")".
_META = re.compile(
    rb"\* (?P<seq>%(n)s) FETCH \((?:(?:UID (?P<uid>%(n)s)|RFC822\.SIZE (?P<size>%(n)s)"
    rb'|FLAGS \((?P<flags>%(flags)s) *\)|INTERNALDATE "(?P<date>[^"\\]*)")(?: (?=[A-Z])|(?=\))))+\)'
    % {b"n": _N, b"flags": FLAG_LIST_ITEMS}
)
# ``BODY[] {n}`` (the literal follows), UID before it or after it.
_BODY_HEAD = re.compile(rb"\* (%s) FETCH \((?:UID (%s) )?BODY\[\] \{[0-9]{1,19}\}" % (_N, _N))
_BODY_TAIL = re.compile(rb"(?: UID (%s))?\)" % _N)


def fast_fetch(frame: Frame) -> Fetch | None:
    """The FETCH response in ``frame`` if it has one of the shapes above, else None."""
    lines = frame.lines
    if len(lines) == 1:
        m = _META.fullmatch(lines[0])
        if m is None:
            return None
        seq, uid, size, flags, date = m.group("seq", "uid", "size", "flags", "date")
        fetch = Fetch(int(seq))
        if uid is not None:
            fetch.uid = int(uid)
        if size is not None:
            fetch.size = int(size)
        if flags is not None:
            fetch.flags = _flags(flags)
        if date is not None:
            fetch.internaldate = read_internaldate(date)
        return fetch
    if len(lines) == 2:
        head = _BODY_HEAD.fullmatch(lines[0])
        tail = _BODY_TAIL.fullmatch(lines[1]) if head is not None else None
        if tail is None:
            return None
        assert head is not None
        uid = tail.group(1) or head.group(2)
        fetch = Fetch(int(head.group(1)), body={"": frame.literals[0]})
        if uid is not None:
            fetch.uid = int(uid)
        return fetch
    return None


@functools.lru_cache(maxsize=1024)
def _flags(raw: bytes) -> tuple[str, ...]:
    """A flag list as received, read once: a folder holds a few distinct ones."""
    return tuple(text(flag) for flag in raw.split())
