"""The fast path for the FETCH shapes of a copy reads exactly what the general parser reads,
and leaves every other shape to it."""

from __future__ import annotations

from datetime import UTC, datetime
from unittest.mock import patch

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailmover.imap.proto.fastfetch import fast_fetch
from mailmover.imap.proto.framing import Frame
from mailmover.imap.proto.parser import ResponseParser
from mailmover.imap.proto.responses import Fetch, Response

BODY = b"Subject: x\r\n\r\n* 1 FETCH (UID 2 BODY[] {5}\r\nhello)\r\n"


def general(data: bytes) -> list[Response]:
    """What the parser reads from ``data`` (responses without their last CRLF) without
    the fast path."""
    with patch("mailmover.imap.proto.parser.fast_fetch", lambda frame: None):
        return ResponseParser().feed(data + b"\r\n")


def frame_of(data: bytes) -> Frame:
    """``data`` (one response, literals announced with ``{n}``) as the framer frames it."""
    lines: list[bytes] = []
    literals: list[bytes] = []
    while True:
        head, _, data = data.partition(b"\r\n")
        lines.append(head)
        if not head.endswith(b"}"):
            return Frame(lines, literals)
        size = int(head[head.rindex(b"{") + 1 : -1])
        literals.append(data[:size])
        data = data[size:]


# Dovecot 2.3's answers to a copy's listing and its body FETCHes, and the same items in
# other orders (as other servers send them).
FAST = [
    b'* 1 FETCH (UID 7 FLAGS (\\Seen $Label1) INTERNALDATE "04-Mar-2021 05:06:07 +0200"'
    b" RFC822.SIZE 1234)",
    b'* 2 FETCH (UID 8 FLAGS () INTERNALDATE " 4-Mar-2021 05:06:07 -0000" RFC822.SIZE 1)',
    b'* 3 FETCH (RFC822.SIZE 99 INTERNALDATE "31-Dec-1999 23:59:59 +1400" FLAGS (\\*) UID 9)',
    b'* 4 FETCH (FLAGS (\\Seen  \\Answered ) UID 10 INTERNALDATE "30-Feb-2021 00:00:00 +0000")',
    b'* 5 FETCH (UID 11 INTERNALDATE "01-Jan-2020 00:00:00 +0060" RFC822.SIZE 0)',
    b'* 6 FETCH (UID 12 FLAGS (\\Seen) INTERNALDATE "01-Jan-2020 \xff0:00:00 +0000")',
    b"* 7 FETCH (UID 13 UID 14)",
    b"* 8 FETCH (FLAGS (caf\xc3\xa9 \xff))",
    b"* 9 FETCH (UID 15 BODY[] {%d}\r\n%s)" % (len(BODY), BODY),
    b"* 10 FETCH (BODY[] {0}\r\n)",
    b"* 11 FETCH (BODY[] {5}\r\nhello UID 16)",
    b"* 12 FETCH (UID 17 BODY[] {5}\r\nhello UID 18)",
]

# Shapes the fast path leaves to the general parser.
GENERAL = [
    b"* 1 fetch (uid 7 flags (\\Seen))",
    b"* 1 FETCH (UID  7)",
    b"* 1 FETCH ( UID 7)",
    b"* 1 FETCH (UID 7 )",
    b"* 1 FETCH ()",
    b"* 1 FETCH (UID 7 INTERNALDATE NIL)",
    b'* 1 FETCH (UID 7 INTERNALDATE "01-Jan-2020 00:00:00 +0000\\"")',
    b"* 1 FETCH (UID 7 MODSEQ (12))",
    b"* 1 FETCH (UID 123456789012345678901)",
    b"* 1 FETCH (UID 7 X-GM-LABELS (\\Inbox))",
    b"* 1 FETCH (UID 7 FLAGS (\\Seen)) ",
    b"* 1 FETCH (UID 7 BODY[] NIL)",
    b"* 1 FETCH (UID 7 BODY[]<0> {5}\r\nhello)",
    b"* 1 FETCH (UID 7 BODY[HEADER] {5}\r\nhello)",
    b"* 1 FETCH (UID 7 RFC822.SIZE 5 BODY[] {5}\r\nhello)",
    b"* 1 FETCH (UID 7 BODY[] {5}\r\nhello FLAGS (\\Seen))",
    b"* 1 FETCH (UID 7 BODY[] {2}\r\nhi BODY[] {3}\r\nyou)",
    b"* 1 FETCH (UID 7 BODY[] ~{5}\r\nhello)",
    b"* 1 EXISTS",
    b"* OK [UIDNEXT 5] ok",
]


@pytest.mark.parametrize("data", FAST)
def test_common_shapes_take_the_fast_path_and_read_as_the_general_parser(data: bytes) -> None:
    fast = fast_fetch(frame_of(data))
    assert fast is not None
    assert [fast] == general(data)
    assert ResponseParser().feed(data + b"\r\n") == [fast]


@pytest.mark.parametrize("data", GENERAL)
def test_other_shapes_are_left_to_the_general_parser(data: bytes) -> None:
    assert fast_fetch(frame_of(data)) is None
    assert ResponseParser().feed(data + b"\r\n") == general(data)


def test_what_the_fast_path_reads() -> None:
    meta, body = ResponseParser().feed(FAST[0] + b"\r\n" + FAST[8] + b"\r\n")
    assert meta == Fetch(
        seq=1,
        uid=7,
        flags=("\\Seen", "$Label1"),
        internaldate=datetime(2021, 3, 4, 3, 6, 7, tzinfo=UTC),
        size=1234,
    )
    assert body == Fetch(seq=9, uid=15, body={"": BODY})


ITEMS = st.sampled_from([
    b"UID 1", b"UID 4294967295", b"UID 007", b"UID 123456789012345678901", b"uid 3",
    b"RFC822.SIZE 10", b"RFC822.SIZE 0", b"FLAGS ()", b"FLAGS (\\Seen)", b"FLAGS ( $A  \\* )",
    b"FLAGS (\\Seen", b"FLAGS (a]b)", b"FLAGS (\\\\x)",
    b'INTERNALDATE "17-Jul-1996 02:44:25 -0700"',
    b'INTERNALDATE " 1-jul-1996 02:44:25 +0000"', b'INTERNALDATE "17-Jul-96 02:44:25 -0700"',
    b'INTERNALDATE ""', b"INTERNALDATE NIL", b"MODSEQ (5)", b"X-FOO 1", b"", b"(", b")",
])  # fmt: skip
SEPARATORS = st.sampled_from([b" ", b" ", b" ", b"  ", b""])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(ITEMS, SEPARATORS), max_size=6),
    st.sampled_from([b"* 1 FETCH (", b"* 12 FETCH (", b"*  1 FETCH (", b"* 1 FETCH  ("]),
    st.sampled_from([b")", b" )", b"", b"))"]),
)
def test_any_listing_line_reads_as_the_general_parser_reads_it(
    items: list[tuple[bytes, bytes]], head: bytes, end: bytes
) -> None:
    line = head + b"".join(item + sep for item, sep in items).rstrip(b" ") + end
    fast = fast_fetch(Frame([line], []))
    assert ResponseParser().feed(line + b"\r\n") == general(line)
    if fast is not None:
        assert [fast] == general(line)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([b"* 3 FETCH (", b"* 3 FETCH (UID 9 ", b"* 3 FETCH (UID  9 "]),
    st.sampled_from([b"BODY[] ", b"BODY[]<0> ", b"BODY.PEEK[] ", b"RFC822 ", b"BODY[] ~"]),
    st.binary(max_size=40),
    st.sampled_from([b")", b" UID 10)", b" UID 10 )", b"UID 10)", b" FLAGS ())", b""]),
)
def test_any_body_response_reads_as_the_general_parser_reads_it(
    head: bytes, item: bytes, literal: bytes, tail: bytes
) -> None:
    first = head + item + b"{%d}" % len(literal)
    data = first + b"\r\n" + literal + tail
    fast = fast_fetch(Frame([first, tail], [literal]))
    assert ResponseParser().feed(data + b"\r\n") == general(data)
    if fast is not None:
        assert [fast] == general(data)
