"""The authorization code grant with PKCE and a loopback redirect (RFC 8252, RFC 7636)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import html
import secrets
from collections.abc import AsyncIterator, Callable
from urllib.parse import parse_qs, urlencode, urlsplit

from mailmover.errors import AuthenticationFailed, UsageError
from mailmover.oauth.client import OAuthClient
from mailmover.oauth.grant import Clock, TokenSet, request_tokens, utcnow

#: seconds to wait for the user to finish in the browser
BROWSER_TIMEOUT = 300.0
_PAGE = (
    "<!doctype html><meta charset=utf-8><title>mailmover</title>"
    "<p>{}</p><p>You can close this window.</p>"
)


def pkce_pair() -> tuple[str, str]:
    """A PKCE code verifier and its S256 challenge (RFC 7636 4.1, 4.2)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorize_url(
    client: OAuthClient, redirect_uri: str, state: str, challenge: str, login_hint: str | None
) -> str:
    """The authorization request's URL (RFC 6749 4.1.1, with PKCE)."""
    if not client.authorize_url:
        raise UsageError(f"{client.provider} has no authorization endpoint")
    params = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": redirect_uri,
        "scope": client.scope,
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **dict(client.authorize_params),
    }
    if login_hint:
        params["login_hint"] = login_hint
    separator = "&" if "?" in client.authorize_url else "?"
    return client.authorize_url + separator + urlencode(params)


async def browser_flow(
    client: OAuthClient,
    open_url: Callable[[str], None],
    *,
    login_hint: str | None = None,
    host: str = "127.0.0.1",
    timeout: float = BROWSER_TIMEOUT,
    clock: Clock = utcnow,
) -> TokenSet:
    """Send the user to the authorization page and trade the code it redirects with.

    ``open_url`` is given the authorization URL (to open a browser or print it).
    The redirect lands on a one-request listener on ``host`` at a free port.
    """
    if not client.authorize_url:
        raise UsageError(f"{client.provider} has no authorization endpoint; use --device")
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(24)
    async with _loopback(host, state) as (redirect_uri, answer):
        open_url(authorize_url(client, redirect_uri, state, challenge, login_hint))
        try:
            code = await asyncio.wait_for(answer, timeout)
        except TimeoutError:
            raise AuthenticationFailed(
                f"the browser did not come back within {timeout:g} s; run the command again"
            ) from None
    grant = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
    }
    return await request_tokens(client, grant, now=clock)


@contextlib.asynccontextmanager
async def _loopback(host: str, state: str) -> AsyncIterator[tuple[str, asyncio.Future[str]]]:
    """A listener for the redirect: yields its URI and the future of the code it receives."""
    answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    open_connections: set[asyncio.StreamWriter] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        open_connections.add(writer)
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            status, text = _answer(head, state, answer)
            body = _PAGE.format(html.escape(text)).encode()
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            open_connections.discard(writer)
            writer.close()

    server = await asyncio.start_server(handle, host, 0)
    port = server.sockets[0].getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    try:
        yield f"http://{shown}:{port}/", answer
    finally:
        server.close()
        # Browsers open spare connections that never send a request.
        for writer in open_connections:
            writer.close()
        await server.wait_closed()
        answer.cancel()


def _answer(head: bytes, state: str, answer: asyncio.Future[str]) -> tuple[str, str]:
    """Read the redirect request and settle ``answer``; the HTTP status and page text."""
    method, _, rest = head.partition(b"\r\n")[0].decode("latin-1").partition(" ")
    target = rest.rpartition(" ")[0]
    if method != "GET":
        return "405 Method Not Allowed", "Unexpected request."
    query = {k: v[0] for k, v in parse_qs(urlsplit(target).query).items()}
    if not {"code", "error", "state"} & query.keys():
        return "404 Not Found", "Nothing here."
    if answer.done():
        return "409 Conflict", "mailmover already has its answer."
    if not secrets.compare_digest(query.get("state", ""), state):
        answer.set_exception(
            AuthenticationFailed(
                "the redirect carried the wrong state (not the request mailmover made); "
                "run the command again"
            )
        )
        return "400 Bad Request", "This answer does not belong to mailmover's request."
    if "error" in query:
        detail = query["error"]
        if query.get("error_description"):
            detail += f": {query['error_description']}"
        answer.set_exception(AuthenticationFailed(f"the sign-in was refused ({detail})"))
        return "403 Forbidden", "The sign-in was refused."
    if not query.get("code"):
        answer.set_exception(AuthenticationFailed("the redirect carried no authorization code"))
        return "400 Bad Request", "No authorization code."
    answer.set_result(query["code"])
    return "200 OK", "mailmover is signed in."
