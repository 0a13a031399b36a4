"""Endpoints and settings, built once at the edge and passed down.

An endpoint is written ``imap[s]://USER@HOST[:PORT]`` with USER percent-encoded
(``alice%40example.com@mail.example.com``). ``imaps`` is implicit TLS (993),
``imap`` is STARTTLS (143) unless ``?tls=none`` asks for plain text, which is
only sensible on loopback test servers.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from urllib.parse import parse_qs, unquote, urlsplit

from mailmover.errors import UsageError
from mailmover.imap.transport import Security, TLSSettings

_SCHEMES: dict[str, Security] = {"imaps": "tls", "imap": "starttls"}
_AUTH = {"login", "plain", "xoauth2", "oauthbearer"}


@dataclass(frozen=True)
class Endpoint:
    """One side of a migration. The secret never appears in ``repr`` or ``url``."""

    user: str
    host: str
    port: int
    security: Security = "tls"
    tls: TLSSettings = field(default_factory=TLSSettings)
    auth: str = "login"  # login | plain | xoauth2 | oauthbearer
    secret: str | None = field(default=None, repr=False, compare=False)
    #: for OAuth2: called at every (re)connect for a current access token
    token_source: Callable[[], Awaitable[str]] | None = field(
        default=None, repr=False, compare=False
    )

    @property
    def url(self) -> str:
        """``imaps://user@host:port`` without the secret: what logs and the state show."""
        scheme = "imaps" if self.security == "tls" else "imap"
        user = self.user.replace("%", "%25").replace("@", "%40").replace("/", "%2F")
        query = "?tls=none" if self.security == "plain" else ""
        return f"{scheme}://{user}@{self.host}:{self.port}{query}"

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def with_secret(self, secret: str) -> Endpoint:
        return replace(self, secret=secret)

    def without_secret(self) -> Endpoint:
        """The endpoint as data: what a job stores and a worker receives."""
        return replace(self, secret=None, token_source=None)

    def with_token_source(self, source: Callable[[], Awaitable[str]]) -> Endpoint:
        return replace(self, token_source=source)

    def __str__(self) -> str:
        return self.url


def parse_endpoint(text: str, *, ca_file: str | None = None, verify: bool = True) -> Endpoint:
    """Parse ``imap[s]://USER@HOST[:PORT][?tls=none&auth=plain]``; UsageError when malformed."""
    example = "imaps://alice%40example.com@imap.example.com:993"
    try:
        parts = urlsplit(text)
        port_text = parts.port
    except ValueError as exc:
        raise UsageError(f"malformed endpoint {_safe(text)!r}: {exc}; e.g. {example}") from None
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise UsageError(
            f"endpoint {_safe(text)!r} must start with imaps:// or imap://; e.g. {example}"
        )
    if parts.password is not None:
        raise UsageError(
            "do not put passwords in endpoint URLs; use MAILMOVER_SOURCE_PASSWORD / "
            "MAILMOVER_DEST_PASSWORD or --source-password-file / --dest-password-file"
        )
    if not parts.username or not parts.hostname:
        raise UsageError(f"endpoint {_safe(text)!r} needs USER@HOST; e.g. {example}")
    if parts.path not in ("", "/"):
        raise UsageError(f"endpoint {_safe(text)!r} has a path; folders are chosen with options")
    security = _SCHEMES[scheme]
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    unknown = set(query) - {"tls", "auth"}
    if unknown:
        raise UsageError(f"endpoint {_safe(text)!r}: unknown option {sorted(unknown)[0]!r}")
    if query.get("tls") == "none":
        security = "plain"
    elif "tls" in query:
        raise UsageError(f"endpoint {_safe(text)!r}: tls= takes only 'none'")
    auth = query.get("auth", "login").lower()
    if auth not in _AUTH:
        raise UsageError(f"endpoint {_safe(text)!r}: auth= takes one of {', '.join(sorted(_AUTH))}")
    port = port_text or (993 if security == "tls" else 143)
    return Endpoint(
        user=unquote(parts.username),
        host=parts.hostname,
        port=port,
        security=security,
        tls=TLSSettings(verify=verify, ca_file=ca_file),
        auth=auth,
    )


def _safe(text: str) -> str:
    """The URL with anything that looks like a password removed."""
    head, sep, tail = text.partition("://")
    if not sep or "@" not in tail:
        return text
    userinfo, _, rest = tail.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return f"{head}://{user}@{rest}"
