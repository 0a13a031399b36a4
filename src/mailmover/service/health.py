"""The service at a glance, for administrators: mailboxes by state, the workers that hold
leases (and whether they still renew them), and the servers in use."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select

from mailmover.store import schema
from mailmover.store.database import Store

mb = schema.mailbox


@dataclass(frozen=True)
class WorkerLease:
    """A worker as the database sees it: the mailboxes it holds and its last heartbeat."""

    name: str
    mailboxes: int
    last_heartbeat: datetime | None
    live: bool  # its leases are still being renewed


@dataclass(frozen=True)
class ServerUse:
    """A server (host:port) and how many mailboxes use it, as source or destination."""

    server: str
    mailboxes: int
    active: int


def mailbox_states(store: Store) -> dict[str, int]:
    """Every service mailbox counted by state."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(mb.c.state, func.count())
            .where(mb.c.source_endpoint.is_not(None))
            .group_by(mb.c.state)
        ).all()
    return {state: int(n) for state, n in rows}


def worker_leases(store: Store, now: datetime | None = None) -> list[WorkerLease]:
    """The workers holding mailboxes, by name."""
    now = now or datetime.now(UTC)
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(
                mb.c.lease_owner,
                func.count(),
                func.max(mb.c.heartbeat_at),
                func.max(mb.c.lease_expires),
            )
            .where(mb.c.lease_owner.is_not(None), mb.c.state == "running")
            .group_by(mb.c.lease_owner)
            .order_by(mb.c.lease_owner)
        ).all()
    return [
        WorkerLease(name, int(n), beat, expires is not None and expires >= now)
        for name, n, beat, expires in rows
    ]


def servers_in_use(store: Store) -> list[ServerUse]:
    """Each server with the number of mailboxes on it (all, and queued or running now)."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(mb.c.source_endpoint, mb.c.dest_endpoint, mb.c.state).where(
                mb.c.source_endpoint.is_not(None)
            )
        ).all()
    total: Counter[str] = Counter()
    active: Counter[str] = Counter()
    for src, dst, state in rows:
        for end in (src, dst):
            server = f"{end.get('host')}:{end.get('port')}"
            total[server] += 1
            if state in ("queued", "running", "waiting", "completing"):
                active[server] += 1
    return [ServerUse(s, n, active[s]) for s, n in total.most_common()]
