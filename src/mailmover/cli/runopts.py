"""The options the local runner (``run``) and a fleet worker (``worker``) share."""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer

from mailmover.errors import UsageError

ConcurrencyOpt = Annotated[
    int, typer.Option(envvar="MAILMOVER_CONCURRENCY", help="Mailboxes at once")
]
MaxConnectionsOpt = Annotated[
    int, typer.Option(envvar="MAILMOVER_MAX_CONNECTIONS", help="Connections in all")
]
MaxPerServerOpt = Annotated[
    int, typer.Option(envvar="MAILMOVER_MAX_PER_SERVER", help="Connections per server")
]
MaxPerAccountOpt = Annotated[
    int, typer.Option(envvar="MAILMOVER_MAX_PER_ACCOUNT", help="Connections per account")
]
RetentionOpt = Annotated[
    float,
    typer.Option(
        envvar="MAILMOVER_RETENTION_DAYS", help="Erase credentials this long after a pass"
    ),
]
MetricsPortOpt = Annotated[
    int | None,
    typer.Option(envvar="MAILMOVER_METRICS_PORT", help="Serve Prometheus metrics on this port"),
]
SettleOpt = Annotated[
    float,
    typer.Option(
        "--settle-after-crash",
        envvar="MAILMOVER_SETTLE_AFTER_CRASH",
        help="Seconds a mailbox whose worker died waits, from its last heartbeat, for "
        "what that worker sent to reach the destination before it runs again",
    ),
]
WebhookUrlOpt = Annotated[
    list[str] | None,
    typer.Option(
        envvar="MAILMOVER_WEBHOOK_URL",
        help="POST every state change here, signed with $MAILMOVER_WEBHOOK_SECRET",
    ),
]
SigninWindowOpt = Annotated[
    float,
    typer.Option(
        envvar="MAILMOVER_SIGNIN_WINDOW",
        min=1.0,
        help="Seconds in which 10 wrong mail passwords in a person's checks and jobs stop "
        "their jobs' logins (give serve the same)",
    ),
]
NotifyUsersOpt = Annotated[
    bool,
    typer.Option(
        envvar="MAILMOVER_NOTIFY_USERS",
        help="Email each mailbox's user a note when it completes (needs MAILMOVER_SMTP_HOST)",
    ),
]


def shared(
    *,
    concurrency: int,
    max_connections: int,
    max_per_server: int,
    max_per_account: int,
    retention_days: float,
    metrics_port: int | None,
    settle: float,
    webhook_url: list[str] | None,
    notify_users: bool,
    signin_window: float = 60.0,
) -> dict[str, Any]:
    """The ``service.runoptions.RunOptions`` fields from the flags both commands take,
    and the webhook secret and SMTP settings from the environment.

    ``UsageError`` for options that cannot work together; ``MailmoverError`` for bad
    SMTP settings.
    """
    from mailmover.service.budgets import Budgets
    from mailmover.service.emails import SmtpSettings
    from mailmover.service.loginguard import LoginLimits

    if concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    if settle < 0:
        raise UsageError("--settle-after-crash cannot be negative")
    secret = os.environ.get("MAILMOVER_WEBHOOK_SECRET", "")
    if webhook_url and not secret:
        raise UsageError("webhooks are signed: set MAILMOVER_WEBHOOK_SECRET")
    return {
        "concurrency": concurrency,
        "budgets": Budgets(max_connections, max_per_server, max_per_account),
        "retention_days": retention_days,
        "metrics_port": metrics_port,
        "settle_seconds": settle,
        "webhook_urls": tuple(webhook_url or ()),
        "webhook_secret": secret,
        "smtp": SmtpSettings.from_env(),
        "notify_users": notify_users,
        "logins": LoginLimits(window=signin_window),
    }
