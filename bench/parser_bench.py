"""Parse time of one FETCH BODY[] literal of 1, 10 and 50 MB, fed in 64 KiB chunks."""

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


def parse_seconds(data: bytes) -> float:
    parser = ResponseParser()
    start = time.perf_counter()
    count = 0
    for pos in range(0, len(data), CHUNK):
        count += len(parser.feed(data[pos : pos + CHUNK]))
    elapsed = time.perf_counter() - start
    assert count == 2 and parser.pending == 0
    return elapsed


def main() -> None:
    print(f"{'body':>8} {'seconds':>9} {'MB/s':>8} {'s per MB':>9}")
    for mb in SIZES_MB:
        data = stream(mb * 1024 * 1024)
        seconds = min(parse_seconds(data) for _ in range(3))
        print(f"{mb:>5} MB {seconds:>9.4f} {mb / seconds:>8.0f} {seconds / mb:>9.5f}")


if __name__ == "__main__":
    main()
