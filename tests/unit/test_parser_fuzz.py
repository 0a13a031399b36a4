"""Property tests: chunking never changes the result; garbage never escapes as anything but
ProtocolError."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from parser_cases import CASES, MALFORMED

from mailmover.errors import ProtocolError
from mailmover.imap.proto.parser import ResponseParser
from mailmover.imap.proto.responses import Response

STREAM = b"".join(case[1] for case in CASES)
EXPECTED = [response for case in CASES for response in case[2]]

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Pieces of IMAP that reach deep into the parser when shuffled together.
TOKENS = [
    b"* ", b"A1 ", b"+ ", b"OK ", b"NO", b"BYE", b"FETCH ", b"1 ", b"42", b"(", b")", b" ",
    b"\r\n", b"\n", b"{3}\r\n", b"{0}\r\n", b"~{2}\r\n", b"abc", b'"', b'"q\\"x"', b"\\",
    b"NIL", b"BODY[", b"]", b"<0>", b"HEADER.FIELDS (DATE)", b"UID ", b"FLAGS ", b"\\Seen",
    b"X-GM-LABELS ", b"MODSEQ ", b"INTERNALDATE ", b'"17-Jul-1996 02:44:25 -0700"',
    b"LIST ", b"STATUS ", b"NAMESPACE ", b"SEARCH ", b"ESEARCH ", b"ALL ", b"1:3,5", b"*",
    b"CAPABILITY ", b"[", b"APPENDUID 1 2:4", b"COPYUID 1 2 3", b"PERMANENTFLAGS (\\*)",
    b"RFC822.SIZE ", b"BINARY[]", b"ENVELOPE ", b"\xff", b"\x00", b"~", b"EXISTS", b"&",
    b"&APw-", b"-", b"&-", b"&Jjo",
]  # fmt: skip


def feed_all(parser: ResponseParser, chunks: list[bytes]) -> list[Response]:
    out: list[Response] = []
    for chunk in chunks:
        out += parser.feed(chunk)
    return out


def cut(data: bytes, offsets: list[int]) -> list[bytes]:
    points = sorted({o % (len(data) + 1) for o in offsets})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


def outcome(chunks: list[bytes]) -> tuple[str, object]:
    """What feeding these chunks comes to: the responses and what is pending, or an error."""
    parser = ResponseParser()
    try:
        responses = feed_all(parser, chunks)
    except ProtocolError:
        # stays failed
        try:
            parser.feed(b"A1 OK\r\n")
        except ProtocolError:
            return ("error", None)
        raise AssertionError("parser accepted input after a ProtocolError") from None
    return ("ok", (responses, parser.pending))


@FUZZ
@given(st.lists(st.integers(min_value=0), max_size=60))
def test_random_chunkings_equal_whole_stream(offsets: list[int]) -> None:
    parser = ResponseParser()
    assert feed_all(parser, cut(STREAM, offsets)) == EXPECTED
    assert parser.pending == 0


@FUZZ
@given(st.integers(min_value=0, max_value=len(STREAM)))
def test_pending_marks_where_the_last_complete_response_ended(k: int) -> None:
    parser = ResponseParser()
    done = feed_all(parser, [STREAM[i : min(i + 7, k)] for i in range(0, k, 7)])
    again = ResponseParser()
    assert again.feed(STREAM[: k - parser.pending]) == done
    assert again.pending == 0


@FUZZ
@given(st.binary(max_size=400), st.lists(st.integers(min_value=0), max_size=20))
def test_random_bytes_parse_or_raise_protocol_error(data: bytes, offsets: list[int]) -> None:
    assert outcome([data]) == outcome(cut(data, offsets))


@FUZZ
@given(
    st.lists(st.sampled_from(TOKENS), max_size=60).map(b"".join),
    st.lists(st.integers(min_value=0), max_size=20),
)
def test_token_soup_parses_or_raises_protocol_error(data: bytes, offsets: list[int]) -> None:
    assert outcome([data]) == outcome(cut(data, offsets))


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A realistic response with a few bytes inserted, deleted or replaced."""
    data = bytearray(draw(st.sampled_from([c[1] for c in CASES] + [c[1] for c in MALFORMED])))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        at = draw(st.integers(min_value=0, max_value=len(data)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        byte = draw(st.sampled_from([*b' ()[]{}"\\\r\n0~*+<>&-x', 0, 0xFF]))
        if action == "insert":
            data[at:at] = bytes([byte])
        elif at < len(data):
            data[at : at + 1] = b"" if action == "delete" else bytes([byte])
    return bytes(data)


@FUZZ
@given(mutated(), st.lists(st.integers(min_value=0), max_size=20))
def test_mutated_responses_parse_or_raise_protocol_error(data: bytes, offsets: list[int]) -> None:
    assert outcome([data]) == outcome(cut(data, offsets))
