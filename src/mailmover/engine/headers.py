"""Reading the few header fields reports need, from raw message bytes."""

from __future__ import annotations

import email.header
import email.parser
import email.policy
import re

_PARSER = email.parser.BytesHeaderParser(policy=email.policy.compat32)
# A Message-ID field at the start of a header line, with its folded continuation lines.
_MESSAGE_ID = re.compile(rb"(?im)^message-id[ \t]*:((?:[^\r\n]*)(?:\r?\n[ \t][^\r\n]*)*)")


def message_id(raw: bytes) -> str | None:
    """The Message-ID of a message, read without parsing the whole header.

    Called for every message copied; ``email.parser`` cost 12 % of the CPU of a
    copy of small messages (bench/README.md).
    """
    end = raw.find(b"\r\n\r\n")
    head = raw[: end + 2] if end >= 0 else raw[:65536]
    found = _MESSAGE_ID.search(head)
    if found is None:
        return None
    value = b" ".join(found.group(1).split()).decode("utf-8", "replace").strip()
    return value or None


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
    return (_text(message_id).strip() or None if message_id else None), _decode(subject)


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
