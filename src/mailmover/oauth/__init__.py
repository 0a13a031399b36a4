"""OAuth2 for IMAP: tokens for XOAUTH2 and OAUTHBEARER, kept fresh and stored encrypted.

* ``TokenSource``: an async callable giving a valid access token, refreshed ahead of expiry.
* ``device_flow`` / ``browser_flow``: get a refresh token from the user (RFC 8628; PKCE).
* ``TokenStore``: refresh tokens at rest, encrypted.
* ``endpoint_with_oauth``: wire a token source into an ``Endpoint``.
"""

from mailmover.oauth.browser import browser_flow
from mailmover.oauth.client import PRESETS, OAuthClient, Preset, oauth_client, provider_for_host
from mailmover.oauth.device import DevicePrompt, device_flow
from mailmover.oauth.grant import OAuthError, TokenSet
from mailmover.oauth.source import DEFAULT_MARGIN, TokenSource
from mailmover.oauth.store import StoredToken, TokenStore, default_store_path
from mailmover.oauth.wiring import endpoint_with_oauth

__all__ = [
    "DEFAULT_MARGIN",
    "PRESETS",
    "DevicePrompt",
    "OAuthClient",
    "OAuthError",
    "Preset",
    "StoredToken",
    "TokenSet",
    "TokenSource",
    "TokenStore",
    "browser_flow",
    "default_store_path",
    "device_flow",
    "endpoint_with_oauth",
    "oauth_client",
    "provider_for_host",
]
