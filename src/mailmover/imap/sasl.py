"""SASL initial responses for AUTHENTICATE (RFC 4616 PLAIN, XOAUTH2, RFC 7628 OAUTHBEARER)."""

from __future__ import annotations

import base64


def plain(user: str, password: str, authzid: str = "") -> bytes:
    """The base64 PLAIN response: ``authzid NUL user NUL password``."""
    raw = f"{authzid}\0{user}\0{password}".encode()
    return base64.b64encode(raw)


def xoauth2(user: str, token: str) -> bytes:
    """Google's and Microsoft's XOAUTH2 response."""
    raw = f"user={user}\x01auth=Bearer {token}\x01\x01".encode()
    return base64.b64encode(raw)


def oauthbearer(user: str, token: str, host: str, port: int) -> bytes:
    """The RFC 7628 OAUTHBEARER response (GS2 header with the authzid)."""
    safe_user = user.replace("=", "=3D").replace(",", "=2C")
    raw = f"n,a={safe_user},\x01host={host}\x01port={port}\x01auth=Bearer {token}\x01\x01"
    return base64.b64encode(raw.encode())


def error_reply(challenge: str) -> str:
    """Decode a server's base64 error challenge for a message (XOAUTH2/OAUTHBEARER)."""
    try:
        return base64.b64decode(challenge, validate=True).decode("utf-8", "replace")
    except ValueError:
        return challenge
