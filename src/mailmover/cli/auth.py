"""``mailmover auth``: sign a mailbox in with OAuth2 and store its refresh token encrypted.

Exit codes: 0 stored (or erased); 2 usage error; 3 refused by the provider or
the provider unreachable.
"""

from __future__ import annotations

import asyncio
import sys
import webbrowser
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mailmover.cli.exits import one_line_errors

if TYPE_CHECKING:  # imported when the command runs: httpx and cryptography are heavy
    from mailmover.oauth import DevicePrompt, TokenSet, TokenStore


class Provider(StrEnum):
    google = "google"
    microsoft = "microsoft"


def auth_command(
    provider: Annotated[Provider, typer.Argument(help="Whose accounts: google or microsoft")],
    user: Annotated[str, typer.Argument(help="The mailbox address, as used to log in")],
    client_id: Annotated[
        str | None,
        typer.Option(
            envvar="MAILMOVER_OAUTH_CLIENT_ID", help="The OAuth2 client id of your registration"
        ),
    ] = None,
    client_secret: Annotated[
        str | None,
        typer.Option(
            envvar="MAILMOVER_OAUTH_CLIENT_SECRET",
            help="Its client secret, when the provider issued one (Google does)",
        ),
    ] = None,
    device: Annotated[
        bool | None,
        typer.Option(
            "--device/--browser",
            help="Enter a code on any device, or sign in with this machine's browser "
            "(default: browser for google, device for microsoft)",
        ),
    ] = None,
    open_browser: Annotated[
        bool, typer.Option("--open/--no-open", help="Open the browser, or only print the URL")
    ] = True,
    token_url: Annotated[
        str | None, typer.Option(envvar="MAILMOVER_OAUTH_TOKEN_URL", help="Token endpoint")
    ] = None,
    device_url: Annotated[
        str | None,
        typer.Option(envvar="MAILMOVER_OAUTH_DEVICE_URL", help="Device authorization endpoint"),
    ] = None,
    authorize_url: Annotated[
        str | None,
        typer.Option(envvar="MAILMOVER_OAUTH_AUTHORIZE_URL", help="Authorization endpoint"),
    ] = None,
    scope: Annotated[
        list[str] | None,
        typer.Option(envvar="MAILMOVER_OAUTH_SCOPE", help="Scopes to ask for (repeatable)"),
    ] = None,
    store: Annotated[
        Path | None,
        typer.Option(
            envvar="MAILMOVER_TOKEN_STORE", help="Token store file (default: the data directory)"
        ),
    ] = None,
    forget: Annotated[
        bool, typer.Option(help="Erase the stored token of USER instead of signing in")
    ] = False,
    debug: Annotated[bool, typer.Option(help="Show tracebacks on errors")] = False,
) -> None:
    """Sign USER in at PROVIDER and store the refresh token, encrypted, for `mailmover copy`.

    Use the source or destination URL with ?auth=xoauth2 (or oauthbearer) to log in with it.
    The key is $MAILMOVER_SECRET_KEY, else a key file made beside the store.
    """
    from mailmover.oauth import PRESETS, TokenStore, browser_flow, device_flow, oauth_client

    name = provider.value

    async def sign_in(tokens_store: TokenStore) -> int:
        client = oauth_client(
            name,
            client_id,
            client_secret=client_secret,
            token_url=token_url,
            device_url=device_url,
            authorize_url=authorize_url,
            scopes=tuple(scope) if scope else None,
        )
        use_device = device if device is not None else PRESETS[name].default_flow == "device"
        if use_device:
            tokens = await device_flow(client, lambda prompt: _show(prompt, user, name))
        else:
            tokens = await browser_flow(
                client, lambda url: _open(url, user, name, open_browser), login_hint=user
            )
        await tokens_store.asave(name, user, tokens, client)
        _warn_without_refresh(tokens)
        print(
            f"Stored the OAuth2 token of {user} ({name}), encrypted, in {tokens_store.path}",
            flush=True,
        )
        return 0

    with one_line_errors(debug, "interrupted; nothing was stored"):
        tokens_store = TokenStore.open(store)
        if forget:
            erased = tokens_store.delete(name, user)
            what = "Erased the stored token" if erased else "No token was stored"
            print(f"{what} of {user} ({name}) in {tokens_store.path}")
            code = 0
        else:
            code = asyncio.run(sign_in(tokens_store))
    raise typer.Exit(code)


def _show(prompt: DevicePrompt, user: str, provider: str) -> None:
    minutes = max(1, round(prompt.expires_in / 60))
    print(
        f"To sign in {user} at {provider}, open {prompt.verification_uri} "
        f"and enter the code {prompt.user_code} (valid {minutes} min).",
        flush=True,
    )
    if prompt.verification_uri_complete:
        print(f"Or open {prompt.verification_uri_complete}", flush=True)
    print("Waiting for approval…", file=sys.stderr, flush=True)


def _open(url: str, user: str, provider: str, open_browser: bool) -> None:
    opened = open_browser and webbrowser.open(url)
    how = "Your browser was opened; if nothing shows" if opened else "Open this URL"
    print(f"To sign in {user} at {provider}: {how}, visit\n{url}", flush=True)
    print("Waiting for the browser…", file=sys.stderr, flush=True)


def _warn_without_refresh(tokens: TokenSet) -> None:
    if not tokens.refresh_token:
        print(
            "mailmover: the provider issued no refresh token; the stored access token works "
            f"until {tokens.expires_at:%Y-%m-%d %H:%M %Z}",
            file=sys.stderr,
        )
