"""Serialised commands read back by a reference reader written from RFC 3501 section 9."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailmover.imap.proto.commands import (
    Arg,
    Atom,
    Literal,
    Mailbox,
    ParenList,
    imap_datetime,
    quote,
    serialize,
)
from mailmover.imap.proto.utf7 import encode as utf7_encode

# -- a reference reader, written from RFC 3501 section 9 and RFC 7888 -----------------


@dataclass
class Tok:
    kind: str  # "atom", "quoted", "literal", "list"
    data: bytes = b""
    binary: bool = False
    nonsync: bool = False
    items: list[Tok] = field(default_factory=list)


def unquote(raw: bytes) -> bytes:
    """The content of an RFC 3501 quoted string (quoted-specials escaped, no CR/LF)."""
    assert raw[:1] == b'"' and raw[-1:] == b'"' and len(raw) >= 2
    out = bytearray()
    body = raw[1:-1]
    index = 0
    while index < len(body):
        char = body[index : index + 1]
        assert char not in (b"\r", b"\n", b"\x00", b'"')
        if char == b"\\":
            escaped = body[index + 1 : index + 2]
            assert escaped in (b"\\", b'"'), raw
            out += escaped
            index += 2
        else:
            out += char
            index += 1
    return bytes(out)


class Reader:
    """Reads one serialised command and checks where its CR, LF and parts may be."""

    def __init__(self, parts: list[bytes]) -> None:
        assert parts, "no parts"
        self.parts = parts
        self.buf = b"".join(parts)
        self.pos = 0
        self.literal_ranges: list[tuple[int, int]] = []
        self.allowed_crlf: set[int] = set()
        self.sync_starts: list[int] = []

    def read(self) -> list[Tok]:
        tokens = [self.token()]
        while self.buf[self.pos : self.pos + 1] == b" ":
            self.pos += 1
            tokens.append(self.token())
        assert self.buf[self.pos :] == b"\r\n", self.buf[self.pos :]
        self.allowed_crlf.add(self.pos)
        self.check_line_breaks()
        boundaries, total = [], 0
        for part in self.parts[:-1]:
            total += len(part)
            boundaries.append(total)
        assert boundaries == self.sync_starts
        return tokens

    def check_line_breaks(self) -> None:
        for index, byte in enumerate(self.buf):
            if byte not in b"\r\n" or any(a <= index < b for a, b in self.literal_ranges):
                continue
            start = index if byte == ord("\r") else index - 1
            assert start in self.allowed_crlf, f"bare CR/LF at {index}: {self.buf!r}"

    def token(self) -> Tok:
        head = self.buf[self.pos : self.pos + 1]
        if head == b"(":
            self.pos += 1
            items: list[Tok] = []
            if self.buf[self.pos : self.pos + 1] != b")":
                items.append(self.token())
                while self.buf[self.pos : self.pos + 1] == b" ":
                    self.pos += 1
                    items.append(self.token())
            assert self.buf[self.pos : self.pos + 1] == b")"
            self.pos += 1
            return Tok("list", items=items)
        if head == b'"':
            end = self.pos + 1
            while self.buf[end : end + 1] != b'"':
                end += 2 if self.buf[end : end + 1] == b"\\" else 1
                assert end < len(self.buf), "unterminated quoted string"
            raw = self.buf[self.pos : end + 1]
            self.pos = end + 1
            return Tok("quoted", unquote(raw))
        if head == b"{" or self.buf[self.pos : self.pos + 2] == b"~{":
            binary = head == b"~"
            close = self.buf.index(b"}", self.pos)
            number = self.buf[self.pos + (2 if binary else 1) : close]
            nonsync = number.endswith(b"+")
            digits = number.rstrip(b"+")
            assert digits.isdigit() and (digits == b"0" or not digits.startswith(b"0"))
            assert self.buf[close + 1 : close + 3] == b"\r\n"
            self.allowed_crlf.add(close + 1)
            start = close + 3
            size = int(digits)
            if not nonsync:
                self.sync_starts.append(start)
            self.literal_ranges.append((start, start + size))
            self.pos = start + size
            assert self.pos <= len(self.buf)
            return Tok("literal", self.buf[start : self.pos], binary, nonsync)
        end = self.pos
        while end < len(self.buf) and self.buf[end : end + 1] not in (b" ", b")", b"\r", b"\n"):
            end += 1
        atom = self.buf[self.pos : end]
        assert atom, f"empty atom at {self.pos}: {self.buf!r}"
        assert not any(c in atom for c in b'{"\x00'), atom
        self.pos = end
        return Tok("atom", atom)


def read(parts: list[bytes]) -> list[Tok]:
    return Reader(parts).read()


def test_reader_reads_a_known_command() -> None:
    tokens = read([b'A1 APPEND INBOX (\\Seen) "a\\"b" {3}\r\n', b"x\r\n\r\n"])
    assert [t.kind for t in tokens] == ["atom", "atom", "atom", "list", "quoted", "literal"]
    assert tokens[3].items[0].data == b"\\Seen"
    assert tokens[4].data == b'a"b'
    assert tokens[5].data == b"x\r\n"


@pytest.mark.parametrize(
    "parts",
    [
        [b"A1 X a\nb\r\n"],  # bare LF
        [b"A1 X a\rb\r\n"],  # bare CR
        [b'A1 X "a\r\nb"\r\n'],  # line break inside a quoted string
        [b"A1 X {3}\r\nabc\r\n"],  # synchronising literal not split into parts
        [b"A1 X {3+}\r\n", b"abc\r\n"],  # split after a non-synchronising one
        [b"A1 X  a\r\n"],  # empty atom
        [b"A1 X a"],  # no CRLF
    ],
)
def test_reader_rejects(parts: list[bytes]) -> None:
    with pytest.raises(AssertionError):
        read(parts)


# -- quoting ------------------------------------------------------------------------


quotable = st.text(st.characters(max_codepoint=0x7F, exclude_characters="\r\n\x00"))
quotable_utf8 = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\r\n\x00"))


@settings(max_examples=200)
@given(quotable)
def test_quote_round_trip(text: str) -> None:
    assert unquote(quote(text)) == text.encode("ascii")


@settings(max_examples=200)
@given(quotable_utf8)
def test_quote_round_trip_utf8(text: str) -> None:
    assert unquote(quote(text, utf8=True)).decode("utf-8") == text


# -- arbitrary commands read back by the reference reader ------------------------------


def matches(arg: Arg, tok: Tok, *, utf8: bool, plus: bool, minus: bool) -> bool:
    def is_string(data: bytes) -> bool:
        if tok.kind == "atom":
            return tok.data == data and tok.data.upper() != b"NIL"
        if tok.kind == "literal":
            return not tok.binary and tok.data == data
        return tok.kind == "quoted" and tok.data == data

    if tok.kind == "literal":
        nonsync = plus or (minus and len(tok.data) <= 4096)
        if tok.nonsync != nonsync:
            return False
    if arg is None:
        return tok.kind == "atom" and tok.data == b"NIL"
    if isinstance(arg, str):
        return is_string(arg.encode("utf-8"))
    if isinstance(arg, Mailbox):
        name = arg.name if utf8 else utf7_encode(arg.name)
        return is_string(name.encode("utf-8"))
    if isinstance(arg, int):
        return tok.kind == "atom" and tok.data == str(arg).encode()
    if isinstance(arg, bytes):
        return tok.kind == "literal" and not tok.binary and tok.data == arg
    if isinstance(arg, Literal):
        return tok.kind == "literal" and tok.binary == arg.binary and tok.data == arg.data
    if isinstance(arg, Atom):
        return tok.kind == "atom" and tok.data == arg.value.encode()
    if isinstance(arg, datetime):
        return tok.kind == "quoted" and tok.data == imap_datetime(arg).encode()
    assert isinstance(arg, ParenList)
    return (
        tok.kind == "list"
        and len(tok.items) == len(arg.items)
        and all(
            matches(a, t, utf8=utf8, plus=plus, minus=minus)
            for a, t in zip(arg.items, tok.items, strict=True)
        )
    )


text_args = st.one_of(
    st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=12),
    st.sampled_from(["", "NIL", "nil", "INBOX", "a b", '"', "\\", "\r\n", "\n", "\r", "{3}"]),
    st.integers(995, 1005).map(lambda n: "é" * (n // 2) if n % 2 else "a" * n),
)
leaf_args: st.SearchStrategy[Arg] = st.one_of(
    text_args,
    st.none(),
    st.integers(0, 2**63),
    st.binary(max_size=12),
    st.builds(Literal, st.binary(max_size=12), st.booleans()),
    st.integers(4094, 4098).map(lambda n: Literal(b"\r\n" * (n // 2) + b"x" * (n % 2))),
    st.builds(Mailbox, text_args),
    st.sampled_from([Atom("\\Seen"), Atom("BODY.PEEK[]"), Atom("UID"), Atom("1:*")]),
    st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1)),
)
args_strategy = st.lists(
    st.recursive(leaf_args, lambda inner: st.lists(inner, max_size=4).map(ParenList), max_leaves=8),
    max_size=5,
)


@settings(max_examples=200, deadline=None)
@given(args_strategy, st.booleans(), st.booleans(), st.booleans())
def test_any_command_reads_back(args: list[Arg], plus: bool, minus: bool, utf8: bool) -> None:
    parts = serialize("A001", "UID STORE", args, literal_plus=plus, literal_minus=minus, utf8=utf8)
    # Reader checks: only the final CRLF and literal announcements break lines,
    # and parts split exactly after synchronising announcements.
    reader = Reader(parts)
    tokens = reader.read()
    assert [tok.data for tok in tokens[:3]] == [b"A001", b"UID", b"STORE"]
    assert len(tokens) == len(args) + 3
    for arg, tok in zip(args, tokens[3:], strict=True):
        assert matches(arg, tok, utf8=utf8, plus=plus, minus=minus), (arg, tok)
    if not utf8:
        outside = bytearray(reader.buf)
        for start, end in reader.literal_ranges:
            outside[start:end] = b"\x00" * (end - start)
        assert outside.replace(b"\x00", b"").isascii()
