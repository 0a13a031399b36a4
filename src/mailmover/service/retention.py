"""Credentials no longer needed, erased: the round every runner and fleet sweep makes.

A finished or cancelled mailbox's credentials go when its state changes
(``states.After.erase``, ``jobs.cancel``). Two kinds of mailbox never change state
by themselves, and are settled here:

* a mailbox idle since its last pass (failed, completed with errors, synced with no
  delta scheduled), ``days`` after that pass. A paused mailbox keeps them (a person
  resumes it), and so do a synced mailbox with a delta scheduled, however far ahead,
  and one waiting to run again: they are needed, not stale. When a job's schedule
  ends (``schedule.set_delta_schedule(None)``), its synced mailboxes count from their
  last pass;
* a mailbox waiting for its user (``service.invites``) whose user never came: its
  link expired unused, or no link was ever made for it ``unsent`` after its job was
  created. It fails with the reason, and what the administrator gave for the other
  side is erased with the rest.

The web app's drafts and sign-ins on their way (encrypted passwords among them) are
deleted once expired, even when no new one comes to delete them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import Connection, and_, delete, or_, select, update

from mailmover.service import drafts, pending
from mailmover.service.leases import record_state
from mailmover.service.states import AWAITING_USER
from mailmover.store import schema
from mailmover.store.database import Store

mb = schema.mailbox
inv = schema.invitation
job_t = schema.job

#: A mailbox waiting for its user with no link ever made gives up this long after its job.
UNSENT: Final = timedelta(days=7)
EXPIRED_REASON: Final = "its user did not sign in before the link expired; credentials erased"
UNSENT_REASON: Final = "no link was ever sent to its user; credentials erased"


@dataclass(frozen=True)
class Erased:
    """What one round erased."""

    stale: int  # idle mailboxes past the retention period
    expired: list[int]  # mailboxes whose user never came, now failed
    forms: int = 0  # expired drafts and sign-ins on their way


def sweep(store: Store, days: float, now: datetime | None = None) -> Erased:
    """Erase every credential no longer needed (see the module); what was erased."""
    now = now or datetime.now(UTC)
    expired = give_up_on_absent_users(store, now)
    return Erased(erase_stale_credentials(store, days, now), expired, forget_forms(store, now))


def forget_forms(store: Store, now: datetime) -> int:
    """Delete the expired drafts and sign-ins on their way; how many."""
    with store.write_engine.begin() as conn:
        old_drafts = schema.web_draft.c.touched_at < now - drafts.KEEP_FOR
        old_pending = schema.web_pending.c.touched_at < now - pending.KEEP_AT_MOST
        gone = conn.execute(delete(schema.web_draft).where(old_drafts)).rowcount
        return int(gone + conn.execute(delete(schema.web_pending).where(old_pending)).rowcount)


#: States in which a mailbox runs again only if a person asks (synced: with no delta due).
IDLE: Final = ("failed", "completed_with_errors", "completed", "cancelled")


def erase_stale_credentials(store: Store, days: float, now: datetime | None = None) -> int:
    """Forget the credentials of idle mailboxes ``days`` after their last pass; how many."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
    idle = or_(mb.c.state.in_(IDLE), and_(mb.c.state == "synced", mb.c.next_pass_at.is_(None)))
    with store.write_engine.begin() as conn:
        return int(
            conn.execute(
                update(mb)
                .where(
                    mb.c.last_pass_at < cutoff,
                    idle,
                    or_(mb.c.source_secret.is_not(None), mb.c.dest_secret.is_not(None)),
                )
                .values(source_secret=None, dest_secret=None)
            ).rowcount
        )


def give_up_on_absent_users(
    store: Store, now: datetime | None = None, unsent: timedelta = UNSENT
) -> list[int]:
    """Fail the mailboxes whose user never came and erase their credentials; their ids.

    A link sent again has a new expiry, so its mailbox waits on.
    """
    now = now or datetime.now(UTC)
    expired = and_(inv.c.id.is_not(None), inv.c.used_at.is_(None), inv.c.expires_at <= now)
    never = and_(inv.c.id.is_(None), job_t.c.created_at <= now - unsent)
    with store.write_engine.begin() as conn:
        ids = _waiting(conn, or_(expired, never))
        if not ids:
            return []
        # Locked, then read again: ``invites.resend`` locks the row before it renews the
        # link, so a link sent meanwhile is seen here (PostgreSQL; SQLite writes one at a time).
        conn.execute(select(mb.c.id).where(mb.c.id.in_(ids)).with_for_update(key_share=True))
        gone = _give_up(conn, _waiting(conn, and_(expired, mb.c.id.in_(ids))), EXPIRED_REASON, now)
        gone += _give_up(conn, _waiting(conn, and_(never, mb.c.id.in_(ids))), UNSENT_REASON, now)
    return sorted(gone)


def _waiting(conn: Connection, where: Any) -> list[int]:
    """Mailboxes waiting for their user where ``where`` holds of their invitation and job."""
    query = (
        select(mb.c.id)
        .join(job_t, job_t.c.id == mb.c.job_id)
        .outerjoin(inv, inv.c.mailbox_id == mb.c.id)
        .where(mb.c.state == AWAITING_USER, where)
    )
    return [int(i) for i in conn.execute(query).scalars()]


def _give_up(conn: Connection, ids: list[int], reason: str, now: datetime) -> list[int]:
    if not ids:
        return []
    conn.execute(
        update(mb)
        .where(mb.c.id.in_(ids), mb.c.state == AWAITING_USER)
        .values(state="failed", reason=reason, source_secret=None, dest_secret=None,
                updated_at=now)
    )  # fmt: skip
    record_state(conn, ids, "failed")
    return ids
