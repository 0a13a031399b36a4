"""Email to a job's owner when one of its mailboxes fails and when the job finishes.

SMTP with STARTTLS through aiosmtplib, configured from the environment:
``MAILMOVER_SMTP_HOST``, ``MAILMOVER_SMTP_PORT`` (587), ``MAILMOVER_SMTP_FROM``,
``MAILMOVER_SMTP_USER`` and ``MAILMOVER_SMTP_PASSWORD`` (optional),
``MAILMOVER_SMTP_STARTTLS`` (1; 0 only for a server on loopback),
``MAILMOVER_SMTP_CA_FILE`` (a CA to trust besides the system's). The runner reads the
event log's ``state`` lines as the webhooks do; the messages never carry a secret.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from sqlalchemy import select

from mailmover.errors import UsageError
from mailmover.service.eventlog import EventCursor
from mailmover.service.jobs import status
from mailmover.service.states import ACTIVE_STATES, AWAITING_USER
from mailmover.store import schema
from mailmover.store.database import Store

#: States of a job not finished yet: a mailbox waiting for its user is still to come.
PENDING = ACTIVE_STATES | {AWAITING_USER}


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 587
    sender: str = "mailmover@localhost"
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = True
    ca_file: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SmtpSettings | None:
        """The settings in the environment; None when no SMTP host is set."""
        env = os.environ if env is None else env
        host = env.get("MAILMOVER_SMTP_HOST")
        if not host:
            return None
        try:
            port = int(env.get("MAILMOVER_SMTP_PORT", "587"))
        except ValueError:
            raise UsageError("MAILMOVER_SMTP_PORT must be a port number") from None
        return cls(
            host=host,
            port=port,
            sender=env.get("MAILMOVER_SMTP_FROM", "mailmover@localhost"),
            user=env.get("MAILMOVER_SMTP_USER") or None,
            password=env.get("MAILMOVER_SMTP_PASSWORD") or None,
            starttls=env.get("MAILMOVER_SMTP_STARTTLS", "1") != "0",
            ca_file=env.get("MAILMOVER_SMTP_CA_FILE") or None,
        )


class EmailFailed(UsageError):
    """The SMTP server could not be reached or refused the message."""


def message(smtp: SmtpSettings, to: str, subject: str, body: str) -> EmailMessage:
    """A plain-text email from the configured sender."""
    out = EmailMessage()
    out["From"] = smtp.sender
    out["To"] = to
    out["Subject"] = subject
    out.set_content(body)
    return out


async def deliver(smtp: SmtpSettings, email: EmailMessage) -> None:
    """Send one email; ``EmailFailed`` with the reason in words when it cannot go."""
    import aiosmtplib

    context = ssl.create_default_context(cafile=smtp.ca_file)
    try:
        await aiosmtplib.send(
            email,
            hostname=smtp.host,
            port=smtp.port,
            start_tls=smtp.starttls,
            tls_context=context if smtp.starttls else None,
            username=smtp.user,
            password=smtp.password,
            timeout=30,
        )
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise EmailFailed(
            f"the email to {email['To']} could not be sent through {smtp.host}:{smtp.port} "
            f"({type(exc).__name__})"
        ) from exc


class Emails:
    """Reads new state changes and sends the owner's emails from a thread of its own."""

    def __init__(self, store: Store, smtp: SmtpSettings, *, notify_users: bool = False) -> None:
        self.store = store
        self.smtp = smtp
        #: also a short note to each mailbox's user (its destination login, when an address)
        self.notify_users = notify_users
        self.cursor = EventCursor(store)
        #: jobs whose end was announced, until one of their mailboxes is active again
        self._announced: set[str] = set()
        self.sent = 0
        self.failed = 0
        self._threads: list[threading.Thread] = []

    def poll(self) -> None:
        """Send what the state changes since the last poll call for."""
        ev, mb, job = schema.event, schema.mailbox, schema.job
        query = (
            select(
                ev.c.id,
                ev.c.text,
                mb.c.id.label("mailbox_id"),
                mb.c.dest_endpoint,
                job.c.name,
                job.c.owner,
            )
            .join(mb, mb.c.id == ev.c.mailbox_id)
            .join(job, job.c.id == mb.c.job_id)
            .order_by(ev.c.id)
        )
        with self.store.engine.connect() as conn:
            top = self.cursor.horizon(conn)
            window = (ev.c.id > self.cursor.position, ev.c.id <= top, ev.c.kind == "state")
            rows = conn.execute(query.where(*window)).all()
        self.cursor.advance(top)
        finished: dict[str, str] = {}
        for row in rows:
            if row.text in ACTIVE_STATES:
                self._announced.discard(row.name)
            user = str((row.dest_endpoint or {}).get("user", ""))
            if self.notify_users and row.text == "completed" and "@" in user:
                self._send(user, *self._note(row.name, row.mailbox_id))
            if not row.owner or "@" not in row.owner:
                continue
            if row.text == "failed":
                self._send(row.owner, *self._failed(row.name, row.mailbox_id))
            if row.text not in PENDING:
                finished[row.name] = row.owner
        for name, owner in finished.items():
            # The mailboxes are read after the events: a state change seen here may be
            # read as an event only at the next poll. One summary per end of a job.
            mailboxes = status(self.store, name)
            if name not in self._announced and not any(m.state in PENDING for m in mailboxes):
                self._announced.add(name)
                self._send(owner, *self._summary(name, mailboxes))

    def _failed(self, job: str, mailbox_id: int) -> tuple[str, str]:
        box = next(m for m in status(self.store, job) if m.id == mailbox_id)
        subject = f"mailmover: {box.source} failed in job {job}"
        body = (
            f"The mailbox {box.source} -> {box.dest} (line {box.line}) of job {job} failed:\n\n"
            f"  {box.reason or 'no reason given'}\n\n"
            f"{box.messages_copied:,} messages were copied before it stopped.\n"
        )
        return subject, body

    def _note(self, job: str, mailbox_id: int) -> tuple[str, str]:
        box = next(m for m in status(self.store, job) if m.id == mailbox_id)
        subject = "Your mail has been moved"
        body = (
            f"Your mail from {box.source} is now in {box.dest}: "
            f"{box.messages_copied:,} messages were copied.\n"
        )
        return subject, body

    def _summary(self, job: str, mailboxes: list[Any]) -> tuple[str, str]:
        counts: dict[str, int] = {}
        for m in mailboxes:
            counts[m.words.split(" (")[0]] = counts.get(m.words.split(" (")[0], 0) + 1
        subject = f"mailmover: job {job} finished"
        lines = [f"Job {job} has no mailbox left to run.", ""]
        lines += [f"  {n} {state}" for state, n in sorted(counts.items())]
        lines += ["", "Mailbox by mailbox:"]
        lines += [
            f"  {m.source} -> {m.dest}: {m.words}, {m.messages_copied:,} copied, "
            f"{m.messages_failed:,} not copied"
            for m in mailboxes
        ]
        return subject, "\n".join(lines) + "\n"

    def _send(self, to: str, subject: str, body: str) -> None:
        email = message(self.smtp, to, subject, body)
        thread = threading.Thread(target=self._deliver, args=(email,), daemon=True)
        thread.start()
        self._threads.append(thread)

    def _deliver(self, message: EmailMessage) -> None:
        try:
            asyncio.run(deliver(self.smtp, message))
            self.sent += 1
        except EmailFailed:
            self.failed += 1

    def flush(self, timeout: float = 30.0) -> None:
        """Wait for the emails being sent."""
        for thread in self._threads:
            thread.join(timeout)
