"""``mailmover invite JOB``: email each user of a batch made with ``--ask-users`` their link.

The link opens the web app's invitation page (``mailmover serve``), at ``--public-url``.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Annotated

import typer

from mailmover.cli.jobs import DatabaseUrl, DataDir, _fail, opened
from mailmover.errors import MailmoverError, UsageError
from mailmover.service import invites
from mailmover.service.emails import SmtpSettings
from mailmover.service.jobs import status


def invite_command(
    job: Annotated[str, typer.Argument(help="The job made by `batch --ask-users`")],
    public_url: Annotated[
        str,
        typer.Option(
            envvar="MAILMOVER_PUBLIC_URL", help="The web app as users reach it (the links' base)"
        ),
    ],
    resend: Annotated[
        str | None,
        typer.Option(help="Send this user's link again (the old one stops working)"),
    ] = None,
    days: Annotated[
        float, typer.Option(envvar="MAILMOVER_INVITE_DAYS", help="Days a link works")
    ] = 7.0,
    data: DataDir = None,
    database: DatabaseUrl = None,
) -> None:
    """Email the users of JOB who have not had their link (SMTP: $MAILMOVER_SMTP_*)."""
    try:
        smtp = SmtpSettings.from_env()
        if smtp is None:
            raise UsageError("set MAILMOVER_SMTP_HOST (and _PORT, _FROM...) to send the links")
        if days <= 0:
            raise UsageError("--days must be above 0")
        settings = invites.InviteSettings(public_url, smtp, timedelta(days=days))
        with opened(data, database) as (store, _directory, _url):
            if resend is None:
                sent = asyncio.run(invites.send_invitations(store, job, settings))
            else:
                found = status(store, job, resend)
                if len(found) != 1:
                    raise UsageError(f"{resend!r} names {len(found)} mailboxes; give its URL")
                sent = [asyncio.run(invites.resend(store, found[0].id, settings))]
    except MailmoverError as exc:
        _fail(exc)
    for invitation in sent:
        print(
            f"{invitation.email}: link sent, works until {invitation.expires_at:%Y-%m-%d %H:%M} UTC"
        )
    if not sent:
        print("nobody left to invite (see: mailmover status JOB)")
