"""OAuth2 client registrations and the authorization servers of known providers."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from mailmover.errors import UsageError

Flow = Literal["device", "browser"]


@dataclass(frozen=True)
class Preset:
    """Where a provider's authorization server is and what mail access it asks for."""

    name: str
    token_url: str
    device_url: str | None
    authorize_url: str | None
    scopes: tuple[str, ...]
    #: the flow that works with the mail scope: Google's device flow refuses it
    default_flow: Flow
    #: extra authorization request parameters (Google: ask for a refresh token)
    authorize_params: tuple[tuple[str, str], ...] = ()
    #: IMAP host names that belong to this provider
    hosts: tuple[str, ...] = ()


_MICROSOFT = "https://login.microsoftonline.com/common/oauth2/v2.0"

PRESETS: dict[str, Preset] = {
    "google": Preset(
        name="google",
        token_url="https://oauth2.googleapis.com/token",
        device_url="https://oauth2.googleapis.com/device/code",
        authorize_url="https://accounts.google.com/o/oauth2/v2/auth",
        scopes=("https://mail.google.com/",),
        default_flow="browser",
        authorize_params=(("access_type", "offline"), ("prompt", "consent")),
        hosts=("imap.gmail.com", "imap.googlemail.com"),
    ),
    "microsoft": Preset(
        name="microsoft",
        token_url=f"{_MICROSOFT}/token",
        device_url=f"{_MICROSOFT}/devicecode",
        authorize_url=f"{_MICROSOFT}/authorize",
        scopes=("https://outlook.office.com/IMAP.AccessAsUser.All", "offline_access"),
        default_flow="device",
        hosts=("outlook.office365.com", "outlook.office.com", "imap-mail.outlook.com"),
    ),
}


@dataclass(frozen=True)
class OAuthClient:
    """A client registration (id, secret) and the endpoints it gets tokens from."""

    provider: str
    token_url: str
    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    device_url: str | None = None
    authorize_url: str | None = None
    scopes: tuple[str, ...] = ()
    authorize_params: tuple[tuple[str, str], ...] = ()
    #: seconds to wait for the authorization server
    timeout: float = 30.0

    @property
    def scope(self) -> str:
        return " ".join(self.scopes)

    def credentials(self) -> dict[str, str]:
        """The client's form fields for the token endpoint (RFC 6749 2.3.1, in the body)."""
        form = {"client_id": self.client_id}
        if self.client_secret:
            form["client_secret"] = self.client_secret
        return form


def oauth_client(
    provider: str,
    client_id: str | None,
    *,
    client_secret: str | None = None,
    token_url: str | None = None,
    device_url: str | None = None,
    authorize_url: str | None = None,
    scopes: tuple[str, ...] | None = None,
    timeout: float = 30.0,
) -> OAuthClient:
    """The client for ``provider``: its preset's endpoints, each overridden when given.

    A provider without a preset needs at least ``token_url``.
    """
    preset = PRESETS.get(provider)
    if token_url is None:
        if preset is None:
            raise UsageError(
                f"unknown OAuth2 provider {provider!r}: use one of {', '.join(sorted(PRESETS))} "
                "or give its token endpoint"
            )
        token_url = preset.token_url
    if not client_id:
        raise UsageError(
            f"{provider} needs an OAuth2 client id: register mailmover as an application with "
            "the provider and give --client-id (or set MAILMOVER_OAUTH_CLIENT_ID)"
        )
    for url in (token_url, device_url, authorize_url):
        if url is not None:
            _check_url(url)
    return OAuthClient(
        provider=provider,
        token_url=token_url,
        client_id=client_id,
        client_secret=client_secret or None,
        device_url=device_url or (preset.device_url if preset else None),
        authorize_url=authorize_url or (preset.authorize_url if preset else None),
        scopes=scopes if scopes is not None else (preset.scopes if preset else ()),
        authorize_params=preset.authorize_params if preset else (),
        timeout=timeout,
    )


def provider_for_host(host: str) -> str | None:
    """The preset whose IMAP servers include ``host``, if any."""
    host = host.lower().rstrip(".")
    for preset in PRESETS.values():
        if host in preset.hosts:
            return preset.name
    return None


def _check_url(url: str) -> None:
    """Endpoints carry secrets: https, or http on loopback only (RFC 6749 3.1, 3.2)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "https" and host:
        return
    if parts.scheme == "http" and (host == "localhost" or _is_loopback(host)):
        return
    raise UsageError(f"OAuth2 endpoint {url!r} must be an https:// URL")


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
