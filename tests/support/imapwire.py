"""Reading what ``imaplib`` hands back: LIST entries and FETCH results (RFC 3501 section 7)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTHS = {m: i for i, m in enumerate(_MONTH_NAMES, 1)}
_LIST_HEAD = re.compile(rb'\((?P<flags>[^)]*)\) (?:NIL|"(?P<delim>\\.|[^"\\])")(?: |$)', re.I)
_FETCH_START = re.compile(rb"\d+ \(")
_UID = re.compile(rb"\bUID (\d+)")
_FLAGS = re.compile(rb"\bFLAGS \(([^)]*)\)")
_INTERNALDATE = re.compile(
    rb'\bINTERNALDATE "[ ]?(\d{1,2})-(\w{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)"'
)


def check(result: tuple[str, list[Any]], what: str) -> list[Any]:
    """The data of an OK imaplib result; raises RuntimeError with the server's text otherwise."""
    typ, data = result
    if typ != "OK":
        text = b" ".join(d for d in data if isinstance(d, bytes)).decode(errors="replace")
        raise RuntimeError(f"{what} failed: {typ} {text}")
    return data


def quote(text: str) -> str:
    """``text`` as an IMAP quoted string (RFC 3501 section 4.3)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class ListEntry:
    """One LIST or LSUB reply: lower-cased name attributes, delimiter, name on the wire."""

    flags: frozenset[str]
    delimiter: str | None
    name: str


def list_entries(data: list[Any]) -> list[ListEntry]:
    """Parse the untagged LIST/LSUB data imaplib returns (names may come as literals)."""
    out = []
    for item in data:
        if item is None or item == b"":
            continue
        if isinstance(item, tuple):
            head, raw_name = item[0], item[1]
        else:
            head, raw_name = item, None
        match = _LIST_HEAD.match(head)
        if match is None:
            raise ValueError(f"unparsable LIST reply {head!r}")
        flags = frozenset(f.lower() for f in match["flags"].decode().split())
        delim = match["delim"].decode()[-1] if match["delim"] else None
        name = raw_name if raw_name is not None else _string(head[match.end() :].strip())
        out.append(ListEntry(flags, delim, name.decode("ascii")))
    return out


def _string(token: bytes) -> bytes:
    if token.startswith(b'"') and token.endswith(b'"') and len(token) >= 2:
        return re.sub(rb"\\(.)", rb"\1", token[1:-1])
    return token


@dataclass(frozen=True)
class FetchedMessage:
    """FLAGS, INTERNALDATE and BODY[] of one message."""

    flags: frozenset[str]
    internaldate: datetime
    body: bytes


def fetched_messages(data: list[Any]) -> dict[int, FetchedMessage]:
    """Messages by UID from the data of ``UID FETCH ... (UID FLAGS INTERNALDATE BODY.PEEK[])``.

    imaplib gives a FETCH with a literal as ``(text before literal, literal)`` followed
    by the rest of the line as bytes; items may come before or after the literal.
    """
    parts: list[tuple[bytes, bytes | None]] = []
    for item in data:
        if isinstance(item, tuple):
            parts.append((item[0], item[1]))
        elif isinstance(item, bytes) and item and not _FETCH_START.match(item) and parts:
            text, body = parts[-1]
            parts[-1] = (text + b" " + item, body)
        elif isinstance(item, bytes) and item:
            parts.append((item, None))
    out = {}
    for text, body in parts:
        uid = _UID.search(text)
        flags = _FLAGS.search(text)
        date = _INTERNALDATE.search(text)
        if uid is None or flags is None or date is None or body is None:
            continue  # an unsolicited FETCH (flag update) carries no body
        out[int(uid[1])] = FetchedMessage(
            frozenset(f.decode() for f in flags[1].split()), _internaldate(date), body
        )
    return out


def _internaldate(match: re.Match[bytes]) -> datetime:
    day, month, year, hour, minute, second, sign, tzh, tzm = (g.decode() for g in match.groups())
    offset = timedelta(hours=int(tzh), minutes=int(tzm)) * (-1 if sign == "-" else 1)
    return datetime(
        int(year), _MONTHS[month.title()], int(day), int(hour), int(minute), int(second),
        tzinfo=timezone(offset),
    )  # fmt: skip
