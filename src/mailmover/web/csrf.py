"""CSRF protection: every POST carries a token, in a form field or an htmx header.

A signed-in session has its own token (stored with it). Before sign-in, the token
is a random value signed with a key made from the credentials' key (so every process
of the app takes it), kept in a cookie and posted back with the form (double submit).
A script with an API token (no cookie) needs none. ``verify_csrf`` is a dependency of
the whole app; ``csrf_field()`` in a template writes the hidden field.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any, Final

from fastapi import Request
from jinja2 import pass_context
from markupsafe import Markup, escape

FIELD: Final = "csrf_token"
HEADER: Final = "x-csrf-token"
#: The cookie that holds the token of a visitor not signed in.
COOKIE: Final = "mm_csrf"
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
_FORMS: Final = ("application/x-www-form-urlencoded", "multipart/form-data")


class CsrfRefused(Exception):
    """A state-changing request came without the right CSRF token."""


class AnonymousTokens:
    """Tokens for visitors not signed in: ``nonce.signature`` under ``key`` (none: a random one)."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)

    def _sign(self, nonce: str) -> str:
        return hmac.new(self._key, nonce.encode(), hashlib.sha256).hexdigest()

    def mint(self) -> str:
        nonce = secrets.token_urlsafe(24)
        return f"{nonce}.{self._sign(nonce)}"

    def valid(self, token: str | None) -> bool:
        if not token or "." not in token:
            return False
        nonce, _, signature = token.partition(".")
        return hmac.compare_digest(signature, self._sign(nonce))


@pass_context
def csrf_field(context: Any) -> Markup:
    """The hidden form field with this request's CSRF token."""
    token = context["request"].state.csrf_token
    return Markup(f'<input type="hidden" name="{FIELD}" value="{escape(token)}">')


async def verify_csrf(request: Request) -> None:
    """Refuse a POST (PUT, PATCH, DELETE) whose token is missing or wrong."""
    if request.method in SAFE_METHODS or getattr(request.state, "bearer", False):
        return
    expected = getattr(request.state, "csrf_token", None)
    sent = request.headers.get(HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(_FORMS):
        value = (await request.form()).get(FIELD)
        sent = value if isinstance(value, str) else None
    if not expected or not sent or not hmac.compare_digest(sent, expected):
        raise CsrfRefused()
