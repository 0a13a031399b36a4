"""A client command as the emulator holds it, and a profile's refusal of one."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Any

from support.emulator.framing import Frame, Token, build, literal_marker, strip_eol, tokenize

_SYNC_MARKER = re.compile(rb"(~?\{[0-9]+)\}\Z")


def _future() -> asyncio.Future[Frame]:
    return asyncio.get_running_loop().create_future()


@dataclass(eq=False)
class Command:
    """A client command (or an internal one). ``lines``/``literals`` are filled when buffered."""

    tag: str
    name: str
    #: the command's first line, without its line end
    first: bytes = b""
    lines: list[bytes] = field(default_factory=list)
    literals: list[bytes] = field(default_factory=list)
    internal: bool = False
    #: scratch space for the profile
    state: dict[str, Any] = field(default_factory=dict)
    done: asyncio.Future[Frame] = field(default_factory=_future)
    signals: asyncio.Queue[str] = field(default_factory=asyncio.Queue)

    @classmethod
    def start(cls, line: bytes) -> Command | None:
        words = strip_eol(line).split(b" ", 3)
        if len(words) < 2 or not words[0] or literal_marker(words[0]):
            return None
        name = words[1].upper()
        if name == b"UID" and len(words) > 2:
            name += b" " + words[2].upper()
        tag, text = words[0].decode("ascii", "replace"), name.decode("ascii", "replace")
        return cls(tag, text, strip_eol(line))

    def tokens(self) -> list[Token]:
        """Tokens after the tag and the command name (literals not read yet are Pending)."""
        skip = 3 if self.name.startswith("UID ") else 2
        return tokenize(self.lines, self.literals)[skip:]

    def wire(self) -> bytes:
        """The buffered command for Dovecot, its literals made non-synchronising (LITERAL+)."""
        lines = [_SYNC_MARKER.sub(rb"\1+}", line) for line in self.lines]
        return build(lines, self.literals)


@dataclass(frozen=True)
class Refusal:
    """What a profile answers instead of running a command; ``bye`` then ends the session."""

    reply: bytes
    bye: bytes | None = None
