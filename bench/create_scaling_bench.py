"""How Dovecot's CREATE cost grows with the folders already there.

``--count`` CREATEs (default 2,000) pipelined on one raw socket into a fresh
account, timed to the 500th, 1,000th and last tagged reply, for LAYOUT=fs and
Maildir++ (``/`` separator), with Dovecot's mailbox list index on (its
default) and off (``mailbox_list_index = no``).

    .venv/bin/python bench/create_scaling_bench.py [--count 2000]
"""

from __future__ import annotations

import argparse
import secrets
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from machine import print_machine
from mailmover.devserver import DevServer

HOST = "127.0.0.1"


def create_all(port: int, user: str, password: str, count: int) -> dict[int, float]:
    """Seconds until each mark (500, 1,000, ``count``) of tagged CREATE replies."""
    sock = socket.create_connection((HOST, port))
    replies = sock.makefile("rb")
    replies.readline()
    sock.sendall(f"a LOGIN {user} {password}\r\n".encode())
    while not replies.readline().startswith(b"a "):
        pass
    commands = b"".join(b'c%d CREATE "Client %d"\r\n' % (i, i) for i in range(count))
    marks = {m for m in (500, 1000, count) if m <= count}
    started = time.perf_counter()
    sock.sendall(commands)
    done, out = 0, {}
    while done < count:
        if replies.readline().startswith(b"c"):
            done += 1
            if done in marks:
                out[done] = time.perf_counter() - started
    sock.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    args = parser.parse_args()
    print_machine()
    for index in ("yes", "no"):
        for layout, separator in (("fs", None), ("maildir++", "/")):
            conf = f"mailbox_list_index = {index}\n"
            with DevServer(layout=layout, separator=separator, extra_conf=conf) as server:  # type: ignore[arg-type]
                user, password = f"cs-{secrets.token_hex(4)}", secrets.token_urlsafe(12)
                server.add_user(user, password)
                marks = create_all(server.port, user, password, args.count)
            shown = ", ".join(f"{n}: {s:.1f} s" for n, s in sorted(marks.items()))
            print(f"mailbox_list_index = {index:>3}, {layout:>9}: {shown}")


if __name__ == "__main__":
    main()
