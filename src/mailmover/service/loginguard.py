"""Mail passwords tried through jobs count against their owner's wrong-password budget.

Anyone who can make jobs could otherwise guess a mail password by making them (a
batch without pre-flight, ``POST /api/batches``) and reading which mailboxes fail
to log in: a thousand-line batch would be a thousand guesses. Hiding why a mailbox
failed would not help (that it copies mail says the password was right), so what is
limited is the logins tried. The budget is the one the wizard, the API's pre-flight
and a batch's pre-flight already spend (``signinlimits.person_key``: ``ACCOUNT_LIMIT``
wrong passwords per ``WINDOW``), and it holds for jobs this way:

* a pass of an owned job (made through the web app or the API) that fails to log in
  counts one wrong password for its owner;
* a mailbox whose logins are not known to work (``mailbox.logins_checked_at`` empty)
  is claimed only while its owner's budget has room for it besides their unchecked
  mailboxes already running: no more of them try a login at once than wrong
  passwords may still be tried. When the budget is spent, the mailbox waits until
  the oldest wrong password leaves the window (its state says why); so no number of
  jobs or mailboxes tries more wrong passwords per window than the wizard allows;
* the web app and the API refuse to make a job or batch while the budget is spent
  (429), so a person learns it at once rather than from waiting mailboxes.

Logins are known to work once a pass planned the folders (both servers let the
credentials in) or a pre-flight checked them before the job was made; a pass that
fails to log in clears that. Mailboxes already checked run unhindered, and jobs
without an owner (the CLI: whoever runs it holds the job database) are not limited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import Connection, case, func, select, update

from mailmover.service.signinlimits import (
    ACCOUNT_LIMIT,
    KEEP,
    WINDOW,
    count_recent,
    oldest_recent,
    person_key,
    record_failure,
)
from mailmover.store import schema

mb = schema.mailbox
job_t = schema.job

#: Why a mailbox waits for its owner's budget, in words.
REASON: Final = "too many wrong mail passwords in its owner's transfers"
#: The pass a waiting mailbox runs when its wait is over, unless it has one already.
_NEXT_PASS: Final = {"completing": "delta", "synced": "delta"}


@dataclass(frozen=True)
class LoginLimits:
    """Wrong passwords a person's jobs may try in ``window`` seconds."""

    per_person: int = ACCOUNT_LIMIT
    window: float = WINDOW


@dataclass(frozen=True)
class Gate:
    """May the mailbox log in now; if not and the budget is spent, until when it waits."""

    go: bool
    until: datetime | None = None


GO: Final = Gate(True)
#: The limits of the web app's defaults (``signinlimits``), which every runner applies.
DEFAULT_LIMITS: Final = LoginLimits()


def gate(conn: Connection, mailbox_id: int, now: datetime, limits: LoginLimits) -> Gate:
    """Whether the mailbox may try its logins now (inside the claim's transaction)."""
    row = conn.execute(
        select(mb.c.logins_checked_at, job_t.c.owner_id)
        .join(job_t, job_t.c.id == mb.c.job_id)
        .where(mb.c.id == mailbox_id)
    ).one()
    if row.logins_checked_at is not None or row.owner_id is None:
        return GO
    owner = int(row.owner_id)
    # One such claim at a time per owner: PostgreSQL locks the owner's account row,
    # SQLite's write lock is already this transaction's.
    account = schema.account
    conn.execute(select(account.c.id).where(account.c.id == owner).with_for_update())
    since = now - timedelta(seconds=limits.window)
    key = person_key(owner)
    failures = count_recent(conn, {"account": key}, since)["account"]
    if failures >= limits.per_person:
        oldest = oldest_recent(conn, "account", key, since) or now
        return Gate(False, oldest + timedelta(seconds=limits.window))
    trying = conn.execute(
        select(func.count())
        .select_from(mb.join(job_t, job_t.c.id == mb.c.job_id))
        .where(
            job_t.c.owner_id == owner,
            mb.c.state == "running",
            mb.c.logins_checked_at.is_(None),
            mb.c.lease_expires > now,
        )
    ).scalar_one()
    return Gate(limits.per_person - failures - int(trying) > 0)


def wait_for_budget(conn: Connection, mailbox_id: int, until: datetime, now: datetime) -> None:
    """Make the mailbox wait until its owner's budget has room again."""
    from mailmover.service.leases import record_state

    conn.execute(
        update(mb)
        .where(mb.c.id == mailbox_id)
        .values(
            state="waiting",
            next_pass=func.coalesce(mb.c.next_pass, case(_NEXT_PASS, value=mb.c.state)),
            waiting_until=until,
            reason=REASON,
            updated_at=now,
        )
    )
    record_state(conn, [mailbox_id], "waiting")


def after_pass(
    conn: Connection, mailbox_id: int, report: dict[str, Any], now: datetime, limits: LoginLimits
) -> bool:
    """Count a failed login against the owner, or note that the logins work; True for
    a failed login."""
    outcome = report.get("outcome")
    if outcome == "failed" and report.get("failure_kind") == "authentication":
        conn.execute(update(mb).where(mb.c.id == mailbox_id).values(logins_checked_at=None))
        owner = conn.execute(
            select(job_t.c.owner_id)
            .join(mb, mb.c.job_id == job_t.c.id)
            .where(mb.c.id == mailbox_id)
        ).scalar()
        if owner is not None:
            keys = {"account": person_key(int(owner))}
            record_failure(conn, keys, now, max(limits.window, KEEP))
        return True
    if outcome in ("completed", "completed_with_errors") or report.get("plan"):
        conn.execute(
            update(mb)
            .where(mb.c.id == mailbox_id, mb.c.logins_checked_at.is_(None))
            .values(logins_checked_at=now)
        )
    return False
