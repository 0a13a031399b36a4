"""What one side of a migration is: a provider preset combined with what the server says.

The server's word wins where it speaks (APPENDLIMIT, PERMANENTFLAGS,
SPECIAL-USE); the preset fills the gaps and adds what no server announces
(connection limits, refused flags, folder names it will not create, daily
caps). Refusals learnt during the run are remembered here, for the whole
destination, so the second message does not trip where the first did.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from mailmover.imap.client import IMAPClient
from mailmover.providers import Preset, detect, get_preset


@dataclass
class ServerProfile:
    """One server of the run: its preset and what has been learnt about it."""

    preset: Preset
    appendlimit: int | None = None
    #: flags (lower-cased) the server refused during this run
    learned_refused: set[str] = field(default_factory=set)

    @classmethod
    def resolve(cls, name: str | None, host: str, client: IMAPClient | None) -> ServerProfile:
        """The preset named by the user, else the one the host or capabilities reveal."""
        if name:
            preset = get_preset(name)
        else:
            caps = client.capabilities if client is not None else None
            preset = detect(host, caps) or get_preset("generic")
        profile = cls(preset)
        if client is not None:
            profile.appendlimit = _appendlimit(client.capabilities)
        return profile

    @property
    def name(self) -> str:
        return self.preset.name

    @property
    def labels(self) -> bool:
        return self.preset.labels

    @property
    def max_message_size(self) -> int | None:
        """The largest message to send: the server's APPENDLIMIT, else the preset's."""
        limits = [n for n in (self.appendlimit, self.preset.max_message_size) if n]
        return min(limits) if limits else None

    def connections(self, wanted: int) -> int:
        limit = self.preset.max_connections
        return min(wanted, limit) if limit else wanted

    def refuses(self, flag: str) -> bool:
        return flag.lower() in self.learned_refused or self.preset.flags.refuses(flag)

    @property
    def keywords(self) -> bool | None:
        """False when the provider is known not to keep keywords; None: ask PERMANENTFLAGS."""
        return self.preset.flags.keywords

    def folder_name(self, part: str) -> tuple[str, str | None]:
        """A folder name part the server will accept, and why it changed (None if it did not)."""
        rules = self.preset.folders
        fixed = part
        if rules.invalid_chars:
            fixed = re.sub(f"[{re.escape(rules.invalid_chars)}]", "_", fixed)
        if rules.no_edge_whitespace:
            fixed = fixed.strip() or "_"
        if self.preset.is_reserved(fixed):
            fixed = f"{fixed} (1)"
        if rules.max_name_length and len(fixed) > rules.max_name_length:
            fixed = fixed[: rules.max_name_length]
        if fixed == part:
            return part, None
        return fixed, f"renamed: {self.preset.title} does not accept {part!r}"


def daily_cap(message: str, *profiles: ServerProfile | None) -> float | None:
    """How long a provider's daily cap may last, when ``message`` says one was reached."""
    for profile in profiles:
        if profile is not None and profile.preset.throttling.is_quota(message):
            return float(profile.preset.throttling.quota_pause or 86400)
    return None


def _appendlimit(capabilities: frozenset[str]) -> int | None:
    """APPENDLIMIT=n from CAPABILITY (RFC 7889); a bare APPENDLIMIT means per mailbox."""
    for capability in capabilities:
        if capability.startswith("APPENDLIMIT="):
            value = capability.partition("=")[2]
            if value.isdigit():
                return int(value)
    return None
