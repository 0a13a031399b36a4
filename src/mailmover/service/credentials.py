"""What is stored (encrypted) for each side of a mailbox, and the ``Credentials`` a pass asks.

A stored credential is a small JSON object, one of:

* ``{"kind": "password", "password": ...}``: the user's own password;
* ``{"kind": "master", "admin": ..., "password": ..., "form": "{user}*{admin}"}``: a
  master user (Dovecot's ``user*master``, Exchange's ``admin\\user``), logging in with
  the admin's password under a login made from ``form``;
* ``{"kind": "authzid", "admin": ..., "password": ...}``: SASL PLAIN as the admin with
  the user as authorization identity (RFC 4616; Dovecot master users, Cyrus, Zimbra);
* ``{"kind": "google_service_account", "client_email": ..., "private_key": PEM,
  "token_uri": ..., "scope": ...}``: Google Workspace domain-wide delegation, a JWT
  signed by the service account with the user as subject, exchanged for a token
  (RFC 7523);
* ``{"kind": "microsoft_app", "client_id": ..., "client_secret": ..., "token_url": ...,
  "scope": ...}``: Microsoft 365 app-only access (client credentials, RFC 6749 4.4);
* ``{"kind": "oauth", "refresh_token": ..., "client_id": ..., "client_secret": ...,
  "token_url": ..., "scope": ...}``: the user's own sign-in (Google, Microsoft), an
  access token fetched with the refresh token when due (RFC 6749 6).

``StoredCredentials`` reads and decrypts at every ask, inside the worker, so an erased
credential is gone for the pass too and a token is fetched only when due.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from mailmover.engine.ports import Secret, SideName
from mailmover.errors import AuthenticationFailed, UsageError
from mailmover.oauth.grant import TokenSet, post_form
from mailmover.service.secrets import SecretBox

AdminKind = Literal["master", "authzid", "google_service_account", "microsoft_app"]
ADMIN_KINDS: Final[tuple[AdminKind, ...]] = (
    "master",
    "authzid",
    "google_service_account",
    "microsoft_app",
)
JWT_BEARER: Final = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GOOGLE_SCOPE: Final = "https://mail.google.com/"
MICROSOFT_SCOPE: Final = "https://outlook.office365.com/.default"
#: a token this close to its expiry is fetched again
TOKEN_MARGIN: Final = timedelta(seconds=120)


def oauth_spec(
    refresh_token: str, *, client_id: str, client_secret: str | None, token_url: str, scope: str
) -> dict[str, Any]:
    """The stored form of a user's own OAuth2 sign-in."""
    if not refresh_token:
        raise UsageError("the sign-in gave no refresh token; sign in again")
    return {"kind": "oauth", "refresh_token": refresh_token, "client_id": client_id,
            "client_secret": client_secret, "token_url": token_url, "scope": scope}  # fmt: skip


def password_spec(password: str) -> dict[str, Any]:
    """The stored form of a user's own password."""
    if not password:
        raise UsageError("empty password")
    return {"kind": "password", "password": password}


@dataclass(frozen=True)
class AdminLogin:
    """How one side reaches every user's mailbox without the users' passwords."""

    kind: AdminKind
    #: master/authzid: the admin's login; microsoft_app: the client id
    admin: str = ""
    #: master/authzid: the admin's password; microsoft_app: the client secret;
    #: google_service_account: the service account's JSON key file's text
    secret: str = field(default="", repr=False)
    #: master: the login made of admin and user
    form: str = "{user}*{admin}"
    #: OAuth kinds: where tokens come from (default: the provider's)
    token_url: str | None = None
    scope: str | None = None

    @property
    def endpoint_auth(self) -> str | None:
        """The login mechanism the endpoint must use with this login (None: unchanged)."""
        if self.kind == "authzid":
            return "plain"
        if self.kind in ("google_service_account", "microsoft_app"):
            return "xoauth2"
        return None

    def spec(self) -> dict[str, Any]:
        """What is stored, encrypted, for each mailbox of the side."""
        if not self.secret:
            raise UsageError(f"the {self.kind} admin login needs its secret")
        if self.kind in ("master", "authzid"):
            if not self.admin:
                raise UsageError(f"the {self.kind} admin login needs the admin's user name")
            spec = {"kind": self.kind, "admin": self.admin, "password": self.secret}
            return spec | ({"form": self.form} if self.kind == "master" else {})
        if self.kind == "microsoft_app":
            if not self.admin or not self.token_url:
                raise UsageError("Microsoft 365 app-only access needs a client id and token URL")
            return {
                "kind": self.kind,
                "client_id": self.admin,
                "client_secret": self.secret,
                "token_url": self.token_url,
                "scope": self.scope or MICROSOFT_SCOPE,
            }
        try:
            key = json.loads(self.secret)
            email, private_key = key["client_email"], key["private_key"]
            token_uri = self.token_url or key["token_uri"]
        except (ValueError, KeyError, TypeError):
            raise UsageError(
                "a Google service account key must be its JSON file with client_email, "
                "private_key and token_uri"
            ) from None
        return {"kind": self.kind, "client_email": email, "private_key": private_key,
                "token_uri": token_uri, "scope": self.scope or GOOGLE_SCOPE}  # fmt: skip


def microsoft_token_url(tenant: str) -> str:
    """Microsoft identity platform's token endpoint for a tenant."""
    return f"https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"


class StoredCredentials:
    """``ports.Credentials`` over a mailbox's encrypted rows, decrypted at each ask."""

    def __init__(
        self,
        box: SecretBox,
        read: Callable[[SideName], Awaitable[bytes | None]],
        users: dict[SideName, str],
        *,
        save: Callable[[SideName, bytes], Awaitable[None]] | None = None,
        timeout: float = 30.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._box = box
        self._read = read
        self._save = save
        self._users = users
        self._timeout = timeout
        self._clock = clock
        self._tokens: dict[SideName, TokenSet] = {}
        self._rotated: dict[SideName, tuple[str, str]] = {}  # old refresh token, new
        self._locks: dict[SideName, asyncio.Lock] = {}

    async def secret(self, side: SideName) -> Secret:
        blob = await self._read(side)
        if blob is None:
            self._tokens.pop(side, None)
            raise AuthenticationFailed(f"the {side} credentials were erased")
        spec = self._box.decrypt(blob)
        user = self._users[side]
        kind = spec.get("kind")
        if kind == "password":
            return Secret(spec["password"])
        if kind == "master":
            login = str(spec.get("form", "{user}*{admin}")).format(user=user, admin=spec["admin"])
            return Secret(spec["password"], login=login)
        if kind == "authzid":
            return Secret(spec["password"], login=spec["admin"], authzid=user)
        if kind in ("google_service_account", "microsoft_app", "oauth"):
            return Secret(await self._token(side, spec, user))
        raise AuthenticationFailed(f"the {side} credentials are of an unknown kind")

    async def _token(self, side: SideName, spec: dict[str, Any], user: str) -> str:
        # One refresh at a time per side: connections logging in again together after
        # the token expired must not each spend the same (rotating) refresh token.
        async with self._locks.setdefault(side, asyncio.Lock()):
            held = self._tokens.get(side)
            if held is not None and not held.expires_within(TOKEN_MARGIN, self._clock()):
                return held.access_token
            return await self._fetch(side, spec, user)

    async def _fetch(self, side: SideName, spec: dict[str, Any], user: str) -> str:
        now = self._clock()
        if spec["kind"] == "google_service_account":
            form = {
                "grant_type": JWT_BEARER,
                "assertion": service_account_jwt(spec, user, now.timestamp()),
            }
            url = spec["token_uri"]
        elif spec["kind"] == "oauth":
            old, new = self._rotated.get(side, ("", ""))
            form = {
                "grant_type": "refresh_token",
                "refresh_token": new if spec["refresh_token"] == old else spec["refresh_token"],
                "client_id": spec["client_id"],
            }
            if spec.get("client_secret"):
                form["client_secret"] = spec["client_secret"]
            url = spec["token_url"]
        else:
            form = {
                "grant_type": "client_credentials",
                "client_id": spec["client_id"],
                "client_secret": spec["client_secret"],
                "scope": spec["scope"],
            }
            url = spec["token_url"]
        reply = await post_form(url, form, timeout=self._timeout, what="token endpoint")
        tokens = TokenSet.from_reply(reply, now)
        self._tokens[side] = tokens
        rotated = tokens.refresh_token
        if spec["kind"] == "oauth" and rotated and rotated != form["refresh_token"]:
            # The old refresh token may be void now (rotation, RFC 9700): this object's
            # next refresh and the next pass, maybe in another process, use the new one.
            self._rotated[side] = (spec["refresh_token"], rotated)
            if self._save is not None:
                await self._save(side, self._box.encrypt(spec | {"refresh_token": rotated}))
        return tokens.access_token


def service_account_jwt(spec: dict[str, Any], user: str, now: float) -> str:
    """The RS256-signed assertion a Google service account sends to act as ``user``."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    issued = int(now)
    header = {"alg": "RS256", "typ": "JWT"}
    claims = {
        "iss": spec["client_email"],
        "sub": user,
        "scope": spec["scope"],
        "aud": spec["token_uri"],
        "iat": issued,
        "exp": issued + 3600,
    }
    signing_input = f"{_b64(json.dumps(header))}.{_b64(json.dumps(claims))}".encode()
    try:
        key = serialization.load_pem_private_key(spec["private_key"].encode(), password=None)
    except ValueError:
        raise AuthenticationFailed("the service account's private key cannot be read") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise AuthenticationFailed("the service account's private key is not an RSA key")
    signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input.decode()}.{_b64(signature)}"


def _b64(data: str | bytes) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
