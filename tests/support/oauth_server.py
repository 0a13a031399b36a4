"""A small OAuth2 authorization server on 127.0.0.1 for the tests.

Endpoints (``server.url`` + path):

``/token``       RFC 6749 token endpoint: ``refresh_token``, ``authorization_code``
                 (with PKCE S256) and RFC 8628 ``device_code`` grants.
``/device``      RFC 8628 device authorization endpoint.
``/authorize``   authorization endpoint that signs ``authorize_as`` in at once and
                 redirects to the loopback ``redirect_uri`` with a code.
                 Admin grants: RFC 7523 ``jwt-bearer`` (a Google service account's
                 RS256 assertion, checked against ``add_service_account``'s public
                 key; the token is the assertion's ``sub``'s) and RFC 6749 4.4
                 ``client_credentials`` (an app registered with ``add_app``; the
                 token belongs to ``app:CLIENT_ID``).
``/introspect``  RFC 7662 introspection (token in a POST form, a GET query or a
                 Bearer header): ``{"active": true, "username": ...}`` for a live
                 access token, ``{"active": false}`` otherwise.

Access tokens are opaque and live ``access_ttl`` seconds of the server's clock,
which ``advance()`` moves forward so that tests need not wait for expiry.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlencode, urlsplit

HOST = "127.0.0.1"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@dataclass
class AdminGrant:
    """One admin grant the token endpoint answered."""

    grant_type: str
    client: str  # the service account's email or the app's client id
    subject: str | None  # the user a service account acts as
    scope: str
    granted: bool


@dataclass
class _Device:
    user_code: str
    client_id: str
    scope: str
    expires_at: float
    user: str | None = None
    denied: bool = False


@dataclass
class _Code:
    user: str
    client_id: str
    redirect_uri: str
    challenge: str
    scope: str


@dataclass
class Introspection:
    """One introspection request as the server saw it."""

    token: str
    active: bool
    username: str | None


@dataclass
class _State:
    access: dict[str, tuple[str, float]] = field(default_factory=dict)  # token -> (user, expiry)
    refresh: dict[str, str] = field(default_factory=dict)  # token -> user
    devices: dict[str, _Device] = field(default_factory=dict)  # device_code -> ...
    codes: dict[str, _Code] = field(default_factory=dict)


class OAuthServer:
    """The authorization server; start it with ``with OAuthServer() as server:``."""

    def __init__(
        self,
        *,
        client_id: str = "mailmover-test",
        client_secret: str | None = None,
        access_ttl: float = 3600.0,
        device_interval: float = 0.05,
        device_ttl: float = 600.0,
        rotate_refresh_tokens: bool = False,
        auto_approve: str | None = None,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.access_ttl = access_ttl
        self.device_interval = device_interval
        self.device_ttl = device_ttl
        self.rotate_refresh_tokens = rotate_refresh_tokens
        #: approve every device code for this user at its first poll
        self.auto_approve = auto_approve
        #: the user /authorize signs in; None makes it answer access_denied
        self.authorize_as: str | None = "alice@example.com"
        #: answer this many device-code polls with slow_down
        self.slow_down_polls = 0
        #: answer every request with HTTP 503
        self.outage = False
        self.refreshes = 0
        self.polls = 0
        self.introspections: list[Introspection] = []
        self.authorize_requests: list[dict[str, str]] = []
        self.admin_grants: list[AdminGrant] = []
        self._service_accounts: dict[str, Any] = {}  # client_email -> RSA public key
        self._apps: dict[str, str] = {}  # client_id -> client secret
        self._state = _State()
        self._offset = 0.0
        self._lock = threading.Lock()
        self._polled = threading.Condition(self._lock)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> Self:
        handler = type("Handler", (_Handler,), {"oauth": self})
        self._httpd = ThreadingHTTPServer((HOST, 0), handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "the server is not running"
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def token_url(self) -> str:
        return self.url + "/token"

    @property
    def device_url(self) -> str:
        return self.url + "/device"

    @property
    def authorize_url(self) -> str:
        return self.url + "/authorize"

    @property
    def introspect_url(self) -> str:
        return self.url + "/introspect"

    # -- test controls -----------------------------------------------------------------

    def now(self) -> float:
        """The server's clock: real time plus every ``advance()``."""
        with self._lock:
            return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the server's clock forward (access tokens expire sooner)."""
        with self._lock:
            self._offset += seconds

    def issue(self, user: str, ttl: float | None = None) -> tuple[str, str]:
        """A new (access token, refresh token) pair for ``user``, as if granted."""
        with self._lock:
            return self._issue(user, ttl)

    def approve(self, user_code: str, user: str) -> None:
        """The user enters ``user_code`` on the verification page and approves."""
        with self._lock:
            self._device_by_code(user_code).user = user

    def wait_for_polls(self, count: int, timeout: float = 30.0) -> None:
        """Block until the token endpoint has been polled ``count`` times for device codes."""
        with self._polled:
            if not self._polled.wait_for(lambda: self.polls >= count, timeout):
                raise TimeoutError(f"only {self.polls} device-code polls came")

    def deny(self, user_code: str) -> None:
        with self._lock:
            self._device_by_code(user_code).denied = True

    def pending_user_codes(self) -> list[str]:
        with self._lock:
            return [d.user_code for d in self._state.devices.values() if d.user is None]

    def revoke(self, refresh_token: str) -> None:
        with self._lock:
            self._state.refresh.pop(refresh_token, None)

    def is_live(self, access_token: str) -> bool:
        with self._lock:
            found = self._state.access.get(access_token)
            return found is not None and found[1] > time.time() + self._offset

    def access_tokens(self, user: str) -> list[str]:
        """Every access token issued to ``user``, oldest first."""
        with self._lock:
            return [t for t, (u, _) in self._state.access.items() if u == user]

    def refresh_tokens(self, user: str) -> list[str]:
        with self._lock:
            return [t for t, u in self._state.refresh.items() if u == user]

    # -- endpoints (called with the lock held) -----------------------------------------

    def _issue(self, user: str, ttl: float | None = None) -> tuple[str, str]:
        refresh = "rt-" + secrets.token_urlsafe(24)
        self._state.refresh[refresh] = user
        return self._issue_access(user, ttl), refresh

    def _issue_access(self, user: str, ttl: float | None = None) -> str:
        access = "at-" + secrets.token_urlsafe(24)
        now = time.time() + self._offset
        self._state.access[access] = (user, now + (self.access_ttl if ttl is None else ttl))
        return access

    def _device_by_code(self, user_code: str) -> _Device:
        for device in self._state.devices.values():
            if device.user_code == user_code:
                return device
        raise KeyError(f"no device code with user code {user_code!r}")

    def add_service_account(self, client_email: str) -> dict[str, str]:
        """Register a service account; its JSON key file's fields (private key included)."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        with self._lock:
            self._service_accounts[client_email] = key.public_key()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return {
            "type": "service_account",
            "client_email": client_email,
            "private_key": pem,
            "token_uri": self.token_url,
        }

    def add_app(self, client_id: str, client_secret: str) -> None:
        """Register an app allowed the client credentials grant."""
        with self._lock:
            self._apps[client_id] = client_secret

    def _admin_token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        grant = form["grant_type"]
        if grant == "client_credentials":
            client = form.get("client_id", "")
            ok = client in self._apps and self._apps[client] == form.get("client_secret")
            self.admin_grants.append(AdminGrant(grant, client, None, form.get("scope", ""), ok))
            if not ok:
                return 401, {"error": "invalid_client"}
            return 200, self._reply(self._issue_access(f"app:{client}"), None)
        claims = self._check_assertion(form.get("assertion", ""))
        subject = claims.get("sub") if claims else None
        scope = claims.get("scope", "") if claims else ""
        email = claims.get("iss", "") if claims else ""
        self.admin_grants.append(AdminGrant(grant, email, subject, scope, bool(subject)))
        if not claims or not subject:
            return 400, {"error": "invalid_grant", "error_description": "bad assertion"}
        return 200, self._reply(self._issue_access(subject), None, scope=scope)

    def _check_assertion(self, assertion: str) -> dict[str, Any] | None:
        """The claims of a valid RS256 assertion from a known service account, else None."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        def unb64(text: str) -> bytes:
            return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

        try:
            head, body, sig = assertion.split(".")
            header, claims = json.loads(unb64(head)), json.loads(unb64(body))
        except ValueError:
            return None
        key = self._service_accounts.get(claims.get("iss", ""))
        now = time.time() + self._offset
        if (
            key is None
            or header.get("alg") != "RS256"
            or claims.get("aud") != self.token_url
            or not claims.get("iat", now + 1) <= now < claims.get("exp", 0)
        ):
            return None
        try:
            key.verify(unb64(sig), f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return None
        return dict(claims)

    def _token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if form.get("grant_type") in ("client_credentials", JWT_BEARER):
            return self._admin_token(form)
        if form.get("client_id") != self.client_id or (
            self.client_secret is not None and form.get("client_secret") != self.client_secret
        ):
            return 401, {"error": "invalid_client"}
        grant = form.get("grant_type")
        now = time.time() + self._offset
        if grant == "refresh_token":
            user = self._state.refresh.get(form.get("refresh_token", ""))
            if user is None:
                return 400, {"error": "invalid_grant", "error_description": "unknown or revoked"}
            self.refreshes += 1
            if not self.rotate_refresh_tokens:
                return 200, self._reply(self._issue_access(user), None)
            del self._state.refresh[form["refresh_token"]]
            return 200, self._reply(*self._issue(user))
        if grant == DEVICE_GRANT:
            self.polls += 1
            self._polled.notify_all()
            device = self._state.devices.get(form.get("device_code", ""))
            if device is None:
                return 400, {"error": "invalid_grant"}
            if device.expires_at <= now:
                return 400, {"error": "expired_token"}
            if self.slow_down_polls > 0:
                self.slow_down_polls -= 1
                return 400, {"error": "slow_down"}
            if device.denied:
                return 400, {"error": "access_denied"}
            if device.user is None and self.auto_approve is not None:
                device.user = self.auto_approve
            if device.user is None:
                return 400, {"error": "authorization_pending"}
            del self._state.devices[form["device_code"]]
            return 200, self._reply(*self._issue(device.user), scope=device.scope)
        if grant == "authorization_code":
            code = self._state.codes.pop(form.get("code", ""), None)
            if code is None or code.redirect_uri != form.get("redirect_uri"):
                return 400, {"error": "invalid_grant"}
            verifier = form.get("code_verifier", "")
            digest = hashlib.sha256(verifier.encode()).digest()
            if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != code.challenge:
                return 400, {"error": "invalid_grant", "error_description": "PKCE check failed"}
            return 200, self._reply(*self._issue(code.user), scope=code.scope)
        return 400, {"error": "unsupported_grant_type"}

    def _reply(self, access: str, refresh: str | None, scope: str = "") -> dict[str, Any]:
        reply: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.access_ttl,
        }
        if refresh is not None:
            reply["refresh_token"] = refresh
        if scope:
            reply["scope"] = scope
        return reply

    def _device(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if form.get("client_id") != self.client_id:
            return 401, {"error": "invalid_client"}
        device_code = "dc-" + secrets.token_urlsafe(24)
        user_code = "-".join(secrets.token_hex(2).upper() for _ in range(2))
        self._state.devices[device_code] = _Device(
            user_code=user_code,
            client_id=self.client_id,
            scope=form.get("scope", ""),
            expires_at=time.time() + self._offset + self.device_ttl,
        )
        return 200, {
            "device_code": device_code,
            "user_code": user_code,
            "verification_uri": self.url + "/verify",
            "verification_uri_complete": f"{self.url}/verify?user_code={user_code}",
            "expires_in": self.device_ttl,
            "interval": self.device_interval,
        }

    def _authorize(self, query: dict[str, str]) -> str:
        """The Location of the redirect back to the client."""
        self.authorize_requests.append(dict(query))
        redirect = query.get("redirect_uri", "")
        if not redirect.startswith(f"http://{HOST}:"):
            raise ValueError("redirect_uri must be a loopback URI")
        answer = {"state": query.get("state", "")}
        if (
            query.get("client_id") != self.client_id
            or query.get("response_type") != "code"
            or query.get("code_challenge_method") != "S256"
            or not query.get("code_challenge")
        ):
            answer["error"] = "invalid_request"
        elif self.authorize_as is None:
            answer["error"] = "access_denied"
        else:
            code = "ac-" + secrets.token_urlsafe(24)
            self._state.codes[code] = _Code(
                user=self.authorize_as,
                client_id=self.client_id,
                redirect_uri=redirect,
                challenge=query["code_challenge"],
                scope=query.get("scope", ""),
            )
            answer["code"] = code
        return redirect + ("&" if "?" in redirect else "?") + urlencode(answer)

    def _introspect(self, token: str) -> dict[str, Any]:
        found = self._state.access.get(token)
        now = time.time() + self._offset
        active = found is not None and found[1] > now
        self.introspections.append(Introspection(token, active, found[0] if found else None))
        if not active or found is None:
            return {"active": False}
        return {
            "active": True,
            "username": found[0],
            "client_id": self.client_id,
            "token_type": "Bearer",
            "exp": int(found[1]),
        }


class _Handler(BaseHTTPRequestHandler):
    oauth: OAuthServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if self.oauth.outage:
            self._json(503, {})
        elif parts.path == "/authorize":
            with self.oauth._lock:
                try:
                    location = self.oauth._authorize(query)
                except ValueError as exc:
                    self._json(400, {"error": "invalid_request", "error_description": str(exc)})
                    return
            self._send(302, b"", "text/plain", {"Location": location})
        elif parts.path == "/introspect":
            self._introspect(query.get("token"))
        else:
            self._json(404, {"error": "not_found"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode()
        form = {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}
        path = urlsplit(self.path).path
        if self.oauth.outage:
            self._json(503, {})
            return
        if path == "/introspect":
            self._introspect(form.get("token"))
            return
        with self.oauth._lock:
            if path == "/token":
                status, reply = self.oauth._token(form)
            elif path == "/device":
                status, reply = self.oauth._device(form)
            else:
                status, reply = 404, {"error": "not_found"}
        self._json(status, reply)

    def _introspect(self, token: str | None) -> None:
        header = self.headers.get("Authorization", "")
        if token is None and header.lower().startswith("bearer "):
            token = header[7:].strip()
        with self.oauth._lock:
            reply = self.oauth._introspect(token or "")
        self._json(200, reply)

    def _json(self, status: int, reply: dict[str, Any]) -> None:
        self._send(status, json.dumps(reply).encode(), "application/json", {})

    def _send(self, status: int, body: bytes, kind: str, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
