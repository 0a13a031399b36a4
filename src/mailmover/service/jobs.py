"""The service's functions: what the CLI, the web app and the workers call.

A job is a named set of mailbox pairs with its settings; see ``states`` for a
mailbox's life. Every function here is one short transaction (or a read), so
``status`` never slows a copy down.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any, Final

from sqlalchemy import Connection, and_, or_, select, update

from mailmover.config import Endpoint
from mailmover.engine.settings import PassSettings, endpoint_dict
from mailmover.errors import UsageError
from mailmover.service.batchfile import BatchRow
from mailmover.service.credentials import AdminLogin, password_spec
from mailmover.service.leases import record_state
from mailmover.service.secrets import SecretBox
from mailmover.service.states import AWAITING_USER, END_STATES, words
from mailmover.store import schema
from mailmover.store.database import Store

mb = schema.mailbox
job_t = schema.job

#: States a pause takes at once (a running mailbox is asked, and pauses within seconds).
_PAUSABLE: Final = ("queued", "waiting", "synced", "completing")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class NotFound(UsageError):
    """No such job, or no such mailbox in it."""


@dataclass(frozen=True)
class JobSpec:
    """What a batch is made into, besides its rows."""

    name: str
    owner: str | None = None
    #: the web app's account the job belongs to (``service.accounts``)
    owner_id: int | None = None
    settings: PassSettings = field(default_factory=PassSettings)
    delta_every_hours: float | None = None
    source_admin: AdminLogin | None = None
    dest_admin: AdminLogin | None = None
    #: a pre-stage pass first: only the mail before this date (then the full pass)
    prestage_before: date | None = None
    #: a pre-flight logged in to both sides of every row just now (``service.loginguard``)
    logins_checked: bool = False


def create_job_from_batch(store: Store, box: SecretBox, rows: list[BatchRow], spec: JobSpec) -> str:
    """Make the job and its mailboxes in one transaction; its name.

    A mailbox is queued for its first pass, or, when a side has neither a password nor
    an admin login, waits for its user to give one (``service.invites``).
    """
    if not _NAME.match(spec.name):
        raise UsageError(f"a job name is letters, digits, '.', '_' and '-', not {spec.name!r}")
    if spec.delta_every_hours is not None and spec.delta_every_hours <= 0:
        raise UsageError("--delta-every takes a number of hours above 0")
    now = datetime.now(UTC)
    admin_specs = {
        side: login.spec() if login else None
        for side, login in (("source", spec.source_admin), ("dest", spec.dest_admin))
    }
    with store.write_engine.begin() as conn:
        if conn.execute(select(job_t.c.id).where(job_t.c.name == spec.name)).first():
            raise UsageError(f"a job named {spec.name!r} exists already; choose another --name")
        job_id = conn.execute(
            job_t.insert()
            .values(
                name=spec.name,
                created_at=now,
                updated_at=now,
                state="active",
                owner=spec.owner,
                owner_id=spec.owner_id,
                settings=spec.settings.to_dict()
                | (
                    {"prestage_before": spec.prestage_before.isoformat()}
                    if spec.prestage_before
                    else {}
                ),
                delta_every_hours=spec.delta_every_hours,
            )
            .returning(job_t.c.id)
        ).scalar_one()
        values = []
        for row in rows:
            source = with_admin_auth(row.source, spec.source_admin)
            dest = with_admin_auth(row.dest, spec.dest_admin)
            secrets = {
                side: box.encrypt(admin_specs[side] or login or password_spec(password or ""))
                if admin_specs[side] or login or password
                else None
                for side, password, login in (
                    ("source", row.source_password, row.source_login),
                    ("dest", row.dest_password, row.dest_login),
                )
            }
            ready = all(secrets.values())
            values.append(
                {
                    "job_id": job_id,
                    "source": source.url,
                    "dest": dest.url,
                    "source_endpoint": endpoint_dict(source),
                    "dest_endpoint": endpoint_dict(dest),
                    "source_secret": secrets["source"],
                    "dest_secret": secrets["dest"],
                    "settings": row.options | ({"email": row.email} if row.email else {}) or None,
                    "line": row.line,
                    "state": "queued" if ready else AWAITING_USER,
                    "logins_checked_at": now if ready and spec.logins_checked else None,
                    "next_pass": "prestage" if spec.prestage_before else "full",
                    "updated_at": now,
                }
            )
        ids = (
            conn.execute(mb.insert().returning(mb.c.id, sort_by_parameter_order=True), values)
            .scalars()
            .all()
        )
        for state in ("queued", AWAITING_USER):
            record_state(conn, [i for i, v in zip(ids, values, strict=True)
                                if v["state"] == state], state)  # fmt: skip
    return spec.name


def with_admin_auth(endpoint: Endpoint, login: AdminLogin | None) -> Endpoint:
    """The endpoint with the login mechanism its side's admin login needs."""
    if login is None or login.endpoint_auth is None:
        return endpoint
    return replace(endpoint, auth=login.endpoint_auth)


# -- reading ----------------------------------------------------------------------------


@dataclass(frozen=True)
class MailboxStatus:
    """One mailbox as ``status`` shows it."""

    id: int
    job: str
    line: int | None
    source: str
    dest: str
    state: str
    words: str
    reason: str | None
    waiting_until: datetime | None
    requested: str | None
    messages_total: int
    bytes_total: int
    messages_copied: int
    bytes_copied: int
    messages_failed: int
    messages_left: int
    bytes_left: int
    rate: float | None  # bytes per second in the current pass
    eta_seconds: float | None
    worker: str | None
    crashes: int
    has_credentials: bool

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["waiting_until"] = self.waiting_until.isoformat() if self.waiting_until else None
        return data


def status(store: Store, job: str | None = None, mailbox: str | None = None) -> list[MailboxStatus]:
    """Every mailbox (of ``job``, or of every service job), as a person reads it."""
    now = datetime.now(UTC)
    query = (
        select(mb, job_t.c.name.label("job_name"))
        .join(job_t, job_t.c.id == mb.c.job_id)
        .where(job_t.c.settings.is_not(None))
        .order_by(job_t.c.name, mb.c.line, mb.c.id)
    )
    with store.engine.connect() as conn:
        if job is not None:
            query = query.where(job_t.c.id == _job_id(conn, job))
        if mailbox is not None:
            query = query.where(_mailbox_match(mailbox))
        rows = conn.execute(query).all()
    if mailbox is not None and not rows:
        raise NotFound(f"no mailbox {mailbox!r} in job {job!r}")
    return [_status(row, now) for row in rows]


def mailbox_status(store: Store, mailbox_id: int) -> MailboxStatus:
    """One mailbox, as ``status`` shows it."""
    query = (
        select(mb, job_t.c.name.label("job_name"))
        .join(job_t, job_t.c.id == mb.c.job_id)
        .where(mb.c.id == mailbox_id)
    )
    with store.engine.connect() as conn:
        row = conn.execute(query).one_or_none()
    if row is None:
        raise NotFound(f"no mailbox with id {mailbox_id}")
    return _status(row, datetime.now(UTC))


@dataclass(frozen=True)
class LogLine:
    """One line of a mailbox's event log."""

    at: datetime
    level: str
    kind: str
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "level": self.level, "kind": self.kind,
                "text": self.text}  # fmt: skip


def mailbox_events(store: Store, mailbox_id: int, limit: int = 100) -> list[LogLine]:
    """The last ``limit`` lines of a mailbox's event log, oldest first."""
    ev = schema.event
    query = (
        select(ev.c.at, ev.c.level, ev.c.kind, ev.c.text)
        .where(ev.c.mailbox_id == mailbox_id)
        .order_by(ev.c.id.desc())
        .limit(limit)
    )
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    return [LogLine(*row) for row in reversed(rows)]


def _status(row: Any, now: datetime) -> MailboxStatus:
    state, reason = row.state, row.reason
    live = row.lease_expires is not None and row.lease_expires >= now
    if state == "running" and not live:
        state, reason = "queued", "its worker stopped; it runs again"
    elif state == "running" and row.requested:
        reason = f"{row.requested} requested"
    rate = eta = None
    if state == "running" and row.pass_started_at and row.progress_at:
        seconds = (row.progress_at - row.pass_started_at).total_seconds()
        if seconds > 0 and row.pass_bytes > 0:
            rate = row.pass_bytes / seconds
            # bytes_left counts only the folders begun so far
            eta = max(row.bytes_left, row.bytes_total - row.bytes_copied) / rate
    return MailboxStatus(
        id=row.id,
        job=row.job_name,
        line=row.line,
        source=row.source,
        dest=row.dest,
        state=state,
        words=words(state, reason, row.waiting_until),
        reason=reason,
        waiting_until=row.waiting_until if state == "waiting" else None,
        requested=row.requested,
        messages_total=row.messages_total,
        bytes_total=row.bytes_total,
        messages_copied=row.messages_copied,
        bytes_copied=row.bytes_copied,
        messages_failed=row.messages_failed,
        messages_left=row.messages_left,
        bytes_left=row.bytes_left,
        rate=rate,
        eta_seconds=eta,
        worker=row.lease_owner if live else None,
        crashes=row.crashes,
        has_credentials=row.source_secret is not None or row.dest_secret is not None,
    )


@dataclass(frozen=True)
class JobSummary:
    name: str
    owner: str | None
    state: str
    created_at: datetime
    mailboxes: int
    by_state: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__) | {"created_at": self.created_at.isoformat()}


def list_jobs(store: Store) -> list[JobSummary]:
    """Every service job with its mailboxes counted by state."""
    return [summary for summary, _boxes in jobs_with_mailboxes(store)]


def jobs_with_mailboxes(store: Store) -> list[tuple[JobSummary, list[MailboxStatus]]]:
    """Every service job, oldest first, with its mailboxes (two queries in all)."""
    with store.engine.connect() as conn:
        jobs = conn.execute(
            select(job_t).where(job_t.c.settings.is_not(None)).order_by(job_t.c.created_at)
        ).all()
    boxes: dict[str, list[MailboxStatus]] = {}
    for st in status(store):
        boxes.setdefault(st.job, []).append(st)
    out = []
    for job in jobs:
        mine = boxes.get(job.name, [])
        counts: dict[str, int] = {}
        for st in mine:
            counts[st.state] = counts.get(st.state, 0) + 1
        summary = JobSummary(job.name, job.owner, job.state, job.created_at, len(mine), counts)
        out.append((summary, mine))
    return out


# -- acting -----------------------------------------------------------------------------


def pause(store: Store, job: str, mailbox: str | None = None) -> int:
    """Pause the mailboxes at once, or ask the running ones to; how many were touched."""
    with store.write_engine.begin() as conn:
        where = _scope(conn, job, mailbox)
        now = datetime.now(UTC)
        n = _move(
            conn,
            and_(where, mb.c.state.in_(_PAUSABLE)),
            state="paused", reason="paused by request", requested=None, updated_at=now,
        )  # fmt: skip
        n += conn.execute(
            update(mb)
            .where(
                where,
                mb.c.state == "running",
                or_(mb.c.requested.is_(None), mb.c.requested == "pause"),
            )
            .values(requested="pause", updated_at=now)
        ).rowcount
    return int(n)


def resume(store: Store, job: str, mailbox: str | None = None) -> int:
    """Queue paused mailboxes again (they go on where they stopped); how many."""
    with store.write_engine.begin() as conn:
        where = _scope(conn, job, mailbox)
        now = datetime.now(UTC)
        n = _move(
            conn,
            and_(where, mb.c.state == "paused"),
            state="queued", reason=None, requested=None, updated_at=now,
        )  # fmt: skip
        # A pause asked of a running mailbox and not yet taken is withdrawn.
        n += conn.execute(
            update(mb)
            .where(where, mb.c.state == "running", mb.c.requested == "pause")
            .values(requested=None, updated_at=now)
        ).rowcount
    return int(n)


def cancel(store: Store, job: str, mailbox: str | None = None) -> int:
    """Cancel the mailboxes (running ones are asked to stop); credentials erased; how many."""
    with store.write_engine.begin() as conn:
        where = _scope(conn, job, mailbox)
        now = datetime.now(UTC)
        # A mailbox "running" under an expired lease has no worker to ask.
        gone = and_(mb.c.state == "running", mb.c.lease_expires < now)
        idle = and_(where, or_(mb.c.state.not_in(("running", *END_STATES)), gone))
        n = _move(
            conn,
            idle,
            state="cancelled",
            reason="cancelled by request",
            requested=None,
            source_secret=None,
            dest_secret=None,
            lease_owner=None,
            lease_expires=None,
            updated_at=now,
        )
        n += conn.execute(
            update(mb)
            .where(where, mb.c.state == "running")
            .values(requested="cancel", updated_at=now)
        ).rowcount
    return int(n)


def delta(store: Store, job: str) -> int:
    """Queue a delta pass now for every synced mailbox of the job; how many."""
    with store.write_engine.begin() as conn:
        where = _scope(conn, job, None)
        return _move(
            conn,
            and_(where, mb.c.state == "synced"),
            state="queued", next_pass="delta", next_pass_at=None, reason=None,
        )  # fmt: skip


def retry_errors(store: Store, job: str) -> int:
    """Queue a pass over only the messages that failed, for every mailbox that has some."""
    with store.write_engine.begin() as conn:
        where = _scope(conn, job, None)
        return _move(
            conn,
            and_(
                where,
                mb.c.state.in_(("completed_with_errors", "synced")),
                mb.c.messages_failed > 0,
                or_(mb.c.source_secret.is_not(None), mb.c.dest_secret.is_not(None)),
            ),
            state="queued", next_pass="retry_errors", reason=None,
        )  # fmt: skip


def complete(store: Store, job: str) -> int:
    """Finish the job: a last delta for each synced mailbox, then completed; how many."""
    with store.write_engine.begin() as conn:
        job_id = _job_id(conn, job)
        conn.execute(
            update(job_t)
            .where(job_t.c.id == job_id)
            .values(state="completing", updated_at=datetime.now(UTC))
        )
        return _move(
            conn,
            and_(mb.c.job_id == job_id, mb.c.state == "synced"),
            state="completing", next_pass="delta", reason=None,
        )  # fmt: skip


def active_count(store: Store) -> int:
    """Mailboxes queued, running, waiting or completing, in every job."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(mb.c.state).where(mb.c.state.in_(("queued", "running", "waiting", "completing")))
        ).all()
    return len(rows)


# -- helpers ----------------------------------------------------------------------------


def _move(conn: Connection, where: Any, *, state: str, **values: Any) -> int:
    """Set ``state`` (and ``values``) where ``where`` holds; log each change; how many."""
    ids = (
        conn.execute(update(mb).where(where).values(state=state, **values).returning(mb.c.id))
        .scalars()
        .all()
    )
    record_state(conn, list(ids), state)
    return len(ids)


def _job_id(conn: Connection, name: str) -> int:
    found = conn.execute(
        select(job_t.c.id).where(job_t.c.name == name, job_t.c.settings.is_not(None))
    ).scalar()
    if found is None:
        raise NotFound(f"no job named {name!r} (see: mailmover jobs)")
    return int(found)


def _mailbox_match(user: str) -> Any:
    """A mailbox named by its source or destination user, or either URL."""
    return or_(
        mb.c.source == user,
        mb.c.dest == user,
        mb.c.source_endpoint["user"].as_string() == user,
        mb.c.dest_endpoint["user"].as_string() == user,
    )


def _scope(conn: Connection, job: str, mailbox: str | None) -> Any:
    where = mb.c.job_id == _job_id(conn, job)
    if mailbox is None:
        return where
    where = and_(where, _mailbox_match(mailbox))
    if conn.execute(select(mb.c.id).where(where)).first() is None:
        raise NotFound(f"no mailbox {mailbox!r} in job {job!r}")
    return where
