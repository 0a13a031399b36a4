"""``batch --ask-users`` and ``invite``: the command-line way to ask each user, with the
links caught by aiosmtpd (STARTTLS) and no password anywhere."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import update

from mailmover.devserver import DevServer
from mailmover.store import Store, schema
from support import runcli
from support.smtp_server import SmtpServer


def test_batch_asks_users_and_invite_emails_their_links(dovecot: DevServer, tmp_path: Path) -> None:
    server = f"imap://{dovecot.host}:{dovecot.port}?tls=none"
    path = tmp_path / "asked.csv"
    path.write_text(
        "source,dest,dest_password,email\n"
        "ann@old.example,ann,pw-ann-dest,\n"
        "bob,bob,,bob@home.example\n"
    )
    env = {"MAILMOVER_DATA_DIR": str(tmp_path / "data")}
    refused = runcli.run("batch", str(path), "--source-server", server, "--dest-server", server,
                         env=env)  # fmt: skip
    assert refused.code == 2 and "line 1: missing column source_password" in refused.stderr
    made = runcli.run(
        "batch", str(path), "--name", "asked", "--ask-users",
        "--source-server", server, "--dest-server", server, env=env,
    )  # fmt: skip
    assert made.code == 0 and made.stdout.strip() == "asked", made
    status = runcli.run("status", "asked", "--json", env=env)
    assert [m["words"] for m in json.loads(status.stdout)] == ["waiting for the user"] * 2
    with SmtpServer(tmp_path) as smtp:
        env |= {
            "MAILMOVER_SMTP_HOST": "127.0.0.1",
            "MAILMOVER_SMTP_PORT": str(smtp.port),
            "MAILMOVER_SMTP_CA_FILE": str(smtp.ca_file),
        }
        sent = runcli.run("invite", "asked", "--public-url", "https://mm.example", env=env)
        assert sent.code == 0, sent
        assert sent.stdout.count("link sent") == 2
        again = runcli.run("invite", "asked", "--public-url", "https://mm.example", env=env)
        assert "nobody left to invite" in again.stdout
        resent = runcli.run(
            "invite", "asked", "--public-url", "https://mm.example", "--resend", "bob", env=env
        )
        assert resent.code == 0 and resent.stdout.startswith("bob@home.example: link sent")
        bodies = [r.content.decode() for r in smtp.received]
    assert [r for b in bodies for r in re.findall(r"https://mm\.example/invite/\S+", b)]
    assert len(bodies) == 3 and all("pw-ann-dest" not in b for b in bodies)


def test_run_gives_up_on_a_user_whose_link_expired(dovecot: DevServer, tmp_path: Path) -> None:
    server = f"imap://{dovecot.host}:{dovecot.port}?tls=none"
    path = tmp_path / "late.csv"
    path.write_text("source,dest,dest_password\ncid@old.example,cid,pw-cid-dest\n")
    env = {"MAILMOVER_DATA_DIR": str(tmp_path / "data")}
    made = runcli.run(
        "batch", str(path), "--name", "late", "--ask-users",
        "--source-server", server, "--dest-server", server, env=env,
    )  # fmt: skip
    assert made.code == 0, made
    with SmtpServer(tmp_path) as smtp:
        env |= {"MAILMOVER_SMTP_HOST": "127.0.0.1", "MAILMOVER_SMTP_PORT": str(smtp.port),
                "MAILMOVER_SMTP_CA_FILE": str(smtp.ca_file)}  # fmt: skip
        sent = runcli.run("invite", "late", "--public-url", "https://mm.example", env=env)
        assert sent.code == 0, sent
    with Store.open(f"sqlite:///{tmp_path / 'data' / 'state.db'}") as store:
        week_over = update(schema.invitation).values(expires_at=datetime.now(UTC))
        with store.write_engine.begin() as conn:
            conn.execute(week_over)
    ran = runcli.run("run", "--until-done", env=env)
    assert ran.code == 0, ran
    assert "its user never signed in; failed, credentials erased" in ran.stdout
    status = json.loads(runcli.run("status", "late", "--json", env=env).stdout)
    assert [(m["state"], m["has_credentials"]) for m in status] == [("failed", False)]
