"""Ask each user: a one-time link by email where a mailbox's user gives their own password.

A batch created with ``ask_users`` leaves a side without a password; its mailbox waits
in ``awaiting_user`` ("waiting for the user"). ``send_invitations`` emails each such
mailbox's user a link holding a random token; only the token's SHA-256 is stored. The
link works once, until it expires; sending it again makes a new token and the old link
stops working. ``accept`` stores what the user gave, encrypted, and queues the mailbox.
A mailbox whose link expired unused fails, its credentials erased (``service.retention``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any, Final

from sqlalchemy import Connection, select, update

from mailmover.engine.ports import SideName
from mailmover.engine.settings import endpoint_from_dict
from mailmover.errors import UsageError
from mailmover.service.emails import SmtpSettings, deliver, message
from mailmover.service.jobs import NotFound
from mailmover.service.leases import record_state
from mailmover.service.logins import try_login
from mailmover.service.secrets import SecretBox, token_digest
from mailmover.service.states import AWAITING_USER, words
from mailmover.store import schema
from mailmover.store.database import Store

inv = schema.invitation
mb = schema.mailbox
job_t = schema.job

#: how long a link works unless the sender says otherwise
DEFAULT_TTL: Final = timedelta(days=7)
#: where the landing page is, under the web app's address
PATH: Final = "/invite/"


class InviteRefused(UsageError):
    """The link cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class InviteSettings:
    """Where links point and how emails go."""

    base_url: str  # the web app as the user reaches it: https://migrate.example.com
    smtp: SmtpSettings
    ttl: timedelta = DEFAULT_TTL

    def link(self, token: str) -> str:
        return f"{self.base_url.rstrip('/')}{PATH}{token}"


@dataclass(frozen=True)
class Invitation:
    """One mailbox's invitation, as the pages show it (never its token)."""

    id: int
    mailbox_id: int
    job: str
    owner: str | None
    owner_id: int | None  # the account that made the job (None: made by the command line)
    email: str
    sides: tuple[SideName, ...]
    users: dict[SideName, str]  # the login names of both sides
    hosts: dict[SideName, str]
    #: the provider preset each side was given in the batch file or job, if any
    presets: dict[SideName, str | None]
    source: str
    dest: str
    expires_at: datetime
    sent_at: datetime | None
    sends: int
    used_at: datetime | None
    state: str


def hash_token(token: str) -> str:
    """The link token's digest as the invitation stores it (hex)."""
    return token_digest(token).hex()


async def send_invitations(store: Store, job: str, settings: InviteSettings) -> list[Invitation]:
    """Email a link to every mailbox of ``job`` waiting for its user whose link never went.

    An invitation whose email failed (its ``sent_at`` empty) gets a new token and is sent.
    """
    now = datetime.now(UTC)
    with store.write_engine.begin() as conn:
        waiting = conn.execute(
            select(mb.c.id, mb.c.source_secret, mb.c.dest_secret, mb.c.settings, mb.c.dest_endpoint,
                   mb.c.source_endpoint, inv.c.id.label("invitation_id"))
            .join(job_t, job_t.c.id == mb.c.job_id)
            .outerjoin(inv, inv.c.mailbox_id == mb.c.id)
            .where(job_t.c.name == job, mb.c.state == AWAITING_USER, inv.c.sent_at.is_(None))
            .order_by(mb.c.line, mb.c.id)
        ).all()  # fmt: skip
        links: dict[int, str] = {}
        for row in waiting:
            token = secrets.token_urlsafe(32)
            links[row.id] = token
            fresh = {"token_hash": hash_token(token), "expires_at": now + settings.ttl}
            if row.invitation_id is not None:
                conn.execute(update(inv).where(inv.c.id == row.invitation_id).values(fresh))
                continue
            sides = [s for s in ("source", "dest") if getattr(row, f"{s}_secret") is None]
            conn.execute(
                inv.insert().values(
                    mailbox_id=row.id,
                    email=_address(row),
                    sides=" ".join(sides),
                    created_at=now,
                    **fresh,
                )
            )
    return [await _send(store, settings, mailbox_id, token) for mailbox_id, token in links.items()]


async def resend(store: Store, mailbox_id: int, settings: InviteSettings) -> Invitation:
    """A new link for the mailbox's user (the old one stops working), emailed now."""
    token = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    with store.write_engine.begin() as conn:
        # Locked: the link is renewed or its mailbox given up (``service.retention``), not both.
        found = conn.execute(
            select(mb.c.state, mb.c.reason, mb.c.waiting_until)
            .where(mb.c.id == mailbox_id)
            .with_for_update(key_share=True)
        ).one_or_none()
        if found is not None and found.state != AWAITING_USER:
            raise InviteRefused(
                f"this mailbox is not waiting for its user; nothing to send (it is {words(*found)})"
            )
        changed = conn.execute(
            update(inv)
            .where(inv.c.mailbox_id == mailbox_id)
            .values(token_hash=hash_token(token), expires_at=now + settings.ttl, used_at=None)
        ).rowcount
    if not changed:
        raise NotFound(f"no invitation for mailbox {mailbox_id}")
    return await _send(store, settings, mailbox_id, token)


def open_invitation(store: Store, token: str, now: datetime | None = None) -> Invitation:
    """The invitation behind a link; ``InviteRefused`` saying why it cannot be used."""
    with store.engine.connect() as conn:
        found = _by_token(conn, token)
    _check(found, now or datetime.now(UTC))
    assert found is not None
    return found


def accept(
    store: Store, box: SecretBox, token: str, given: dict[SideName, dict[str, Any]]
) -> Invitation:
    """Store the user's credentials (``service.credentials`` specs) and queue the mailbox.

    ``given`` holds one spec for each side the invitation asks for. A spec of kind
    ``oauth`` switches that side's login to XOAUTH2.
    """
    now = datetime.now(UTC)
    with store.write_engine.begin() as conn:
        found = _by_token(conn, token)
        _check(found, now)
        assert found is not None
        if set(given) != set(found.sides):
            raise UsageError(f"give credentials for: {', '.join(found.sides)}")
        used = conn.execute(
            update(inv).where(inv.c.id == found.id, inv.c.used_at.is_(None)).values(used_at=now)
        ).rowcount
        if not used:  # another request took it first
            raise InviteRefused("this link was used already; it works only once")
        values: dict[str, Any] = {"state": "queued", "reason": None, "updated_at": now}
        row = conn.execute(select(mb).where(mb.c.id == found.mailbox_id)).one()
        for side, spec in given.items():
            values[f"{side}_secret"] = box.encrypt(spec)
            if spec.get("kind") == "oauth":
                values[f"{side}_endpoint"] = dict(getattr(row, f"{side}_endpoint")) | {
                    "auth": "xoauth2"
                }
        queued = conn.execute(
            update(mb)
            .where(mb.c.id == found.mailbox_id, mb.c.state == AWAITING_USER)
            .values(values)
        ).rowcount
        if not queued:  # cancelled since it was read: the link stays unused, nothing kept
            raise InviteRefused("this mailbox no longer waits for a sign-in")
        record_state(conn, [found.mailbox_id], "queued")
    return found


async def answer(
    store: Store, box: SecretBox, token: str, given: dict[SideName, dict[str, Any]]
) -> dict[SideName, str]:
    """Try each login the user gave, then ``accept``; the sides refused and why (empty: done)."""
    found = open_invitation(store, token)
    with store.engine.connect() as conn:
        row = conn.execute(select(mb).where(mb.c.id == found.mailbox_id)).one()
    refused: dict[SideName, str] = {}
    for side in found.sides:
        spec = given.get(side)
        if spec is None:
            refused[side] = "give the password, or sign in"
            continue
        endpoint = endpoint_from_dict(getattr(row, f"{side}_endpoint"))
        if spec.get("kind") == "oauth":
            endpoint = replace(endpoint, auth="xoauth2")
        check = await try_login(endpoint, spec)
        if not check.ok:
            refused[side] = check.reason or "the server refused the login"
    if not refused:
        accept(store, box, token, {side: given[side] for side in found.sides})
    return refused


def invitations(store: Store, job: str) -> list[Invitation]:
    """Every invitation of a job, in the batch file's order."""
    with store.engine.connect() as conn:
        rows = conn.execute(_query().where(job_t.c.name == job).order_by(mb.c.line, mb.c.id)).all()
    return [_invitation(r) for r in rows]


# -- pieces -----------------------------------------------------------------------------


async def _send(store: Store, settings: InviteSettings, mailbox_id: int, token: str) -> Invitation:
    with store.engine.connect() as conn:
        found = conn.execute(_query().where(mb.c.id == mailbox_id)).one()
    invitation = _invitation(found)
    await deliver(settings.smtp, _email(settings, invitation, token))
    now = datetime.now(UTC)
    with store.write_engine.begin() as conn:
        conn.execute(
            update(inv).where(inv.c.id == invitation.id).values(sent_at=now, sends=inv.c.sends + 1)
        )
        return _invitation(conn.execute(_query().where(inv.c.id == invitation.id)).one())


def _email(settings: InviteSettings, invitation: Invitation, token: str) -> EmailMessage:
    asked = " and ".join(
        f"{invitation.users[s]} at {invitation.hosts[s]}" for s in invitation.sides
    )
    who = invitation.owner or "Your administrator"
    body = (
        f"Hello,\n\n{who} is moving your mail from {invitation.hosts['source']} to "
        f"{invitation.hosts['dest']} with mailmover.\n\n"
        f"To let it copy your mail, open this link and sign in as {asked}:\n\n"
        f"  {settings.link(token)}\n\n"
        f"The link works once, until {invitation.expires_at:%Y-%m-%d %H:%M} UTC. Your password "
        "is kept encrypted and erased when your mail has been moved.\n\n"
        "If you did not expect this email, ignore it.\n"
    )
    return message(settings.smtp, invitation.email, "Your mail is being moved: your sign-in", body)


def _check(found: Invitation | None, now: datetime) -> None:
    if found is None:
        raise InviteRefused(
            "this link is not valid: it may have been replaced by a newer email, or copied "
            "incompletely. Use the link in the latest email, or ask for a new one."
        )
    if found.used_at is not None:
        raise InviteRefused(
            f"this link was already used on {found.used_at:%Y-%m-%d %H:%M} UTC; it works only "
            "once. Your mailbox is already on its way."
        )
    if found.expires_at <= now:
        raise InviteRefused(
            f"this link expired on {found.expires_at:%Y-%m-%d %H:%M} UTC. Ask "
            f"{found.owner or 'the person moving your mail'} to send a new one."
        )
    if found.state != AWAITING_USER:
        raise InviteRefused(
            f"this mailbox no longer waits for a sign-in (it is {found.state.replace('_', ' ')})"
        )


def _by_token(conn: Connection, token: str) -> Invitation | None:
    if not token or len(token) > 200:
        return None
    row = conn.execute(_query().where(inv.c.token_hash == hash_token(token))).one_or_none()
    return _invitation(row) if row is not None else None


def _query() -> Any:
    return (
        select(
            inv,
            mb.c.source,
            mb.c.dest,
            mb.c.state,
            mb.c.source_endpoint,
            mb.c.dest_endpoint,
            mb.c.settings.label("mailbox_settings"),
            job_t.c.settings.label("job_settings"),
            job_t.c.name.label("job"),
            job_t.c.owner,
            job_t.c.owner_id,
        )
        .join(mb, mb.c.id == inv.c.mailbox_id)
        .join(job_t, job_t.c.id == mb.c.job_id)
    )


def _invitation(row: Any) -> Invitation:
    sides: tuple[SideName, ...] = tuple(s for s in ("source", "dest") if s in row.sides.split())
    ends = {"source": row.source_endpoint or {}, "dest": row.dest_endpoint or {}}
    return Invitation(
        id=row.id,
        mailbox_id=row.mailbox_id,
        job=row.job,
        owner=row.owner,
        owner_id=row.owner_id,
        email=row.email,
        sides=sides,
        users={side: str(ends[side].get("user", "")) for side in ("source", "dest")},
        hosts={side: str(ends[side].get("host", "")) for side in ("source", "dest")},
        presets={side: _preset(row, side) for side in ("source", "dest")},
        source=row.source,
        dest=row.dest,
        expires_at=row.expires_at,
        sent_at=row.sent_at,
        sends=row.sends,
        used_at=row.used_at,
        state=row.state,
    )


def _preset(row: Any, side: str) -> str | None:
    for settings in (row.mailbox_settings, row.job_settings):
        name = (settings or {}).get(f"{side}_preset")
        if name:
            return str(name)
    return None


def _address(row: Any) -> str:
    """Where the mailbox's invitation goes: the batch's email column, else an address login."""
    email = (row.settings or {}).get("email")
    if email:
        return str(email)
    for ends in (row.source_endpoint, row.dest_endpoint):
        user = str((ends or {}).get("user", ""))
        if "@" in user:
            return user
    raise UsageError(f"mailbox {row.id} has no address to send its link to")
