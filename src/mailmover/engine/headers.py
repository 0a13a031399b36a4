"""Reading the few header fields reports need, from raw message bytes."""

from __future__ import annotations

import email.header
import email.parser
import email.policy
import re

_PARSER = email.parser.BytesHeaderParser(policy=email.policy.compat32)
# A Message-ID field (from the start of a header line on), with its folded continuation lines.
_MESSAGE_ID = re.compile(rb"message-id[ \t]*:((?:[^\r\n]*)(?:\r?\n[ \t][^\r\n]*)*)", re.I)


def message_id(raw: bytes) -> str | None:
    """The Message-ID of a message, read without parsing the whole header.

    Called for every message copied; ``email.parser`` cost 12 % of the CPU of a
    copy of small messages (bench/README.md). The first header line that starts
    with ``Message-ID`` (any case) followed by ``:`` is the field.
    """
    end = raw.find(b"\r\n\r\n")
    head = raw[: end + 2] if end >= 0 else raw[:65536]
    lower = head.lower()  # found in C; the pattern is tried only where such a line starts
    at = 0 if lower.startswith(b"message-id") else _next_field(lower, 0)
    while at >= 0:
        found = _MESSAGE_ID.match(head, at)
        if found is not None:
            value = b" ".join(found.group(1).split()).decode("utf-8", "replace").strip()
            return value or None
        at = _next_field(lower, at)
    return None


def _next_field(lower: bytes, start: int) -> int:
    """Where the next line starting ``message-id`` begins, after ``start``; -1 if none."""
    newline = lower.find(b"\nmessage-id", start)
    return newline + 1 if newline >= 0 else -1


def summary(raw: bytes) -> tuple[str | None, str]:
    """``(Message-ID or None, Subject decoded)`` from a message's header."""
    end = raw.find(b"\r\n\r\n")
    head = raw[: end + 2] if end >= 0 else raw[:65536]
    try:
        message = _PARSER.parsebytes(head)
        message_id = message.get("Message-ID")
        subject = message.get("Subject", "")
    except Exception:  # a header so broken the parser gives up: report without it
        return None, ""
    # whitespace inside collapsed as message_id() does (a folded or mistyped field)
    found = " ".join(_text(message_id).split()) or None if message_id else None
    return found, _decode(subject)


def _text(value: object) -> str:
    return str(value) if value is not None else ""


def _decode(value: object) -> str:
    text = _text(value)
    try:
        parts = email.header.decode_header(text)
    except Exception:  # malformed encoded-words: show it as it is
        return text
    out = []
    for chunk, charset in parts:
        if isinstance(chunk, bytes):
            try:
                out.append(chunk.decode(charset or "utf-8", "replace"))
            except LookupError:  # a charset Python does not know
                out.append(chunk.decode("utf-8", "replace"))
        else:
            out.append(chunk)
    return "".join(out).replace("\r", " ").replace("\n", " ").strip()
