"""The response parser on realistic server output, fed whole, in two pieces and byte by byte."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from parser_cases import CASES, MALFORMED, UNREADABLE

from mailmover.errors import ProtocolError
from mailmover.imap.proto.parser import ResponseParser
from mailmover.imap.proto.responses import (
    Continuation,
    Enabled,
    Exists,
    Fetch,
    ListMailbox,
    Response,
    ResponseCode,
    Tagged,
    Unreadable,
    UntaggedStatus,
)


def parse(chunks: Iterable[bytes], parser: ResponseParser | None = None) -> list[Response]:
    parser = parser or ResponseParser()
    out: list[Response] = []
    for chunk in chunks:
        out += parser.feed(chunk)
    assert parser.pending == 0
    return out


def two_pieces(data: bytes) -> Iterable[tuple[bytes, bytes]]:
    return ((data[:i], data[i:]) for i in range(len(data) + 1))


def byte_by_byte(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


IDS = [case[0] for case in CASES]


@pytest.mark.parametrize(("data", "expected"), [case[1:] for case in CASES], ids=IDS)
def test_whole(data: bytes, expected: list[Response]) -> None:
    assert parse([data]) == expected


@pytest.mark.parametrize(("data", "expected"), [case[1:] for case in CASES], ids=IDS)
def test_split_at_every_offset(data: bytes, expected: list[Response]) -> None:
    for pieces in two_pieces(data):
        assert parse(pieces) == expected, pieces


@pytest.mark.parametrize(("data", "expected"), [case[1:] for case in CASES], ids=IDS)
def test_byte_by_byte(data: bytes, expected: list[Response]) -> None:
    assert parse(byte_by_byte(data)) == expected


def test_whole_table_as_one_stream() -> None:
    stream = b"".join(case[1] for case in CASES)
    expected = [response for case in CASES for response in case[2]]
    assert parse([stream]) == expected
    assert parse(byte_by_byte(stream)) == expected


@pytest.mark.parametrize("data", [case[1] for case in UNREADABLE], ids=[c[0] for c in UNREADABLE])
def test_unreadable_response_is_skipped_and_reading_goes_on(data: bytes) -> None:
    stream = b"* 2 EXISTS\r\n" + data + b"A1 OK done\r\n"
    for chunks in ([stream], byte_by_byte(stream)):
        got = parse(chunks)
        assert got[0] == Exists(2) and got[2] == Tagged("A1", "OK", None, "done"), got
        assert isinstance(got[1], Unreadable) and got[1].reason, got
        assert len(got[1].line) <= 120 and "\n" not in got[1].line


@pytest.mark.parametrize("data", [case[1] for case in MALFORMED], ids=[c[0] for c in MALFORMED])
def test_malformed_raises_protocol_error(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        ResponseParser().feed(data)
    parser = ResponseParser()
    with pytest.raises(ProtocolError):
        for chunk in byte_by_byte(data):
            parser.feed(chunk)
    # the parser stays failed: the connection must be dropped
    with pytest.raises(ProtocolError):
        parser.feed(b"A1 OK fine\r\n")


def test_pending_counts_the_incomplete_response() -> None:
    parser = ResponseParser()
    assert parser.pending == 0
    assert parser.feed(b"* 1 EXISTS\r\n* 2 FETCH (BODY[] {10}\r\n01234") == [Exists(1)]
    assert parser.pending == len(b"* 2 FETCH (BODY[] {10}\r\n01234")
    assert parser.feed(b"56789)\r\nA1 O") == [Fetch(seq=2, body={"": b"0123456789"})]
    assert parser.pending == 4


def test_status_line_ending_in_braces_is_text_not_a_literal() -> None:
    stream = b"A1 NO [ALERT] quota {5}\r\n+ go on {3}\r\nA2 OK done\r\n"
    assert parse([stream]) == [
        Tagged("A1", "NO", ResponseCode("ALERT"), "quota {5}"),
        Continuation("go on {3}"),
        Tagged("A2", "OK", None, "done"),
    ]


def test_utf8_names_turns_off_modified_utf7() -> None:
    line = b'* LIST () "/" "Entw&APw-rfe"\r\n* LIST () "/" "Entw\xc3\xbcrfe"\r\n'
    parser = ResponseParser()
    assert [r.name for r in parser.feed(line) if isinstance(r, ListMailbox)] == [
        "Entwürfe",
        "Entw\xfcrfe",
    ]
    parser.utf8_names = True
    assert [r.name for r in parser.feed(line) if isinstance(r, ListMailbox)] == [
        "Entw&APw-rfe",
        "Entwürfe",
    ]


def test_names_that_are_not_modified_utf7_stay_as_sent() -> None:
    data = b'* LIST () "/" "&APw-\xff"\r\n* LIST () "/" "a&b"\r\n* LIST () "/" "&-&Jjo-"\r\n'
    assert [r.name for r in parse([data]) if isinstance(r, ListMailbox)] == [
        "&APw-\udcff",
        "a&b",
        "&☺",
    ]


def test_enabled_utf8_accept_applies_to_the_rest_of_the_same_chunk() -> None:
    parser = ResponseParser()
    out = parser.feed(
        b'* ENABLED UTF8=ACCEPT\r\nA1 OK enabled\r\n* LIST () "/" "Entw&APw-rfe"\r\n'
        b'* 1 FETCH (X-GM-LABELS ("&AOk-t&AOk-"))\r\n'
    )
    assert out[0] == Enabled(frozenset({"UTF8=ACCEPT"}))
    assert parser.utf8_names
    assert out[2] == ListMailbox("LIST", frozenset(), "/", "Entw&APw-rfe")
    assert out[3] == Fetch(seq=1, gm_labels=("&AOk-t&AOk-",))


def test_enabled_without_utf8_leaves_names_alone() -> None:
    parser = ResponseParser()
    parser.feed(b"* ENABLED CONDSTORE\r\n")
    assert not parser.utf8_names


def test_zero_length_literals() -> None:
    data = b'* 1 FETCH (BODY[] {0}\r\n BODY[1] ~{0}\r\n)\r\n* LIST () "/" {0}\r\n\r\n'
    expected = [Fetch(seq=1, body={"": b"", "1": b""}), ListMailbox("LIST", frozenset(), "/", "")]
    assert parse([data]) == expected
    assert parse(byte_by_byte(data)) == expected


def test_response_text_cap() -> None:
    parser = ResponseParser(max_response_text=100)
    assert parser.feed(b"* SEARCH " + b"1 " * 45 + b"\r\n")  # 99 bytes: fine
    with pytest.raises(ProtocolError):
        parser.feed(b"* SEARCH " + b"1 " * 46 + b"2\r\n")


def test_response_text_cap_spans_lines_but_not_literals() -> None:
    parser = ResponseParser(max_response_text=40)
    big = b"x" * 1000
    assert parser.feed(b"* 1 FETCH (BODY[] {1000}\r\n" + big + b")\r\n") == [
        Fetch(seq=1, body={"": big})
    ]
    with pytest.raises(ProtocolError):
        parser.feed(b"* 1 FETCH (BODY[1] {1}\r\na BODY[2] {1}\r\nb BODY[3] {1}\r\nc)\r\n")


def test_garbage_without_line_end_is_refused_early() -> None:
    parser = ResponseParser(max_response_text=1000)
    with pytest.raises(ProtocolError):
        for _ in range(100):
            parser.feed(b"\x00" * 100)
    assert parser.pending <= 1100


def test_greeting_bye_is_a_status_response() -> None:
    assert parse([b"* BYE too many connections from your IP\r\n"]) == [
        UntaggedStatus("BYE", None, "too many connections from your IP")
    ]
