"""A source whose answers do not add up: sizes announced wrong, bodies cut short.

``misreads`` passes everything through, except for the UIDs it is told:

- ``wrong_size``: RFC822.SIZE is announced 7 bytes larger than the message,
  in every FETCH (as servers that compute it from an estimate do);
- ``short_once``: the first time a body of the message (``BODY[]``, whole or
  a range from byte 0) is sent, its last 100 bytes are left out and the
  literal's length says so; every later read is whole.

It stands for servers no local one imitates; what passes unchanged is checked
against Dovecot like the other profiles.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from support.emulator.framing import Frame, build
from support.emulator.profile import Profile
from support.emulator.session import Session

_UID = re.compile(rb"\bUID (\d+)", re.IGNORECASE)
_SIZE = re.compile(rb"(RFC822\.SIZE )(\d+)", re.IGNORECASE)
_BODY = re.compile(rb"BODY\[\](?:<0>)? \{(\d+)\}\Z", re.IGNORECASE)
CUT = 100


@dataclass(frozen=True)
class MisreadOptions:
    wrong_size: frozenset[int] = frozenset()
    short_once: frozenset[int] = frozenset()


@dataclass
class _Account:
    shortened: set[int] = field(default_factory=set)


class Misreads(Profile):
    """Dovecot, with the announced sizes and the bodies of some messages wrong."""

    name = "misreads"
    Options = MisreadOptions

    async def on_untagged(self, session: Session, frame: Frame) -> bytes | None:
        if frame.kind != "FETCH":
            return frame.raw
        options = self.emulator.options
        assert isinstance(options, MisreadOptions)
        found = next((m for line in frame.lines if (m := _UID.search(line))), None)
        if found is None:
            return frame.raw
        uid = int(found.group(1))
        lines, literals = list(frame.lines), list(frame.literals)
        if uid in options.wrong_size:
            lines = [_SIZE.sub(_larger, line) for line in lines]
        account = self.emulator.account("", _Account)  # one for all sessions
        if uid in options.short_once and uid not in account.shortened:
            for i, line in enumerate(lines[: len(literals)]):
                body = _BODY.search(line)
                if body is not None and len(literals[i]) > CUT:
                    account.shortened.add(uid)
                    literals[i] = literals[i][:-CUT]
                    lines[i] = line[: body.start(1)] + b"%d}" % len(literals[i])
        return build(lines, literals)


def _larger(size: re.Match[bytes]) -> bytes:
    return size.group(1) + b"%d" % (int(size.group(2)) + 7)
