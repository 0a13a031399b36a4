"""The service's logins end to end: admin logins instead of users' passwords, and ``--check``.

Master users and SASL PLAIN authorization identities against Dovecot's master passdb,
a Google service account against Dovecot's oauth2 passdb and the local token server,
and the pre-flight pass of every row before a job is created.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailmover.devserver import DevServer
from support import runcli
from support.oauth_server import OAuthServer
from support.service import GUARD, Batch, mail


@pytest.fixture(scope="module")
def servers(dovecot_factory) -> Iterator[tuple[DevServer, DevServer]]:
    yield dovecot_factory(layout="fs"), dovecot_factory(layout="maildir++")


@pytest.mark.parametrize("method", ["master", "authzid"])
def test_a_master_user_moves_mail_without_the_users_password(
    dovecot_factory, servers: tuple[DevServer, DevServer], tmp_path: Path, method: str
) -> None:
    """Microsoft 365's CSV names source logins; the destination is reached as its master:
    ``user*mover`` with the master's password, or SASL PLAIN as ``mover`` acting as the user
    (RFC 4616 authorization identity)."""
    # Dovecot's auth process must read it: not under pytest's private (0700) directories.
    masters = Path(tempfile.mkdtemp(prefix="mailmover-masters-"))
    masters.chmod(0o755)
    admin_pw = "Adm1n-" + os.urandom(6).hex()
    (masters / "master-users").write_text(f"mover:{admin_pw}\n")
    (masters / "master-users").chmod(0o644)
    conf = (
        "auth_master_user_separator = *\n"
        "passdb {\n  driver = passwd-file\n  master = yes\n"
        f"  args = scheme=PLAIN {masters}/master-users\n  result_success = continue\n}}\n"
    )
    dst = dovecot_factory(extra_conf=conf)
    batch = Batch(servers[0], dst, tmp_path, 2, "m365")
    batch.load([mail(40), mail(41)])
    lines = ["EmailAddress,UserName,Password"]
    lines += [f"{a.user},{a.user},{a.src_pw}" for a in batch.accounts]
    batch.file.write_text("\n".join(lines) + "\n")
    src, dest = batch.accounts[0].src_url(), batch.accounts[0].dst_url()
    server = lambda url: url.replace(f"{batch.accounts[0].user}@", "")  # noqa: E731
    out = runcli.run(
        "batch", str(batch.file), "--name", "m365",
        "--source-server", server(src), "--dest-server", server(dest),
        "--dest-admin", f"{method}:mover",
        env=batch.env | {"MAILMOVER_DEST_ADMIN_SECRET": admin_pw},
    )  # fmt: skip
    assert out.code == 0, out
    run = batch.cli("run", "--until-done", timeout=GUARD)
    assert run.code == 0, run
    assert batch.problems() == []
    assert batch.states() == ["completed", "completed"]
    logins = (dst.root / "dovecot.log").read_text()
    for account in batch.accounts:
        assert f"Master user logging in as {account.user}" in logins
    outputs = (out.stdout, out.stderr, run.stdout, run.stderr)
    assert batch.leaked(*outputs, more=[admin_pw]) == []
    shutil.rmtree(masters)


def test_check_runs_the_preflight_pass_per_row_and_names_failures(
    servers: tuple[DevServer, DevServer], tmp_path: Path
) -> None:
    batch = Batch(*servers, tmp_path, 2, "checked")
    batch.load([mail(50), mail(51)])
    text = batch.write_csv().read_text()
    wrong = batch.accounts[1].dst_pw
    batch.file.write_text(text.replace(wrong, "not-the-password"))
    out = batch.cli("batch", str(batch.file), "--check")
    assert out.code == 2, out
    assert len(out.stderr_lines) == 2
    assert out.stderr_lines[1].startswith("  line 3: pre-flight failed: ")
    assert "authentication" in out.stderr_lines[1].lower() or "login" in out.stderr_lines[1].lower()
    assert json.loads(batch.cli("jobs", "--json").stdout) == []
    batch.file.write_text(text)
    out = batch.cli("batch", str(batch.file), "--check")
    assert out.code == 0, out
    assert out.stderr_lines == [
        "line 2: 2 folders, 40 messages, 0.4 MB",
        "line 3: 2 folders, 40 messages, 0.4 MB",
    ]
    assert batch.states() == ["queued", "queued"]
    assert batch.accounts[0].dst_snapshot().message_count() == 0
    assert batch.leaked(out.stdout, out.stderr, more=["not-the-password"]) == []


def test_a_google_service_account_reads_every_source_mailbox(
    dovecot_factory, servers: tuple[DevServer, DevServer], tmp_path: Path
) -> None:
    """The source takes OAuth2 tokens checked at the local token server (introspection);
    the service account's signed JWT is exchanged for a token per user."""
    with OAuthServer() as oauth:
        conf_dir = Path(tempfile.mkdtemp(prefix="mailmover-oauth2-"))
        conf_dir.chmod(0o755)
        settings = conf_dir / "dovecot-oauth2.conf.ext"
        settings.write_text(
            f"introspection_url = {oauth.introspect_url}\nintrospection_mode = post\n"
            "username_attribute = username\nactive_attribute = active\nactive_value = true\n"
        )
        settings.chmod(0o644)
        src = dovecot_factory(
            extra_conf="auth_mechanisms = plain login xoauth2 oauthbearer\n"
            "passdb {\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n"
            f"  args = {settings}\n}}\n"
        )
        batch = Batch(src, servers[1], tmp_path, 2, "google")
        batch.load([mail(120), mail(121)])
        key = tmp_path / "key.json"
        key.write_text(json.dumps(oauth.add_service_account("mover@p.iam.gserviceaccount.com")))
        lines = ["source,source_password,dest,dest_password"]
        lines += [f"{a.src_url()},,{a.dst_url()},{a.dst_pw}" for a in batch.accounts]
        batch.file.write_text("\n".join(lines) + "\n")
        out = batch.cli("batch", str(batch.file), "--source-admin", f"google:{key}")
        assert out.code == 0, out
        run = batch.cli("run", "--until-done", timeout=GUARD)
        assert run.code == 0, run
        assert batch.problems() == []
        users = sorted(g.subject or "" for g in oauth.admin_grants if g.granted)
        assert users == sorted(a.user for a in batch.accounts)
        assert {i.username for i in oauth.introspections if i.active} == set(users)
        shutil.rmtree(conf_dir)
    private_key = json.loads(key.read_text())["private_key"].splitlines()[1]
    assert batch.leaked(run.stdout, run.stderr, more=[private_key]) == []
