"""Byte-level building blocks for test messages: CRLF headers, text, MIME parts."""

from __future__ import annotations

import base64
import random
from collections.abc import Sequence
from datetime import datetime
from email.utils import format_datetime

CRLF = b"\r\n"

_WORD_TEXT = (
    "the of and to in is that for it as was with be by on not he this are or his from at "
    "which but have an they you were her she there been one all we their has would when "
    "if so no will can more other its out about into up than some them these could time "
    "migration mailbox server folder message invoice meeting report budget quarter review "
    "release schedule draft contract project update please attached thanks regards team"
)
WORDS = tuple(_WORD_TEXT.split())

Headers = list[tuple[str, bytes | str]]
HeaderSeq = Sequence[tuple[str, bytes | str]]


def header_block(headers: HeaderSeq) -> bytes:
    """Header lines in order, each ended by CRLF; str values are encoded as UTF-8."""
    return b"".join(
        b"%s: %s\r\n" % (name.encode("ascii"), v if isinstance(v, bytes) else v.encode("utf-8"))
        for name, v in headers
    )


def message(headers: HeaderSeq, body: bytes) -> bytes:
    """A whole message: headers, empty line, body; the result ends with CRLF."""
    if body and not body.endswith(CRLF):
        body += CRLF
    return header_block(headers) + CRLF + body


def rfc5322_date(moment: datetime) -> str:
    """A Date header value for an aware datetime."""
    text: str = format_datetime(moment)
    return text


def sentence(rng: random.Random, words: int) -> str:
    """Random words, capitalised, ending with a full stop."""
    text = " ".join(rng.choice(WORDS) for _ in range(words))
    return text[:1].upper() + text[1:] + "."


def text_body(rng: random.Random, lines: int, width: int = 72) -> bytes:
    """Plain text of about ``lines`` lines no wider than ``width``, CRLF-terminated."""
    out: list[str] = []
    current = ""
    while len(out) < lines:
        word = rng.choice(WORDS)
        if len(current) + len(word) + 1 > width:
            out.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    return CRLF.join(line.encode("ascii") for line in out) + CRLF


def text_pool(rng: random.Random, size: int) -> bytes:
    """A block of CRLF-terminated text lines to slice message bodies from."""
    out = bytearray()
    while len(out) < size:
        out += text_body(rng, 200)
    return bytes(out)


def slice_lines(pool: bytes, start: int, length: int) -> bytes:
    """Whole lines of ``pool`` from near ``start`` covering about ``length`` bytes."""
    begin = pool.find(CRLF, start % max(1, len(pool) - length - 200)) + 2
    end = pool.find(CRLF, begin + max(0, length - 2))
    if end < 0:
        return pool[begin:]
    return pool[begin : end + 2]


def base64_body(data: bytes) -> bytes:
    """Base64 in 76-character CRLF-terminated lines (RFC 2045 section 6.8)."""
    return base64.encodebytes(data).replace(b"\n", CRLF)


def base64_raw_size(encoded_size: int) -> int:
    """How many raw bytes encode to about ``encoded_size`` bytes of ``base64_body``."""
    return max(0, encoded_size * 3 * 76 // (4 * 78))


def multipart(
    boundary: str, parts: Sequence[tuple[HeaderSeq, bytes]], preamble: bytes = b""
) -> bytes:
    """A multipart body (RFC 2046 section 5.1.1) from (headers, body) parts."""
    out = bytearray(preamble)
    delimiter = b"--" + boundary.encode("ascii")
    for headers, body in parts:
        out += delimiter + CRLF + header_block(headers) + CRLF + body
        if not body.endswith(CRLF):
            out += CRLF
    out += delimiter + b"--" + CRLF
    return bytes(out)


def crlf_problems(raw: bytes) -> list[str]:
    """What keeps ``raw`` from being stored unchanged by an IMAP server (empty if nothing)."""
    problems = []
    if not raw.endswith(CRLF):
        problems.append("does not end with CRLF")
    if raw.count(b"\n") != raw.count(CRLF):
        problems.append("has a bare LF")
    if raw.count(b"\r") != raw.count(CRLF):
        problems.append("has a bare CR")
    if b"\0" in raw:
        problems.append("has a NUL byte")
    return problems
