"""Large literals: every byte comes back exactly, whatever the chunking."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from mailmover.imap.proto.parser import ResponseParser
from mailmover.imap.proto.responses import Fetch, Response, Tagged


def awkward_body(size: int, seed: int) -> bytes:
    """Random bytes salted with things that look like protocol: CRLF, literals, tags."""
    rng = random.Random(seed)
    parts = []
    total = 0
    while total < size:
        part = rng.choice(
            [b"\r\n", b"{12}\r\n", b")\r\n", b"A1 OK\r\n", b"~{3}", rng.randbytes(97)]
        )
        parts.append(part)
        total += len(part)
    return b"".join(parts)[:size]


def fetch_stream(body: bytes, binary: bool = False) -> bytes:
    marker = b"~" if binary else b""
    item = b"BINARY[]" if binary else b"BODY[]"
    return b"* 7 FETCH (UID 70 %s %s{%d}\r\n%s FLAGS (\\Seen))\r\nA5 OK Fetch completed.\r\n" % (
        item,
        marker,
        len(body),
        body,
    )


def feed_in(stream: bytes, sizes: list[int]) -> tuple[list[Response], list[int]]:
    """Feed ``stream`` in chunks of the given sizes (cycled); also note ``pending`` after each."""
    parser = ResponseParser()
    out: list[Response] = []
    pendings = []
    pos = 0
    i = 0
    while pos < len(stream):
        size = sizes[i % len(sizes)]
        out += parser.feed(stream[pos : pos + size])
        pos += size
        i += 1
        pendings.append(parser.pending)
    return out, pendings


BODY = awkward_body(3 * 1024 * 1024 + 17, seed=1)
DONE = Tagged("A5", "OK", None, "Fetch completed.")


@settings(max_examples=10, deadline=None)
@given(st.lists(st.integers(min_value=509, max_value=200_000), min_size=1, max_size=8))
def test_multi_megabyte_literal_round_trip(sizes: list[int]) -> None:
    out, pendings = feed_in(fetch_stream(BODY), sizes)
    assert out == [Fetch(seq=7, uid=70, flags=("\\Seen",), body={"": BODY}), DONE]
    assert pendings[-1] == 0
    assert max(pendings) > len(BODY) // 2  # the body was held until its response completed


def test_binary_literal_round_trip_in_64k_chunks() -> None:
    out, _ = feed_in(fetch_stream(BODY, binary=True), [65536])
    assert out == [Fetch(seq=7, uid=70, flags=("\\Seen",), binary={"": BODY}), DONE]


def test_literal_byte_by_byte() -> None:
    body = awkward_body(50_000, seed=2)
    out, pendings = feed_in(fetch_stream(body), [1])
    assert out == [Fetch(seq=7, uid=70, flags=("\\Seen",), body={"": body}), DONE]
    assert pendings[-1] == 0


def test_many_literal_responses_in_one_chunk() -> None:
    bodies = [awkward_body(n, seed=n) for n in (0, 1, 2, 100, 70_000)]
    stream = b"".join(
        b"* %d FETCH (BODY[] {%d}\r\n%s UID %d)\r\n" % (i + 1, len(b), b, 10 + i)
        for i, b in enumerate(bodies)
    )
    expected = [Fetch(seq=i + 1, uid=10 + i, body={"": b}) for i, b in enumerate(bodies)]
    assert ResponseParser().feed(stream) == expected
    assert feed_in(stream, [4093, 1, 65536])[0] == expected
