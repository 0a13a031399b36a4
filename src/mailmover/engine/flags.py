"""Which flags the destination keeps (RFC 3501 PERMANENTFLAGS)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

SYSTEM_FLAGS = frozenset({"\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"})
_CANONICAL = {f.lower(): f for f in SYSTEM_FLAGS}
# atom-specials (RFC 3501 9) that cannot appear in a keyword
_KEYWORD = re.compile(r"^\$?[!#&'+,\-./0-9:;<=>?@A-Z^_`a-z|~]+$")


@dataclass(frozen=True)
class FlagPolicy:
    """What the destination folder accepts: from its PERMANENTFLAGS."""

    permanent: frozenset[str] | None  # None: the server did not say; assume everything

    @classmethod
    def from_permanentflags(cls, flags: Iterable[str] | None) -> FlagPolicy:
        return cls(None if flags is None else frozenset(flags))

    @property
    def any_keyword(self) -> bool:
        return self.permanent is None or "\\*" in self.permanent

    def keep(self, flags: Iterable[str]) -> tuple[tuple[str, ...], int]:
        """The flags to store, sorted, and how many keywords were dropped."""
        kept: set[str] = set()
        dropped = 0
        allowed = {f.lower() for f in self.permanent} if self.permanent is not None else None
        for flag in flags:
            system = _CANONICAL.get(flag.lower())
            if system is not None:
                if allowed is None or system.lower() in allowed:
                    kept.add(system)
            elif flag.startswith("\\"):
                continue  # \Recent and unknown system flags cannot be set by a client
            elif _KEYWORD.match(flag) and (
                self.any_keyword or (allowed is not None and flag.lower() in allowed)
            ):
                kept.add(flag)
            else:
                dropped += 1
        return tuple(sorted(kept)), dropped


def without_keywords(flags: Iterable[str]) -> tuple[str, ...]:
    return tuple(f for f in flags if f.startswith("\\"))
