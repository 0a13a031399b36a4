"""Modified UTF-7 for mailbox names (RFC 3501 section 5.1.3)."""

from __future__ import annotations


def encode(name: str) -> str:
    """Encode a mailbox name into modified UTF-7 (pure ASCII)."""
    raise NotImplementedError


def decode(name: str) -> str:
    """Decode a modified UTF-7 mailbox name; invalid input is returned unchanged."""
    raise NotImplementedError
