"""The audit log: who did what (created, paused, cancelled a transfer, downloaded a report,
changed a user), for administrators to read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import Connection, select

from mailmover.store import schema
from mailmover.store.database import Store

audit_t = schema.audit


class Actor(Protocol):
    """Who acted: an account (``service.accounts.Account``)."""

    @property
    def id(self) -> int: ...

    @property
    def email(self) -> str: ...


@dataclass(frozen=True)
class AuditEntry:
    """One line of the audit log."""

    at: datetime
    actor: str
    action: str
    target: str
    detail: str


def record(
    store_or_conn: Store | Connection,
    actor: Actor | None,
    action: str,
    target: str,
    detail: str = "",
) -> None:
    """Add a line; inside ``conn``'s transaction when a connection is given.

    ``detail`` must never hold a secret: it is shown to administrators as it is.
    """
    values = {
        "at": datetime.now(UTC),
        "actor_id": actor.id if actor is not None else None,
        "actor": actor.email if actor is not None else "system",
        "action": action,
        "target": target,
        "detail": detail,
    }
    if isinstance(store_or_conn, Store):
        with store_or_conn.write_engine.begin() as conn:
            conn.execute(audit_t.insert().values(**values))
    else:
        store_or_conn.execute(audit_t.insert().values(**values))


def entries(store: Store, limit: int = 200, actor_id: int | None = None) -> list[AuditEntry]:
    """The newest ``limit`` lines, newest first (of one account when ``actor_id`` is given)."""
    query = select(
        audit_t.c.at, audit_t.c.actor, audit_t.c.action, audit_t.c.target, audit_t.c.detail
    )
    if actor_id is not None:
        query = query.where(audit_t.c.actor_id == actor_id)
    with store.engine.connect() as conn:
        rows = conn.execute(query.order_by(audit_t.c.id.desc()).limit(limit)).all()
    return [AuditEntry(*row) for row in rows]
