"""``mailmover worker``: one worker of the fleet, on the PostgreSQL job database."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from pathlib import Path
from typing import Annotated, Any

import typer

from mailmover.cli import runopts
from mailmover.cli.jobs import DatabaseUrl, DataDir, JsonOpt, _fail, opened
from mailmover.errors import MailmoverError, UsageError


def worker_command(
    concurrency: runopts.ConcurrencyOpt = 4,
    name: Annotated[
        str | None,
        typer.Option(envvar="MAILMOVER_WORKER_NAME", help="This worker's name (default: HOST/PID)"),
    ] = None,
    max_connections: runopts.MaxConnectionsOpt = 200,
    max_per_server: runopts.MaxPerServerOpt = 40,
    max_per_account: runopts.MaxPerAccountOpt = 15,
    retention_days: runopts.RetentionOpt = 7.0,
    metrics_port: runopts.MetricsPortOpt = None,
    metrics_host: Annotated[
        str,
        typer.Option(envvar="MAILMOVER_METRICS_HOST", help="Address the metrics are served on"),
    ] = "127.0.0.1",
    settle: runopts.SettleOpt = 30.0,
    webhook_url: runopts.WebhookUrlOpt = None,
    notify_users: runopts.NotifyUsersOpt = False,
    signin_window: runopts.SigninWindowOpt = 60.0,
    json_: JsonOpt = False,
    data: DataDir = None,
    database: DatabaseUrl = None,
) -> None:
    """Run mailboxes from the fleet's queue until SIGTERM, then drain (PostgreSQL only).

    Every worker needs the same MAILMOVER_SECRET_KEY as the machine that made the jobs.
    The connection limits are counted in the database, for the whole fleet: give every
    worker the same ones. Webhooks and emails (MAILMOVER_SMTP_HOST and the rest, as for
    run) are sent by one of the workers that have them at a time.
    """
    from mailmover.service.fleet import FleetOptions, FleetWorker
    from mailmover.service.queue import on_postgresql
    from mailmover.service.secrets import KEY_ENV, KEY_FILE, SecretBox

    try:
        common = runopts.shared(
            concurrency=concurrency, max_connections=max_connections,
            max_per_server=max_per_server, max_per_account=max_per_account,
            retention_days=retention_days, metrics_port=metrics_port, settle=settle,
            webhook_url=webhook_url, notify_users=notify_users, signin_window=signin_window,
        )  # fmt: skip
    except MailmoverError as exc:
        _fail(exc)

    def emit(event: dict[str, Any]) -> None:
        if json_:
            print(json.dumps(event), flush=True)
        elif event.get("event") in ("ready", "started", "mailbox", "recovered", "notifier",
                                    "user_never_came", "stopped"):  # fmt: skip
            words = " ".join(f"{k}={v}" for k, v in event.items() if k != "event")
            print(f"{event['event']}: {words}", flush=True)

    with opened(data, database) as (store, directory, url):
        if not on_postgresql(store):
            _fail(UsageError("mailmover worker needs a PostgreSQL job database "
                             "(MAILMOVER_DATABASE_URL); on SQLite, use mailmover run"))  # fmt: skip
        if not os.environ.get(KEY_ENV) and not (directory / KEY_FILE).exists():
            # A new key here could not read what the other machines encrypted.
            _fail(UsageError(f"set {KEY_ENV} to the key the jobs were made with"))
        box = SecretBox.open(Path(directory))
        options = FleetOptions(**common, metrics_host=metrics_host)
        worker_name = name or f"{socket.gethostname()}/{os.getpid()}"
        code = asyncio.run(FleetWorker(store, url, box, worker_name, options, emit).serve())
    raise typer.Exit(code)
