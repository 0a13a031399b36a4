"""What a provider preset says: frozen records read from one TOML file each.

Every field that a preset may leave out is ``None`` (unknown, ask the server)
or empty; nothing here guesses. The engine combines a preset with what the
server itself announces (CAPABILITY, APPENDLIMIT, PERMANENTFLAGS, SPECIAL-USE):
the server's word wins where it speaks, the preset fills the gaps and adds what
no server says (connection limits, daily caps, throttling replies, refusals).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from typing import Literal

from mailmover.imap.transport import Security

Flow = Literal["browser", "device"]
AdminMethod = Literal["authzid", "login-form", "master-user", "oauth2-delegation", "unknown"]

#: SPECIAL-USE roles (RFC 6154) a preset can name folders for, and their TOML keys.
#: The same roles as ``mailmover.engine.folders.ROLES``.
ROLE_KEYS: dict[str, str] = {
    "\\Sent": "sent",
    "\\Drafts": "drafts",
    "\\Trash": "trash",
    "\\Junk": "junk",
    "\\Archive": "archive",
}


def _role_key(role: str) -> str:
    for name, key in ROLE_KEYS.items():
        if role.lower() in (name.lower(), key):
            return key
    raise ValueError(f"unknown folder role {role!r}; known: {', '.join(ROLE_KEYS)}")


@dataclass(frozen=True)
class OAuth2Config:
    """The provider's authorization server and the scopes that grant IMAP access."""

    authorization_endpoint: str
    token_endpoint: str
    scopes: tuple[str, ...]
    #: RFC 8628 device authorization endpoint, when the provider has one
    device_endpoint: str | None = None
    #: the flow that works with the mail scope (Google's device flow refuses it)
    flow: Flow = "browser"
    #: extra authorization request parameters, e.g. Google's ``access_type=offline``
    authorize_params: tuple[tuple[str, str], ...] = ()
    notes: str = ""


@dataclass(frozen=True)
class Caps:
    """Limits the provider documents beyond message size and connections."""

    #: bytes a mailbox may download over IMAP per day
    download_per_day: int | None = None
    #: bytes a mailbox may upload (APPEND) over IMAP per day
    upload_per_day: int | None = None
    #: messages one folder can hold
    max_folder_messages: int | None = None
    #: longest line (bytes, without CRLF) the server accepts in an appended message
    max_line_length: int | None = None

    @property
    def any(self) -> bool:
        return any(
            v is not None
            for v in (
                self.download_per_day,
                self.upload_per_day,
                self.max_folder_messages,
                self.max_line_length,
            )
        )


@dataclass(frozen=True)
class FolderRules:
    """How the provider names folders and which names it refuses."""

    #: hierarchy separator; ``None`` means read it from LIST (it is configurable)
    separator: str | None = None
    #: personal namespace prefix, e.g. ``INBOX.`` on Courier; ``None``: ask NAMESPACE
    prefix: str | None = None
    #: ``Trash`` and ``trash`` are the same folder
    case_insensitive: bool = False
    #: names that cannot be created (compared per ``case_insensitive``)
    reserved: tuple[str, ...] = ()
    #: characters a name may not contain
    invalid_chars: str = ""
    #: leading or trailing spaces in a name part are refused
    no_edge_whitespace: bool = False
    #: longest name the server accepts, when documented
    max_name_length: int | None = None
    #: role key (``sent``, ``drafts``, ...) to the names that role goes by, best first
    roles: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def fold(self, name: str) -> str:
        """``name`` as the server compares it."""
        return name.casefold() if self.case_insensitive else name


@dataclass(frozen=True)
class FlagRules:
    """What the provider does with flags, as far as documented.

    Not ``engine.flags.FlagRewrite``, which is what the user asked to rename or drop.
    """

    #: keywords (non-``\\`` flags) are stored; ``None`` when unknown (read PERMANENTFLAGS)
    keywords: bool | None = None
    #: flags the server refuses in APPEND or STORE; drop them beforehand
    refused: tuple[str, ...] = ()
    #: flags that APPEND accepts but does not keep properly: set them with STORE afterwards
    set_after_append: tuple[str, ...] = ()
    notes: str = ""

    def refuses(self, flag: str) -> bool:
        """Whether ``flag`` is known to be refused (flag names compare case-insensitively)."""
        return flag.lower() in {f.lower() for f in self.refused}


@dataclass(frozen=True)
class Throttling:
    """How the provider says "slow down" and "come back tomorrow"."""

    #: regular expressions (case-insensitive) for replies that ask for a short backoff
    patterns: tuple[str, ...] = ()
    #: regular expressions for replies that mean a daily cap is reached
    quota_patterns: tuple[str, ...] = ()
    #: regular expression with a named group ``ms`` or ``s``: the wait the server asked for
    backoff_hint: str | None = None
    #: seconds to wait when a pattern matched but the reply named no wait
    default_backoff: float = 30.0
    #: longest pause (seconds) before a capped mailbox can work again
    quota_pause: int | None = None

    def is_throttled(self, text: str) -> bool:
        """Whether a server reply (tagged or untagged text) asks for a backoff."""
        return any(re.search(p, text, re.IGNORECASE) for p in self.patterns)

    def is_quota(self, text: str) -> bool:
        """Whether a server reply says a daily cap is reached."""
        return any(re.search(p, text, re.IGNORECASE) for p in self.quota_patterns)

    def backoff(self, text: str) -> float | None:
        """Seconds to wait after ``text``; ``None`` when it is not a throttling reply."""
        if not self.is_throttled(text):
            return None
        if self.backoff_hint:
            found = re.search(self.backoff_hint, text, re.IGNORECASE)
            if found:
                groups = found.groupdict()
                if groups.get("ms") is not None:
                    return int(groups["ms"]) / 1000
                if groups.get("s") is not None:
                    return float(groups["s"])
        return self.default_backoff


@dataclass(frozen=True)
class VirtualFolder:
    """A folder that is a view, not a place: copying it would duplicate mail."""

    name: str
    #: the SPECIAL-USE attribute that marks it whatever its (localised) name
    special_use: str | None = None
    #: the flag that membership stands for, e.g. ``\\Flagged`` for Gmail's Starred
    flag: str | None = None


@dataclass(frozen=True)
class AdminLogin:
    """How an administrator reaches a user's mailbox without the user's password."""

    method: AdminMethod
    #: the login name to send, with ``{admin}`` and ``{user}`` (for ``login-form``)
    form: str | None = None
    note: str = ""


@dataclass(frozen=True)
class Preset:
    """One provider: where it is, how to log in, and what it refuses or limits."""

    name: str
    title: str
    port: int
    #: never ``plain``: every preset names an encrypted port (the TOML schema refuses it)
    security: Security
    #: login mechanisms in order of preference: ``login``, ``plain``, ``xoauth2``, ``oauthbearer``
    auth: tuple[str, ...]
    sources: tuple[str, ...]
    host: str | None = None
    host_patterns: tuple[str, ...] = ()
    #: a CAPABILITY atom any of which identifies the provider (``X-GM-EXT-1``)
    capabilities: tuple[str, ...] = ()
    #: the account password is refused over IMAP: an app-specific password is needed
    app_password: bool = False
    #: simultaneous IMAP connections per account
    max_connections: int | None = None
    #: largest message (bytes) APPEND accepts
    max_message_size: int | None = None
    #: folders are labels: one message may be in several (X-GM-LABELS)
    labels: bool = False
    notes: str = ""
    oauth2: OAuth2Config | None = None
    caps: Caps = field(default_factory=Caps)
    folders: FolderRules = field(default_factory=FolderRules)
    flags: FlagRules = field(default_factory=FlagRules)
    throttling: Throttling = field(default_factory=Throttling)
    virtual_folders: tuple[VirtualFolder, ...] = ()
    admin_login: AdminLogin | None = None

    def matches_host(self, host: str) -> bool:
        """Whether ``host`` is this provider's (its host or a pattern; case-insensitive)."""
        host = host.strip().rstrip(".").lower()
        if not host:
            return False
        candidates = ((self.host,) if self.host else ()) + self.host_patterns
        return any(fnmatch.fnmatchcase(host, pattern.lower()) for pattern in candidates)

    def matches_capabilities(self, capabilities: frozenset[str]) -> bool:
        """Whether one of the provider's marker capabilities is in ``capabilities``."""
        announced = {c.upper() for c in capabilities}
        return any(c.upper() in announced for c in self.capabilities)

    def role_names(self, role: str) -> tuple[str, ...]:
        """Folder names the provider uses for ``role`` (``\\Sent`` or ``sent``), best first."""
        key = _role_key(role)
        for name, names in self.folders.roles:
            if name == key:
                return names
        return ()

    def role_of(self, name: str) -> str | None:
        """The SPECIAL-USE role (``\\Sent``, ...) the provider gives folder ``name``, if any."""
        folded = self.folders.fold(name)
        for role, key in ROLE_KEYS.items():
            if any(self.folders.fold(n) == folded for n in self.role_names(key)):
                return role
        return None

    def is_reserved(self, name: str) -> bool:
        """Whether the provider refuses to create a folder called ``name``."""
        folded = self.folders.fold(name)
        return any(self.folders.fold(r) == folded for r in self.folders.reserved)

    def virtual_folder(
        self, name: str, attributes: frozenset[str] = frozenset()
    ) -> VirtualFolder | None:
        """The virtual folder ``name`` is (by SPECIAL-USE attribute or by name), if any."""
        lowered = {a.lower() for a in attributes}
        for folder in self.virtual_folders:
            if folder.special_use and folder.special_use.lower() in lowered:
                return folder
            if self.folders.fold(folder.name) == self.folders.fold(name):
                return folder
        return None
