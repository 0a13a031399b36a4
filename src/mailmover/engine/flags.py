"""Which flags the destination keeps (RFC 3501 PERMANENTFLAGS, presets, what it refused)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

SYSTEM_FLAGS = frozenset({"\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"})
_CANONICAL = {f.lower(): f for f in SYSTEM_FLAGS}
# atom-specials (RFC 3501 9) that cannot appear in a keyword
_KEYWORD = re.compile(r"^\$?[!#&'+,\-./0-9:;<=>?@A-Z^_`a-z|~]+$")


def _never(_flag: str) -> bool:
    return False


@dataclass(frozen=True)
class FlagRewrite:
    """Flags the user renames (``--flag-map OLD=NEW``) or drops (``--drop-flags``).

    Not ``providers.FlagRules``, which is what a provider documents it refuses or keeps.
    """

    mapping: Mapping[str, str] = field(default_factory=dict)
    drop: frozenset[str] = frozenset()  # lower-cased

    def apply(self, flags: Iterable[str]) -> list[str]:
        lowered = {k.lower(): v for k, v in self.mapping.items()}
        out = []
        for flag in flags:
            flag = lowered.get(flag.lower(), flag)
            if flag and flag.lower() not in self.drop:
                out.append(flag)
        return out


@dataclass(frozen=True)
class FlagPolicy:
    """What one destination folder accepts."""

    permanent: frozenset[str] | None  # None: the server did not say; assume everything
    keywords: bool | None = None  # False: the provider keeps no keywords
    refuses: Callable[[str], bool] = _never  # refused by the provider, or learnt so
    rules: FlagRewrite = field(default_factory=FlagRewrite)

    @property
    def any_keyword(self) -> bool:
        if self.keywords is False:
            return False
        return self.permanent is None or "\\*" in self.permanent

    def keep(self, flags: Iterable[str]) -> tuple[tuple[str, ...], int]:
        """The flags to store, sorted, and how many were dropped (``\\Recent`` not counted)."""
        kept: set[str] = set()
        dropped = 0
        allowed = {f.lower() for f in self.permanent} if self.permanent is not None else None
        for flag in self.rules.apply(flags):
            system = _CANONICAL.get(flag.lower())
            if flag.lower() == "\\recent":
                continue  # set by the server, never by a client
            if self.refuses(flag):
                dropped += 1
            elif system is not None:
                if allowed is None or system.lower() in allowed:
                    kept.add(system)
                else:
                    dropped += 1
            elif flag.startswith("\\"):
                dropped += 1  # an unknown system flag cannot be set by a client
            elif _KEYWORD.match(flag) and (
                self.any_keyword or (allowed is not None and flag.lower() in allowed)
            ):
                kept.add(flag)
            else:
                dropped += 1
        return tuple(sorted(kept)), dropped


def without_keywords(flags: Iterable[str]) -> tuple[str, ...]:
    return tuple(f for f in flags if f.startswith("\\"))
