"""Ask each user, in the service: emailed one-time links, checked logins, queued mailboxes.

Real Dovecot for the logins and an aiosmtpd server (STARTTLS required) for the emails.
"""

from __future__ import annotations

import email
import email.policy
import re
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from mailmover.devserver import DevServer
from mailmover.service import invites, jobs, retention
from mailmover.service.batchfile import BatchOptions, parse_batch
from mailmover.service.credentials import password_spec
from mailmover.service.emails import EmailFailed, Emails, SmtpSettings
from mailmover.service.jobs import JobSpec, create_job_from_batch, status
from mailmover.service.logins import try_login
from mailmover.service.secrets import SecretBox
from mailmover.store import Store, schema
from support.smtp_server import SmtpServer

LINK = re.compile(r"http://mm\.test/invite/(\S+)")


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """A fresh job database, SQLite then PostgreSQL."""
    with Store.open(database_url) as s:
        yield s


def links(smtp: SmtpServer) -> dict[str, str]:
    """The last link emailed to each address."""
    out = {}
    for received in smtp.received:
        msg = email.message_from_bytes(received.content, policy=email.policy.default)
        body = msg.get_body().get_content()  # type: ignore[union-attr]
        found = LINK.search(body)
        assert found, body
        out[received.recipients[0]] = found.group(1)
    return out


async def test_each_user_gets_a_link_that_works_once_and_queues_the_mailbox(
    dovecot: DevServer, store: Store, tmp_path: Path
) -> None:
    tag = secrets.token_hex(3)
    users = {f"ann-{tag}@example.com": "Ann-pw-" + tag, f"bo-{tag}": "Bo-pw-" + tag}
    for user, password in users.items():
        dovecot.add_user(user, password)
    server = f"imap://{dovecot.host}:{dovecot.port}?tls=none"
    ann, bo = users
    text = (
        "source,dest,dest_password,email\n"
        f"{ann},{ann},{users[ann]},\n"  # the source user's name is an address
        f"{bo},{bo},,bo@home.example\n"  # both sides asked
    )
    rows = parse_batch(text, BatchOptions(server, server, ask_users=True))
    box = SecretBox([Fernet.generate_key()])
    create_job_from_batch(store, box, rows, JobSpec("asked", owner="it@example.com"))
    assert [s.words for s in status(store, "asked")] == ["waiting for the user"] * 2

    with SmtpServer(tmp_path) as smtp:
        mail = SmtpSettings("127.0.0.1", smtp.port, "mm@example.com", ca_file=str(smtp.ca_file))
        # The owner is not told the job finished while its mailboxes wait for their users.
        notices = Emails(store, mail)
        notices.cursor.position = 0  # from the first event: the job was made before
        notices.poll()
        notices.flush()
        assert smtp.received == []
        settings = invites.InviteSettings("http://mm.test", mail)
        sent = await invites.send_invitations(store, "asked", settings)
        assert [(i.email, i.sides) for i in sent] == [
            (ann, ("source",)),
            ("bo@home.example", ("source", "dest")),
        ]
        assert await invites.send_invitations(store, "asked", settings) == []  # not twice
        first = links(smtp)
        assert set(first) == {ann, "bo@home.example"}
        assert all(r.tls for r in smtp.received)

        # A wrong password is said before anything is stored.
        opened = invites.open_invitation(store, first[ann])
        endpoint = rows[0].source
        wrong = await try_login(endpoint, password_spec("not-" + users[ann]))
        assert not wrong.ok and "authentication" in (wrong.reason or "").lower()
        right = await try_login(endpoint, password_spec(users[ann]))
        assert right.ok, right.reason
        invites.accept(store, box, first[ann], {"source": password_spec(users[ann])})
        assert opened.mailbox_id == status(store, "asked")[0].id
        assert [s.state for s in status(store, "asked")] == ["queued", "awaiting_user"]
        with pytest.raises(invites.InviteRefused, match="already used"):
            invites.open_invitation(store, first[ann])
        with pytest.raises(invites.InviteRefused, match="already used"):
            invites.accept(store, box, first[ann], {"source": password_spec("again")})

        # Sent again: the old link stops working, the new one expires.
        await invites.resend(store, sent[1].mailbox_id, settings)
        second = links(smtp)["bo@home.example"]
        assert second != first["bo@home.example"]
        with pytest.raises(invites.InviteRefused, match="not valid"):
            invites.open_invitation(store, first["bo@home.example"])
        later = datetime.now(UTC) + timedelta(days=8)
        with pytest.raises(invites.InviteRefused, match="expired"):
            invites.open_invitation(store, second, now=later)
        with pytest.raises(invites.InviteRefused, match="not waiting for its user"):
            await invites.resend(store, sent[0].mailbox_id, settings)

    given = {"source": password_spec(users[bo]), "dest": password_spec(users[bo])}
    invites.accept(store, box, second, given)
    assert [s.state for s in status(store, "asked")] == ["queued", "queued"]
    assert [i.sends for i in invites.invitations(store, "asked")] == [1, 2]
    # Nothing readable in the database: the tokens are hashed, the passwords encrypted.
    raw = b"".join(_dump(store))
    for secret in [*users.values(), *first.values(), second]:
        assert secret.encode() not in raw


def _dump(store: Store) -> Iterator[bytes]:
    """Every value of every row of the job database, as bytes."""
    with store.engine.connect() as conn:
        for table in schema.metadata.sorted_tables:
            for row in conn.execute(select(table)).all():
                for value in row:
                    yield value if isinstance(value, bytes) else str(value).encode()


async def test_an_unreachable_mail_server_is_said_in_words(store: Store, tmp_path: Path) -> None:
    rows = parse_batch(
        "source,dest,dest_password\nal@x.example,al,pw\n",
        BatchOptions("imap://127.0.0.1:9?tls=none", "imap://127.0.0.1:9?tls=none", ask_users=True),
    )
    box = SecretBox([Fernet.generate_key()])
    create_job_from_batch(store, box, rows, JobSpec("nomail"))
    settings = invites.InviteSettings("http://mm.test", SmtpSettings("127.0.0.1", 9))
    with pytest.raises(EmailFailed, match="could not be sent"):
        await invites.send_invitations(store, "nomail", settings)
    (waiting,) = invites.invitations(store, "nomail")
    assert waiting.sent_at is None and waiting.sends == 0


async def test_a_link_whose_email_failed_is_sent_by_the_next_round(
    store: Store, tmp_path: Path
) -> None:
    rows = parse_batch(
        "source,dest,dest_password\ncy@x.example,cy,pw\ndi@x.example,di,pw\n",
        BatchOptions("imap://127.0.0.1:9?tls=none", "imap://127.0.0.1:9?tls=none", ask_users=True),
    )
    box = SecretBox([Fernet.generate_key()])
    create_job_from_batch(store, box, rows, JobSpec("retried"))
    down = invites.InviteSettings("http://mm.test", SmtpSettings("127.0.0.1", 9))
    with pytest.raises(EmailFailed):
        await invites.send_invitations(store, "retried", down)
    with SmtpServer(tmp_path) as smtp:
        mail = SmtpSettings("127.0.0.1", smtp.port, "mm@example.com", ca_file=str(smtp.ca_file))
        settings = invites.InviteSettings("http://mm.test", mail)
        sent = await invites.send_invitations(store, "retried", settings)
        assert [i.email for i in sent] == ["cy@x.example", "di@x.example"]
        assert [i.sends for i in sent] == [1, 1]
        assert await invites.send_invitations(store, "retried", settings) == []  # not twice
        got = links(smtp)
    for address, token in got.items():
        assert invites.open_invitation(store, token).email == address


async def test_a_user_who_never_comes_costs_the_stored_credentials(
    store: Store, tmp_path: Path
) -> None:
    server = "imap://127.0.0.1:9?tls=none"
    text = "source,dest,dest_password\nev@x.example,ev,Ev-dest-pw\nfay@x.example,fay,Fay-dest-pw\n"
    box = SecretBox([Fernet.generate_key()])
    rows = parse_batch(text, BatchOptions(server, server, ask_users=True))
    create_job_from_batch(store, box, rows, JobSpec("late"))
    # A second job whose links were never sent, and a third cancelled while it waits.
    create_job_from_batch(store, box, rows[:1], JobSpec("unsent"))
    create_job_from_batch(store, box, rows[1:], JobSpec("called-off"))
    with SmtpServer(tmp_path) as smtp:
        mail = SmtpSettings("127.0.0.1", smtp.port, "mm@example.com", ca_file=str(smtp.ca_file))
        week = invites.InviteSettings("http://mm.test", mail)
        ev, fay = await invites.send_invitations(store, "late", week)
        month = invites.InviteSettings("http://mm.test", mail, ttl=timedelta(days=30))
        await invites.resend(store, fay.mailbox_id, month)  # sent again: it waits on
        ev_link = links(smtp)[ev.email]
    assert retention.sweep(store, 7).expired == []  # nothing expired yet
    assert jobs.cancel(store, "called-off") == 1
    assert _secrets(store, "called-off") == [(None, None)]

    in_eight_days = datetime.now(UTC) + timedelta(days=8)
    given_up = retention.sweep(store, 7, in_eight_days).expired
    assert given_up == [ev.mailbox_id, status(store, "unsent")[0].id]
    assert [(s.state, s.reason) for s in status(store, "late")] == [
        ("failed", retention.EXPIRED_REASON),
        ("awaiting_user", None),
    ]
    assert [s.state for s in status(store, "unsent")] == ["failed"]
    assert status(store, "unsent")[0].reason == retention.UNSENT_REASON
    # The administrator's destination password is gone with the mailbox; the other stays.
    assert _secrets(store, "late")[0] == (None, None)
    assert _secrets(store, "late")[1][1] is not None
    assert _secrets(store, "unsent") == [(None, None)]
    # Its link says it expired; it cannot be sent again, nor used.
    with pytest.raises(invites.InviteRefused, match="expired"):
        invites.open_invitation(store, ev_link, now=in_eight_days)
    with pytest.raises(invites.InviteRefused, match="no longer waits"):
        invites.open_invitation(store, ev_link)
    with pytest.raises(invites.InviteRefused, match=r"not waiting for its user.*failed"):
        await invites.resend(store, ev.mailbox_id, month)
    with pytest.raises(invites.InviteRefused):
        invites.accept(store, box, ev_link, {"source": password_spec("Ev-pw")})
    assert retention.sweep(store, 7, in_eight_days).expired == []  # once


def _secrets(store: Store, job: str) -> list[tuple[bytes | None, bytes | None]]:
    """Each mailbox's stored (source, destination) credentials, in the batch's order."""
    mb = schema.mailbox
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(mb.c.source_secret, mb.c.dest_secret)
            .join(schema.job, schema.job.c.id == mb.c.job_id)
            .where(schema.job.c.name == job)
            .order_by(mb.c.line)
        ).all()
    return [(r.source_secret, r.dest_secret) for r in rows]
