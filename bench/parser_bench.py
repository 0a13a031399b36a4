"""Parse time of one FETCH BODY[] literal of 1, 10 and 50 MB, fed in 64 KiB chunks,
and of a listing: 100,000 small FETCH responses (UID, size, flags, date, Message-ID)."""

from __future__ import annotations

import os
import time

from mailmover.imap.proto.parser import ResponseParser

CHUNK = 64 * 1024
SIZES_MB = (1, 10, 50)


def stream(size: int) -> bytes:
    # random bytes with CRLF sprinkled in: every chunk has line ends a naive parser would scan
    body = bytearray(os.urandom(size))
    body[::1000] = b"\n" * len(body[::1000])
    return b"* 1 FETCH (UID 1 BODY[] {%d}\r\n%s)\r\nA1 OK done\r\n" % (size, body)


def listing(count: int) -> bytes:
    return b"".join(
        b"* %d FETCH (UID %d RFC822.SIZE %d FLAGS (\\Seen $Forwarded) "
        b'INTERNALDATE "17-Jul-1996 02:44:25 -0700" BODY[HEADER.FIELDS (MESSAGE-ID)] {40}\r\n'
        b"Message-ID: <%010d@example.org>\r\n\r\n)\r\n" % (i, i, 1000 + i, i)
        for i in range(1, count + 1)
    )


def parse_seconds(data: bytes, responses: int) -> float:
    parser = ResponseParser()
    start = time.perf_counter()
    count = 0
    for pos in range(0, len(data), CHUNK):
        count += len(parser.feed(data[pos : pos + CHUNK]))
    elapsed = time.perf_counter() - start
    assert count == responses and parser.pending == 0
    return elapsed


def main() -> None:
    print(f"{'body':>8} {'seconds':>9} {'MB/s':>8} {'s per MB':>9}")
    for mb in SIZES_MB:
        data = stream(mb * 1024 * 1024)
        seconds = min(parse_seconds(data, 2) for _ in range(3))
        print(f"{mb:>5} MB {seconds:>9.4f} {mb / seconds:>8.0f} {seconds / mb:>9.5f}")
    count = 100_000
    seconds = min(parse_seconds(listing(count), count) for _ in range(2))
    print(
        f"listing: {count} FETCH responses in {seconds:.2f} s ({count / seconds:,.0f} per second)"
    )


if __name__ == "__main__":
    main()
