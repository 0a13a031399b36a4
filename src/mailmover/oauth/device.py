"""The device authorization grant (RFC 8628): a code to enter on another device."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from mailmover.errors import AuthenticationFailed, NetworkError, ProtocolError, UsageError
from mailmover.oauth.client import OAuthClient
from mailmover.oauth.grant import Clock, OAuthError, TokenSet, post_form, request_tokens, utcnow

log = logging.getLogger(__name__)

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
#: seconds added to the polling interval at each slow_down (RFC 8628 3.5)
SLOW_DOWN_STEP = 5.0
_MAX_BACKOFF = 60.0


@dataclass(frozen=True)
class DevicePrompt:
    """What the user must do: open ``verification_uri`` and enter ``user_code``."""

    verification_uri: str
    user_code: str
    #: the URI with the code in it, when the server offers one
    verification_uri_complete: str | None
    #: seconds the code stays valid
    expires_in: float
    #: the server's own instructions (Microsoft sends one)
    message: str | None = None


async def device_flow(
    client: OAuthClient,
    show: Callable[[DevicePrompt], None],
    *,
    slow_down_step: float = SLOW_DOWN_STEP,
    clock: Clock = utcnow,
) -> TokenSet:
    """Run the device flow: ask for a code, ``show`` it, poll until the user approves.

    Raises ``AuthenticationFailed`` when the user denies access or the code
    expires first.
    """
    if not client.device_url:
        raise UsageError(f"{client.provider} has no device authorization endpoint; use --browser")
    form = {"scope": client.scope, **client.credentials()}
    reply = await post_form(
        client.device_url, form, timeout=client.timeout, what="device authorization endpoint"
    )
    device_code = reply.get("device_code")
    user_code = reply.get("user_code")
    # Google says verification_url, RFC 8628 3.2 verification_uri.
    uri = reply.get("verification_uri") or reply.get("verification_url")
    if not all(isinstance(v, str) and v for v in (device_code, user_code, uri)):
        raise ProtocolError("the device authorization endpoint sent an incomplete answer")
    assert isinstance(device_code, str) and isinstance(user_code, str) and isinstance(uri, str)
    expires_in = _number(reply.get("expires_in"), 1800.0)
    interval = _number(reply.get("interval"), 5.0)
    complete = reply.get("verification_uri_complete")
    message = reply.get("message")
    show(
        DevicePrompt(
            verification_uri=uri,
            user_code=user_code,
            verification_uri_complete=complete if isinstance(complete, str) else None,
            expires_in=expires_in,
            message=message if isinstance(message, str) else None,
        )
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + expires_in
    grant = {"grant_type": DEVICE_GRANT, "device_code": device_code}
    while True:
        await asyncio.sleep(interval)
        if loop.time() > deadline:
            raise _expired()
        try:
            return await request_tokens(client, grant, now=clock)
        except OAuthError as exc:
            if exc.error == "authorization_pending":
                continue
            if exc.error == "slow_down":
                interval += slow_down_step
                continue
            if exc.error == "expired_token":
                raise _expired() from None
            if exc.error in ("access_denied", "authorization_declined"):
                raise AuthenticationFailed("access was denied on the verification page") from None
            raise
        except NetworkError as exc:
            # RFC 8628 3.5: back off on timeouts and keep polling while the code lives.
            interval = min(interval * 2, _MAX_BACKOFF)
            log.warning("polling the token endpoint failed (%s); retrying", exc.message)


def _expired() -> AuthenticationFailed:
    return AuthenticationFailed("the code expired before it was approved; run the command again")


def _number(value: object, default: float) -> float:
    if value is None:
        return default
    try:
        number = float(value) if isinstance(value, int | float | str) else -1.0
    except ValueError:
        number = -1.0
    if number < 0:
        raise ProtocolError("the device authorization endpoint sent an unusable number")
    return number
