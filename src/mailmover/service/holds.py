"""Servers on hold: throttling seen on one mailbox parks every mailbox on that server.

When a server refuses a pass because it is busy or throttling (a provider's "too
many connections", [UNAVAILABLE] at login), the server is put on hold until the
mailbox's own retry time, in the job database: the server's other mailboxes that
were due are parked ("waiting until …, <server> is throttling: …"), and no claim,
by any runner or worker on the database, starts a mailbox on it before then. A
completing mailbox, or a synced one whose delta is due, is parked too and runs its
delta when the wait is over (a completing job's then completes it).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, case, delete, func, or_, select, update

from mailmover.service.budgets import server_of
from mailmover.store import schema
from mailmover.store.connect import insert_for

mb = schema.mailbox
sh = schema.server_hold

#: States a hold parks: due to run, not running, not in a person's hands (and a
#: synced mailbox whose next delta is due).
PARKABLE = ("queued", "waiting", "completing")
#: The pass a parked mailbox runs when its wait is over, unless it has one already.
_NEXT_PASS = {"completing": "delta", "synced": "delta"}


def throttled_server(report: dict[str, Any], source: Any, dest: Any) -> str | None:
    """The ``host:port`` that a failed pass's report says was busy or throttling; None
    when the failure was something else, or its side is not known."""
    if report.get("outcome") != "failed" or not report.get("retryable"):
        return None
    if report.get("failure_kind") != "server":
        return None
    side = report.get("failed_side")
    endpoint = source if side == "source" else dest if side == "dest" else None
    return server_of(endpoint) if endpoint else None


def hold(conn: Connection, server: str, until: datetime, reason: str, now: datetime) -> list[int]:
    """Hold ``server`` until ``until`` (a later hold already there stands) and park its
    due mailboxes; the ids of those parked."""
    conn.execute(delete(sh).where(sh.c.until < now))  # holds that are over
    insert = insert_for(conn, sh).values(server=server, until=until, reason=reason, updated_at=now)
    later = case((insert.excluded.until > sh.c.until, insert.excluded.until), else_=sh.c.until)
    conn.execute(
        insert.on_conflict_do_update(
            index_elements=[sh.c.server],
            set_={"until": later, "reason": insert.excluded.reason, "updated_at": now},
        )
    )
    return park(conn, server, until, reason, now)


def park(
    conn: Connection,
    server: str,
    until: datetime,
    reason: str,
    now: datetime,
    only: int | None = None,
) -> list[int]:
    """Make the due mailboxes on ``server`` (or only mailbox ``only``) wait until ``until``;
    their ids."""
    from mailmover.service.leases import record_state

    host, _, port = server.rpartition(":")
    on_server = or_(
        *(
            and_(side["host"].as_string() == host, side["port"].as_integer() == int(port))
            for side in (mb.c.source_endpoint, mb.c.dest_endpoint)
        )
    )
    due_delta = and_(mb.c.next_pass_at.is_not(None), mb.c.next_pass_at <= now)
    ids = list(
        conn.execute(
            update(mb)
            .where(
                or_(mb.c.state.in_(PARKABLE), and_(mb.c.state == "synced", due_delta)),
                or_(mb.c.waiting_until.is_(None), mb.c.waiting_until < until),
                or_(mb.c.requested.is_(None), mb.c.requested == ""),
                on_server if only is None else mb.c.id == only,
            )
            .values(
                state="waiting",
                # A completing or synced mailbox's delta runs when the wait is over.
                next_pass=func.coalesce(mb.c.next_pass, case(_NEXT_PASS, value=mb.c.state)),
                waiting_until=until,
                reason=f"{server} is throttling: {reason}",
                updated_at=now,
            )
            .returning(mb.c.id)
        ).scalars()
    )
    record_state(conn, ids, "waiting")
    return ids


def on_hold(conn: Connection, servers: Collection[str], now: datetime) -> Any:
    """The longest hold now on any of ``servers`` (server, until, reason), or None."""
    return conn.execute(
        select(sh.c.server, sh.c.until, sh.c.reason)
        .where(sh.c.server.in_(list(servers)), sh.c.until > now)
        .order_by(sh.c.until.desc())
        .limit(1)
    ).one_or_none()
