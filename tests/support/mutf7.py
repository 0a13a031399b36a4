"""Modified UTF-7 for mailbox names (RFC 3501 section 5.1.3), for the test tools only.

The test tools must not lean on mailmover's own code, which they are used to check.
"""

from __future__ import annotations

import base64


def encode(name: str) -> str:
    """``name`` as the ASCII a server expects in CREATE, SELECT and friends."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            utf16 = "".join(pending).encode("utf-16-be")
            out.append("&" + base64.b64encode(utf16).decode("ascii").rstrip("=").replace("/", ","))
            out.append("-")
            pending.clear()

    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    return "".join(out)


def decode(name: str) -> str:
    """A name from LIST or LSUB back to text; raises ValueError on malformed input."""
    out: list[str] = []
    i = 0
    while i < len(name):
        char = name[i]
        if char != "&":
            out.append(char)
            i += 1
            continue
        end = name.find("-", i)
        if end < 0:
            raise ValueError(f"unterminated modified UTF-7 shift in {name!r}")
        chunk = name[i + 1 : end]
        if not chunk:
            out.append("&")
        else:
            padded = chunk.replace(",", "/") + "=" * (-len(chunk) % 4)
            out.append(base64.b64decode(padded, validate=True).decode("utf-16-be"))
        i = end + 1
    return "".join(out)
