"""``mailmover serve``: the web app with the local runner, on one machine."""

from __future__ import annotations

import ipaddress
import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from mailmover.cli.jobs import DatabaseUrl, data_dir
from mailmover.errors import MailmoverError
from mailmover.service.signinlimits import WINDOW


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def serve_command(
    host: Annotated[str, typer.Option(envvar="MAILMOVER_HOST", help="Address to listen on")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(envvar="MAILMOVER_PORT", help="Port to listen on")] = 8080,
    data_dir_: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            envvar="MAILMOVER_DATA_DIR",
            help="Directory of the job database and the key file (default: the user data one)",
        ),
    ] = None,
    database_url: DatabaseUrl = None,
    runner: Annotated[
        bool, typer.Option(help="Run the local runner (worker processes) in this process")
    ] = True,
    concurrency: Annotated[int, typer.Option(min=1, help="Mailboxes moved at once")] = 4,
    secure_cookies: Annotated[
        bool | None,
        typer.Option(
            envvar="MAILMOVER_SECURE_COOKIES",
            help="Session cookies over HTTPS only (default: on, except on a loopback address)",
        ),
    ] = None,
    behind_proxy: Annotated[
        bool,
        typer.Option(
            envvar="MAILMOVER_BEHIND_PROXY",
            help="A reverse proxy on this machine forwards the requests: take the client's "
            "address from its X-Forwarded-For (sign-in limits count per address)",
        ),
    ] = False,
    public_url: Annotated[
        str | None,
        typer.Option(envvar="MAILMOVER_PUBLIC_URL", help="The address people open (for links)"),
    ] = None,
    signin_window: Annotated[
        float,
        typer.Option(
            envvar="MAILMOVER_SIGNIN_WINDOW",
            min=1.0,
            help="Seconds in which 10 wrong passwords for an account, 30 from an address or "
            "10 wrong mail passwords in a person's checks and transfers close them",
        ),
    ] = WINDOW,
) -> None:
    """Serve the web app (and run transfers) at http://HOST:PORT.

    On first start, with no account yet, an administrator is made:
    $MAILMOVER_ADMIN_EMAIL (default admin@localhost) with $MAILMOVER_ADMIN_PASSWORD,
    or a new password printed once here.
    """
    import uvicorn

    from mailmover.service.accounts import ensure_first_admin
    from mailmover.web.app import create_app
    from mailmover.web.config import WebConfig

    directory = data_dir(data_dir_)
    url = f"http://{host}:{port}"
    config = WebConfig(
        data_dir=directory,
        database_url=database_url,
        start_runner=runner,
        runner_concurrency=concurrency,
        cookie_secure=secure_cookies if secure_cookies is not None else not _loopback(host),
        public_url=public_url or url,
        signin_window=signin_window,
    )
    try:
        app = create_app(config)
        first = ensure_first_admin(
            app.state.web.store,
            os.environ.get("MAILMOVER_ADMIN_EMAIL"),
            os.environ.get("MAILMOVER_ADMIN_PASSWORD"),
        )
    except MailmoverError as exc:
        print(f"mailmover: {exc.message}", file=sys.stderr)
        raise typer.Exit(exc.exit_code) from None
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    print(f"mailmover: open {url} in a browser", flush=True)
    if first is not None:
        account, password = first
        if password is None:
            print(f"Sign in as {account.email} with $MAILMOVER_ADMIN_PASSWORD.", flush=True)
        else:
            print(
                f"Sign in as {account.email} with the password {password}\n"
                "(shown this once; an administrator can make more accounts under Users).",
                flush=True,
            )
    uvicorn.run(
        app, host=host, port=port, log_level="info", timeout_graceful_shutdown=5,
        proxy_headers=behind_proxy,
        forwarded_allow_ips="127.0.0.1,::1" if behind_proxy else None,
        access_log=False,  # the app logs each request by its route, never the URL
    )  # fmt: skip
