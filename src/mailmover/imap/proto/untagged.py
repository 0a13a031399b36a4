"""Untagged server and mailbox data (RFC 3501 s. 7.2-7.4, 2342, 4731, 5161, 5258, 7162)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal

from mailmover.imap.proto.fetch import parse_fetch
from mailmover.imap.proto.lexer import Reader, text
from mailmover.imap.proto.responses import (
    Capability,
    Enabled,
    ESearch,
    Exists,
    Expunge,
    Flags,
    ListMailbox,
    MailboxStatus,
    Namespace,
    NamespaceEntry,
    Recent,
    Search,
    Untagged,
    UntaggedOther,
)
from mailmover.imap.proto.sequences import parse_sequence_set

NameDecoder = Callable[[bytes], str]

_NUMBER = rb"[0-9]{1,20}(?![0-9])"
# RFC 7162 s. 3.1.5: an optional (MODSEQ n) ends the list
_SEARCH = re.compile(
    rb"((?: +%s)*)(?: *\( *MODSEQ +(%s) *\))? *" % (_NUMBER, _NUMBER), re.IGNORECASE
)


def parse_untagged(reader: Reader, decode_name: NameDecoder) -> Untagged:
    """Everything after ``*`` except status responses (``* OK`` etc.)."""
    reader.skip_spaces()
    number = None
    if 0x30 <= reader.peek() <= 0x39:
        number = reader.number()
        reader.space()
    name = reader.name()
    if number is not None:
        if name == b"FETCH":
            reader.skip_spaces()
            return parse_fetch(reader, number, decode_name)
        numbered = _NUMBERED.get(name)
        if numbered is not None:
            reader.finish()
            return numbered(number)
    else:
        parse = _DATA.get(name)
        if parse is not None:
            return parse(reader, decode_name)
    if reader.peek() == 0x20:
        reader.pos += 1
    return UntaggedOther(text(name), number, reader.rest_raw())


def _words(reader: Reader) -> frozenset[str]:
    return frozenset(text(word).upper() for word in reader.rest_raw().split())


def _capability(reader: Reader, decode_name: NameDecoder) -> Capability:
    return Capability(_words(reader))


def _enabled(reader: Reader, decode_name: NameDecoder) -> Enabled:
    return Enabled(_words(reader))


def _flags(reader: Reader, decode_name: NameDecoder) -> Flags:
    reader.space()
    flags = reader.flag_list()
    reader.finish()
    return Flags(flags)


def _list(kind: Literal["LIST", "LSUB"]) -> Callable[[Reader, NameDecoder], ListMailbox]:
    def parse(reader: Reader, decode_name: NameDecoder) -> ListMailbox:
        reader.space()
        attributes = frozenset(reader.flag_list())
        reader.space()
        delimiter = reader.nstring()
        reader.space()
        name = decode_name(reader.astring())
        # RFC 5258 extended data, e.g. ("CHILDINFO" ("SUBSCRIBED")): not needed
        while reader.skip_spaces() and not reader.at_end():
            reader.skip_value()
        reader.finish()
        return ListMailbox(kind, attributes, None if delimiter is None else text(delimiter), name)

    return parse


def _namespace(reader: Reader, decode_name: NameDecoder) -> Namespace:
    groups: list[tuple[NamespaceEntry, ...]] = []
    for _ in range(3):
        reader.space()
        groups.append(_namespace_group(reader, decode_name))
    reader.finish()
    return Namespace(*groups)


def _namespace_group(reader: Reader, decode_name: NameDecoder) -> tuple[NamespaceEntry, ...]:
    """NIL or ``(("prefix" "delim" ext...)...)`` (RFC 2342 s. 5)."""
    if reader.is_nil():
        return ()
    reader.expect(b"(")
    entries: list[NamespaceEntry] = []
    while True:
        reader.skip_spaces()
        if reader.peek() == 0x29:  # ')'
            reader.pos += 1
            return tuple(entries)
        reader.expect(b"(")
        reader.skip_spaces()
        prefix = decode_name(reader.string())
        reader.space()
        delimiter = reader.nstring()
        while reader.skip_spaces() and reader.peek() != 0x29:
            reader.skip_value()  # namespace response extensions
        reader.expect(b")")
        entries.append(NamespaceEntry(prefix, None if delimiter is None else text(delimiter)))


def _status(reader: Reader, decode_name: NameDecoder) -> MailboxStatus:
    reader.space()
    name = decode_name(reader.astring())
    reader.skip_spaces()  # some servers omit the space before "("
    reader.expect(b"(")
    items: dict[str, int] = {}
    while True:
        reader.skip_spaces()
        if reader.peek() == 0x29:  # ')'
            reader.pos += 1
            break
        item = text(reader.atom()).upper()
        reader.space()
        if 0x30 <= reader.peek() <= 0x39:
            items[item] = reader.number()
        else:  # APPENDLIMIT NIL (RFC 7889) and unknown shapes
            reader.skip_value()
    reader.finish()
    return MailboxStatus(name, items)


def _search(reader: Reader, decode_name: NameDecoder) -> Search:
    # one regex for the whole line: a SEARCH over a big mailbox has a million numbers
    m = _SEARCH.fullmatch(reader.line, reader.pos)
    if m is None or not reader.on_last_line():
        raise reader.error("bad SEARCH response")
    reader.pos = len(reader.line)
    modseq = m.group(2)
    return Search(tuple(map(int, m.group(1).split())), None if modseq is None else int(modseq))


def _esearch(reader: Reader, decode_name: NameDecoder) -> ESearch:
    """``* ESEARCH (TAG "A1") UID MIN 1 ALL 1:3,5`` (RFC 4731 s. 3.1)."""
    tag = None
    uid = False
    found: tuple[int, ...] = ()
    items: dict[str, int] = {}
    reader.skip_spaces()
    if reader.peek() == 0x28:  # '(': search correlator, RFC 4466 s. 2.6.2
        reader.pos += 1
        while True:
            reader.skip_spaces()
            if reader.peek() == 0x29:
                reader.pos += 1
                break
            key = reader.name()
            reader.space()
            if key == b"TAG":
                tag = text(reader.astring())
            else:
                reader.skip_value()
    while True:
        reader.skip_spaces()
        if reader.at_end():
            break
        key = reader.name()
        if key == b"UID":
            uid = True
            continue
        reader.space()
        if key == b"ALL":
            try:
                found = tuple(parse_sequence_set(reader.atom()))
            except ValueError as exc:
                raise reader.error(str(exc)) from exc
        elif 0x30 <= reader.peek() <= 0x39:
            items[text(key)] = reader.number()
        else:  # PARTIAL (RFC 9394) and other extensions
            reader.skip_value()
    return ESearch(tag, uid, found, items)


_NUMBERED: dict[bytes, Callable[[int], Untagged]] = {
    b"EXISTS": Exists,
    b"RECENT": Recent,
    b"EXPUNGE": Expunge,
}

_DATA: dict[bytes, Callable[[Reader, NameDecoder], Untagged]] = {
    b"CAPABILITY": _capability,
    b"ENABLED": _enabled,
    b"FLAGS": _flags,
    b"LIST": _list("LIST"),
    b"LSUB": _list("LSUB"),
    b"NAMESPACE": _namespace,
    b"STATUS": _status,
    b"SEARCH": _search,
    b"ESEARCH": _esearch,
}
