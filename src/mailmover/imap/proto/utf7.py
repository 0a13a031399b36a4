"""Modified UTF-7 for mailbox names (RFC 3501 section 5.1.3)."""

from __future__ import annotations

import base64
import binascii
import re

# RFC 3501 5.1.3: only printable US-ASCII (0x20-0x7e) stands for itself.
_DIRECT = re.compile(r"[\x20-\x7e]+")
_SHIFTED = re.compile(r"&([^-]*)-")


def _b64(run: str) -> str:
    data = run.encode("utf-16-be")
    return base64.b64encode(data).decode("ascii").rstrip("=").replace("/", ",")


def encode(name: str) -> str:
    """Encode a mailbox name into modified UTF-7 (pure ASCII)."""
    out: list[str] = []
    pos = 0
    for match in _DIRECT.finditer(name):
        if match.start() > pos:
            out.append("&" + _b64(name[pos : match.start()]) + "-")
        out.append(match.group().replace("&", "&-"))
        pos = match.end()
    if pos < len(name):
        out.append("&" + _b64(name[pos:]) + "-")
    return "".join(out)


def _unb64(chunk: str) -> str:
    if chunk == "":
        return "&"
    if not chunk.isascii() or "/" in chunk or "=" in chunk:
        raise ValueError(chunk)
    padded = chunk.replace(",", "/") + "=" * (-len(chunk) % 4)
    return base64.b64decode(padded, validate=True).decode("utf-16-be")


def decode(name: str) -> str:
    """Decode a modified UTF-7 mailbox name; invalid input is returned unchanged."""
    if "&" not in name or not name.isascii():
        return name  # modified UTF-7 is ASCII; anything else is not encoded
    try:
        decoded = _SHIFTED.sub(lambda m: _unb64(m.group(1)), name)
    except (ValueError, binascii.Error):
        return name
    # Only the canonical spelling is accepted (RFC 3501 5.1.3 forbids encoding
    # printable ASCII, adjacent shifts, stray bits, raw 8-bit or control
    # characters): a lenient decode would let two server names map to one.
    if encode(decoded) != name:
        return name
    return decoded
