"""Leases on mailboxes: claimed by a worker, renewed while it lives, settled when a pass ends.

Every change is one transaction guarded by the lease owner, so a worker that lost
its lease (it stalled, the runner gave the mailbox up) can no longer write the
mailbox's state. A lease not renewed for ``LEASE_SECONDS`` is a dead worker's.
Rows read to be changed are locked (SELECT … FOR UPDATE on PostgreSQL, where
several runners and workers share the database; SQLite's write lock on SQLite).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import Connection, and_, func, literal, or_, select, update

from mailmover.service.budgets import Budgets, take, usage_of
from mailmover.service.holds import hold, on_hold, park, throttled_server
from mailmover.service.loginguard import DEFAULT_LIMITS, LoginLimits, gate, wait_for_budget
from mailmover.service.loginguard import after_pass as logins_after
from mailmover.service.states import SETTLE_SECONDS, After, after_crash, after_pass
from mailmover.store import schema
from mailmover.store.database import Store
from mailmover.store.records import FAILURE_STATES

#: A lease not renewed for this long belongs to a dead worker.
LEASE_SECONDS: Final = 30.0

mb = schema.mailbox
_pass = schema.mailbox_pass


class LeaseLost(Exception):
    """The worker no longer holds the mailbox: it must stop writing to it."""


@dataclass(frozen=True)
class Claim:
    """A mailbox a worker now holds, and the pass it is to run."""

    mailbox_id: int
    pass_id: int
    kind: str
    connections: int = 0  # pairs granted by the budgets; 0: none counted


def now_utc() -> datetime:
    return datetime.now(UTC)


def runnable_condition(now: datetime) -> Any:
    """Mailboxes due to run and held by no live worker."""
    due = or_(
        mb.c.state.in_(("queued", "completing")),
        and_(mb.c.state == "waiting", or_(mb.c.waiting_until.is_(None), mb.c.waiting_until <= now)),
        and_(mb.c.state == "synced", mb.c.next_pass_at.is_not(None), mb.c.next_pass_at <= now),
    )
    free = or_(mb.c.lease_expires.is_(None), mb.c.lease_expires < now)
    return and_(due, free, or_(mb.c.requested.is_(None), mb.c.requested == ""))


def claim(
    store: Store,
    mailbox_id: int,
    owner: str,
    now: datetime | None = None,
    *,
    budgets: Budgets | None = None,
    wanted: int = 1,
    logins: LoginLimits = DEFAULT_LIMITS,
) -> Claim | None:
    """Take the mailbox for ``owner`` if it is still due and free; None otherwise.

    Not while one of its servers is on hold (the mailbox is parked until then), nor
    while its job's owner may try no more wrong passwords (``service.loginguard``). With
    ``budgets``: with up to ``wanted`` connection pairs, as many as the budgets allow
    fleet-wide, and not at all when not one fits now.
    """
    now = now or now_utc()
    with store.write_engine.begin() as conn:
        # PostgreSQL: the row stays locked until this transaction ends, and one another
        # claimer holds is skipped, not waited for. SQLite: BEGIN IMMEDIATE already
        # gave this transaction the only write lock.
        row = conn.execute(
            select(mb.c.state, mb.c.next_pass, mb.c.source_endpoint, mb.c.dest_endpoint)
            .where(mb.c.id == mailbox_id, runnable_condition(now))
            .with_for_update(skip_locked=True)
        ).one_or_none()
        if row is None:
            return None
        pairs = 0
        if row.source_endpoint is not None and row.dest_endpoint is not None:
            want = usage_of(row.source_endpoint, row.dest_endpoint, max(1, wanted))
            held = on_hold(conn, want.hosts, now)
            if held is not None:
                park(conn, held.server, held.until, held.reason or "", now, only=mailbox_id)
                return None
            allowed = gate(conn, mailbox_id, now, logins)
            if not allowed.go:
                if allowed.until is not None:
                    wait_for_budget(conn, mailbox_id, allowed.until, now)
                return None
            if budgets is not None:
                pairs = take(conn, budgets, want, now)
                if pairs == 0:
                    return None
        kind = "delta" if row.state == "completing" else (row.next_pass or "full")
        conn.execute(
            update(mb)
            .where(mb.c.id == mailbox_id)
            .values(
                state="running",
                reason=None,
                waiting_until=None,
                lease_owner=owner,
                lease_expires=now + timedelta(seconds=LEASE_SECONDS),
                heartbeat_at=now,
                pass_started_at=now,
                pass_bytes=0,
                progress_at=now,
                started_at=now,
                finished_at=None,
                next_pass=kind,
                connections=pairs,
                updated_at=now,
            )
        )
        pass_id = conn.execute(
            _pass.insert()
            .values(mailbox_id=mailbox_id, kind=kind, worker=owner, started_at=now)
            .returning(_pass.c.id)
        ).scalar_one()
        _log(conn, mailbox_id, now, "info", "pass", f"{kind} pass started")
        record_state(conn, [mailbox_id], "running")
    return Claim(mailbox_id, pass_id, kind, pairs)


@dataclass
class Progress:
    """Counters a worker adds up from its pass's events, written with each heartbeat."""

    messages_total: int = 0
    bytes_total: int = 0
    messages_left: int = 0
    bytes_left: int = 0
    copied: int = 0  # since the last heartbeat
    copied_bytes: int = 0
    changed: bool = False
    logins_ok: bool = False  # the pass planned its folders: both servers let it in

    def take(self) -> dict[str, Any]:
        """The columns to write, and the increments reset."""
        values: dict[str, Any] = {
            "messages_total": self.messages_total,
            "bytes_total": self.bytes_total,
            "messages_left": max(self.messages_left, 0),
            "bytes_left": max(self.bytes_left, 0),
            "messages_copied": mb.c.messages_copied + self.copied,
            "bytes_copied": mb.c.bytes_copied + self.copied_bytes,
            "pass_bytes": mb.c.pass_bytes + self.copied_bytes,
        }
        if self.logins_ok:
            now = literal(now_utc(), mb.c.logins_checked_at.type)
            values["logins_checked_at"] = func.coalesce(mb.c.logins_checked_at, now)
        self.copied = self.copied_bytes = 0
        self.changed = False
        return values


def heartbeat(
    store: Store, mailbox_id: int, owner: str, progress: Progress | None = None
) -> str | None:
    """Renew the lease and write progress; the requested action (pause, cancel) if any.

    ``LeaseLost`` when the lease is no longer ``owner``'s.
    """
    now = now_utc()
    values: dict[str, Any] = {
        "lease_expires": now + timedelta(seconds=LEASE_SECONDS),
        "heartbeat_at": now,
    }
    if progress is not None and progress.changed:
        values |= progress.take() | {"progress_at": now, "updated_at": now}
    with store.write_engine.begin() as conn:
        done = conn.execute(
            update(mb).where(mb.c.id == mailbox_id, mb.c.lease_owner == owner).values(values)
        )
        if done.rowcount != 1:
            raise LeaseLost(f"mailbox {mailbox_id} is no longer held by {owner}")
        requested = conn.execute(select(mb.c.requested).where(mb.c.id == mailbox_id)).scalar()
    return str(requested) if requested else None


#: What ``heartbeat_many`` answers for a mailbox whose lease is no longer the worker's.
LOST: Final = "lost"


def heartbeat_many(
    store: Store,
    owner: str,
    beats: dict[int, tuple[Progress, list[tuple[str, str, str]]]],
) -> dict[int, str | None]:
    """Renew every lease of ``owner`` in one transaction, with progress and log lines.

    Returns, per mailbox, the requested action (pause, cancel), None, or ``LOST``.
    """
    if not beats:
        return {}
    now = now_utc()
    answers: dict[int, str | None] = {}
    with store.write_engine.begin() as conn:
        for mailbox_id, (progress, lines) in beats.items():
            values: dict[str, Any] = {
                "lease_expires": now + timedelta(seconds=LEASE_SECONDS),
                "heartbeat_at": now,
            }
            if progress.changed:
                values |= progress.take() | {"progress_at": now, "updated_at": now}
            done = conn.execute(
                update(mb).where(mb.c.id == mailbox_id, mb.c.lease_owner == owner).values(values)
            )
            answers[mailbox_id] = None if done.rowcount == 1 else LOST
            if lines and done.rowcount == 1:
                conn.execute(
                    schema.event.insert(),
                    [{"mailbox_id": mailbox_id, "at": now, "level": lv, "kind": k, "text": t}
                     for lv, k, t in lines],
                )  # fmt: skip
        asked = conn.execute(
            select(mb.c.id, mb.c.requested).where(mb.c.id.in_(list(beats)), mb.c.requested != "")
        ).all()
    for row in asked:
        if answers.get(row.id) is None and row.requested:
            answers[row.id] = str(row.requested)
    return answers


def finish(
    store: Store,
    claimed: Claim,
    owner: str,
    report: dict[str, Any],
    *,
    stopping: bool = False,
    now: datetime | None = None,
    logins: LoginLimits = DEFAULT_LIMITS,
) -> After | None:
    """Record the pass's report and move the mailbox on; None when the lease was lost.

    ``stopping``: the worker paused the pass to shut down (the mailbox is queued again).
    """
    now = now or now_utc()
    outcome = str(report.get("outcome", "failed"))
    with store.write_engine.begin() as conn:
        # A pass already settled (its worker taken for dead, ``crashed``) keeps that outcome.
        conn.execute(
            update(_pass)
            .where(_pass.c.id == claimed.pass_id, _pass.c.finished_at.is_(None))
            .values(finished_at=now, outcome=outcome, report=report)
        )
        row = conn.execute(
            select(mb, schema.job.c.state.label("job_state"), schema.job.c.delta_every_hours)
            .join(schema.job, schema.job.c.id == mb.c.job_id)
            .where(mb.c.id == claimed.mailbox_id, mb.c.lease_owner == owner)
            .with_for_update(of=mb)
        ).one_or_none()
        if row is None:
            return None
        attempts = row.attempts + 1 if outcome == "failed" else 0
        after = after_pass(
            outcome,
            kind=claimed.kind,
            requested=row.requested,
            completing=row.job_state == "completing",
            delta_every_hours=row.delta_every_hours,
            reason=report.get("reason"),
            retryable=bool(report.get("retryable")),
            failures=int(report.get("failures") or 0),
            failed_attempts=attempts,
            now=now,
            stopping=stopping,
        )
        values = after.values() | _released(now) | {"attempts": attempts, "last_pass_at": now}
        logins_after(conn, claimed.mailbox_id, report, now, logins)
        values["messages_failed"] = _failed_count(conn, claimed.mailbox_id)
        if outcome in ("completed", "completed_with_errors"):
            values |= {"messages_left": 0, "bytes_left": 0}
        _settle(conn, claimed.mailbox_id, after, values)
        server = throttled_server(report, row.source_endpoint, row.dest_endpoint)
        if server is not None and after.state == "waiting" and after.waiting_until is not None:
            parked = hold(conn, server, after.waiting_until, after.reason or "throttled", now)
            _log(conn, claimed.mailbox_id, now, "warning", "hold",
                 f"{server} on hold until {after.waiting_until:%H:%M:%S} UTC; "
                 f"{len(parked)} other mailbox(es) parked")  # fmt: skip
        level = "error" if after.state == "failed" else "info"
        text = f"{claimed.kind} pass {outcome.replace('_', ' ')}; now {after.state}"
        _log(conn, claimed.mailbox_id, now, level, "pass", text + _because(after.reason))
    return after


def crashed(
    store: Store,
    mailbox_id: int,
    owner: str | None,
    now: datetime | None = None,
    *,
    settle: float = SETTLE_SECONDS,
) -> After | None:
    """The worker holding the mailbox died: count it and queue (or fail) the mailbox.

    ``owner`` None: whoever holds it, if its lease has expired. The mailbox waits until
    ``settle`` seconds after the dead worker's last heartbeat before it runs again.
    """
    now = now or now_utc()
    with store.write_engine.begin() as conn:
        held = mb.c.lease_owner == owner if owner else mb.c.lease_expires < now
        row = conn.execute(
            select(mb).where(mb.c.id == mailbox_id, mb.c.state == "running", held).with_for_update()
        ).one_or_none()
        if row is None:
            return None
        crashes = row.crashes + 1
        last = row.heartbeat_at or now
        settled = last + timedelta(seconds=settle)
        after = after_crash(
            crashes=crashes,
            requested=row.requested,
            kind=row.next_pass,
            settled=settled if settled > now else None,
        )
        conn.execute(
            update(_pass)
            .where(_pass.c.mailbox_id == mailbox_id, _pass.c.finished_at.is_(None))
            .values(finished_at=now, outcome="crashed")
        )
        _settle(conn, mailbox_id, after, after.values() | _released(now) | {"crashes": crashes})
        level = "error" if after.state == "failed" else "warning"
        _log(conn, mailbox_id, now, level, "crash", f"worker lost; now {after.state}")
    return after


def recover_expired(
    store: Store, now: datetime | None = None, *, settle: float = SETTLE_SECONDS
) -> list[int]:
    """Settle every mailbox whose lease expired (its worker died unseen); their ids.

    Each waits until ``settle`` seconds after its worker's last heartbeat (see ``crashed``).
    """
    now = now or now_utc()
    with store.engine.connect() as conn:
        ids = (
            conn.execute(select(mb.c.id).where(mb.c.state == "running", mb.c.lease_expires < now))
            .scalars()
            .all()
        )
    return [i for i in ids if crashed(store, i, None, now, settle=settle) is not None]


def release(store: Store, mailbox_id: int, owner: str) -> None:
    """Give a claimed mailbox back unrun (the runner could not hand it to a worker)."""
    now = now_utc()
    with store.write_engine.begin() as conn:
        conn.execute(
            update(mb)
            .where(mb.c.id == mailbox_id, mb.c.lease_owner == owner)
            .values(state="queued", **_released(now))
        )
        record_state(conn, [mailbox_id], "queued")
        conn.execute(
            update(_pass)
            .where(_pass.c.mailbox_id == mailbox_id, _pass.c.finished_at.is_(None))
            .values(finished_at=now, outcome="not_started")
        )


def _released(now: datetime) -> dict[str, Any]:
    return {
        "lease_owner": None,
        "lease_expires": None,
        "connections": 0,
        "finished_at": now,
        "updated_at": now,
    }


def _settle(conn: Connection, mailbox_id: int, after: After, values: dict[str, Any]) -> None:
    if after.state in ("paused", "cancelled", "failed", "completed", "completed_with_errors"):
        values["requested"] = None
    if after.erase:
        values |= {"source_secret": None, "dest_secret": None}
    conn.execute(update(mb).where(mb.c.id == mailbox_id).values(values))
    record_state(conn, [mailbox_id], after.state)


def _failed_count(conn: Connection, mailbox_id: int) -> int:
    m, f = schema.message, schema.folder
    return int(
        conn.execute(
            select(func.count())
            .select_from(m.join(f, f.c.id == m.c.folder_id))
            .where(f.c.mailbox_id == mailbox_id, m.c.state.in_(FAILURE_STATES))
        ).scalar_one()
    )


def log_lines(store: Store, mailbox_id: int, lines: list[tuple[str, str, str]]) -> None:
    """Add (level, kind, text) lines to the mailbox's event log."""
    if not lines:
        return
    now = now_utc()
    rows = [
        {"mailbox_id": mailbox_id, "at": now, "level": lv, "kind": k, "text": t}
        for lv, k, t in lines
    ]
    with store.write_engine.begin() as conn:
        conn.execute(schema.event.insert(), rows)


def record_state(conn: Connection, ids: list[int], state: str) -> None:
    """Note in the event log that these mailboxes entered ``state`` (webhooks read it)."""
    if ids:
        now = now_utc()
        conn.execute(
            schema.event.insert(),
            [{"mailbox_id": i, "at": now, "level": "info", "kind": "state", "text": state}
             for i in ids],
        )  # fmt: skip


def _log(
    conn: Connection, mailbox_id: int, now: datetime, level: str, kind: str, text: str
) -> None:
    conn.execute(
        schema.event.insert().values(
            mailbox_id=mailbox_id, at=now, level=level, kind=kind, text=text
        )
    )


def _because(reason: str | None) -> str:
    return f": {reason}" if reason else ""
