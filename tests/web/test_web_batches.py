"""Batches in Chromium: bad lines named with their numbers and nothing started; and
"ask each user" end to end — the email caught by aiosmtpd, the link followed, a wrong
password said, the mailbox copied exactly, a used, replaced or expired link refused.
"""

from __future__ import annotations

import email
import email.policy
import re
import secrets
import shutil
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from mailmover.devserver import DevServer
from mailmover.service.jobs import list_jobs, status
from mailmover.store import Store
from support import corpus, runcli
from support.oauth_dovecot import oauth_dovecot
from support.oauth_server import OAuthServer
from support.service import wait_for
from support.smtp_server import SmtpServer
from support.web import WebServer, screenshot, sign_in


@pytest.fixture
def servers(mail_servers: tuple[DevServer, DevServer]) -> tuple[DevServer, DevServer]:
    return mail_servers


@pytest.fixture
def mailing_web(served: WebServer) -> WebServer:
    return served


def job_names(store: Store) -> set[str]:
    return {j.name for j in list_jobs(store)}


def upload(page: Any, web: WebServer, path: Path, *, ask: bool = False, **fields: str) -> None:
    page.goto(web.base + "/batches/new")
    page.set_input_files("input[name=file]", str(path))
    for name, value in fields.items():
        page.fill(f"input[name={name}]", value)
    if ask:
        page.check("input[name=ask_users]")
    page.click("text=Check the file")


def test_bad_lines_are_named_and_nothing_starts(
    mailing_web: WebServer, page: Any, servers: tuple[DevServer, DevServer], tmp_path: Path
) -> None:
    web = mailing_web
    with web.store() as store:
        before = job_names(store)
    person, password = web.add_account(name="lister")
    sign_in(page, web, person.email, password)
    src = servers[0]
    server = f"imap://{src.host}:{src.port}?tls=none"
    path = tmp_path / "team.csv"
    path.write_text(
        "source,source_password,dest,dest_password\n"
        "ann,pw-a,ann,pw-a2\n"
        "bob,,bob,pw-b2\n"  # empty password
        "carol,pw-c,ftp://carol@x,pw-c2\n"  # bad URL
        "ann,pw-a,ann,pw-a2\n"  # duplicate
    )
    upload(page, web, path, source_server=server, dest_server=server)
    problems = page.locator("[data-testid=problems] li").all_inner_texts()
    assert problems == [
        "line 3: empty password in source_password",
        "line 4: bad URL in dest: endpoint 'ftp://carol@x' must start with imaps:// or "
        "imap://; e.g. imaps://alice%40example.com@imap.example.com:993",
        f"line 5: duplicate pair imap://ann@{src.host}:{src.port}?tls=none -> "
        f"imap://ann@{src.host}:{src.port}?tls=none (first on line 2)",
    ]
    assert "nothing was started" in page.locator("h2.bad-text").inner_text()
    assert "pw-a" not in page.content() and "pw-c" not in page.content()
    screenshot(page, "batch-bad-lines")
    with web.store() as store:
        assert job_names(store) == before

    path.write_text("source,source_password,dest,dest_password\nann,pw-a,ann,pw-a2\n")
    upload(page, web, path, source_server=server, dest_server=server)
    assert page.url.endswith("/preview")
    assert "1 mailbox ready" in page.locator("h1").inner_text()
    assert "pw-a" not in page.content()
    with web.store() as store:
        assert job_names(store) == before  # a preview starts nothing either


def first_link(smtp: SmtpServer, to: str, web: WebServer) -> str:
    found = []
    for received in smtp.received:
        if received.recipients == [to]:
            msg = email.message_from_bytes(received.content, policy=email.policy.default)
            body = msg.get_body().get_content()  # type: ignore[union-attr]
            found += re.findall(re.escape(web.base) + r"/invite/\S+", body)
    assert found, f"no link was emailed to {to}"
    return str(found[-1])


def test_each_user_is_asked_by_email_and_their_mailbox_is_copied(
    mailing_web: WebServer,
    page: Any,
    chromium: Any,
    servers: tuple[DevServer, DevServer],
    smtp: SmtpServer,
    tmp_path: Path,
) -> None:
    web = mailing_web
    ann = runcli.Accounts(*servers, tmp_path, "ann")
    bob = runcli.Accounts(*servers, tmp_path, "bob")
    ann.load(runcli.folders(INBOX=corpus.bulk(12, seed=21, size_dist="small", total_bytes=60_000)))
    src, dst = servers
    path = tmp_path / "asked.csv"
    path.write_text(
        "source,dest,dest_password,email\n"
        f"{ann.user},{ann.user},{ann.dst_pw},{ann.user}@example.com\n"
        f"{bob.user},{bob.user},{bob.dst_pw},{bob.user}@example.com\n"
    )
    admin, password = web.add_account(name="it")
    sign_in(page, web, admin.email, password)
    upload(
        page, web, path, ask=True,
        source_server=f"imap://{src.host}:{src.port}?tls=none",
        dest_server=f"imap://{dst.host}:{dst.port}?tls=none",
    )  # fmt: skip
    assert "2 users will get an email" in page.content()
    page.click("button[type=submit].primary")
    assert page.url.endswith("/invitations?sent=1")
    rows = page.locator("table.invitations tbody tr").all_inner_texts()
    assert len(rows) == 2 and all("waiting for the user" in r for r in rows)
    job = page.url.split("/batches/")[1].split("/")[0]
    with web.store() as store:
        assert [s.words for s in status(store, job)] == ["waiting for the user"] * 2
    screenshot(page, "batch-invitations")

    # Bob's link is sent again: the first one stops working.
    bob_first = first_link(smtp, f"{bob.user}@example.com", web)
    page.locator("table.invitations tbody tr", has_text=bob.user).locator("button").click()
    assert "the old one no longer works" in page.locator(".alert.good").inner_text()
    bob_second = first_link(smtp, f"{bob.user}@example.com", web)
    assert bob_second != bob_first

    # Ann follows her link in a browser of her own (no account).
    visitor = chromium.new_context(viewport={"width": 390, "height": 844})
    try:
        user_page = visitor.new_page()
        link = first_link(smtp, f"{ann.user}@example.com", web)
        user_page.goto(link)
        assert ann.user in user_page.locator("legend").inner_text()
        screenshot(user_page, "invite-landing-phone")
        wrong = "not-" + ann.src_pw
        user_page.fill("input[name=source_password]", wrong)
        user_page.click("text=Move my mail")
        assert "Could not sign in" in user_page.locator("[data-testid=source-error]").inner_text()
        assert wrong not in user_page.content()
        assert user_page.input_value("input[name=source_password]") == ""
        user_page.fill("input[name=source_password]", ann.src_pw)
        user_page.click("text=Move my mail")
        assert "Thank you" in user_page.locator("h1").inner_text()
        assert ann.src_pw not in user_page.content()
        screenshot(user_page, "invite-done-phone")

        with web.store() as store:
            wait_for(lambda: status(store, job)[0].state == "completed", "ann's mailbox copied")
            assert status(store, job)[1].state == "awaiting_user"
        # The administrator's invitations page updates itself (htmx), without a reload.
        ann_row = page.locator("table.invitations tbody tr", has_text=ann.user)
        ann_row.locator(".pill.good", has_text="signed in").wait_for()
        screenshot(page, "batch-invitations-answered")
        expected, got = ann.src_snapshot(), ann.dst_snapshot()
        assert runcli.exact_copy_problems(expected, got) == []
        assert runcli.extra_messages(expected, got) == []

        # Used, replaced and expired links each say why.
        answer = user_page.goto(link)
        assert answer is not None and answer.status == 410
        assert "already used" in user_page.locator("[data-testid=refused]").inner_text()
        user_page.goto(bob_first)
        assert "not valid" in user_page.locator("[data-testid=refused]").inner_text()
        # Ten wrong passwords in a minute close the link for a while: the next is not tried.
        # They count for the administrator who made the job too (no more guesses through
        # invitations than in the wizard), so Ann's one wrong password above is the first.
        with httpx.Client() as visitor_http:
            page_html = visitor_http.get(bob_second).text
            token = page_html.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
            codes = [
                visitor_http.post(
                    bob_second, data={"csrf_token": token, "source_password": f"guess-{n}"}
                ).status_code
                for n in range(11)
            ]
            right = {"csrf_token": token, "source_password": bob.src_pw}
            last = visitor_http.post(bob_second, data=right)
        assert codes == [400] * 9 + [429] * 2
        assert last.status_code == 429 and "Too many wrong passwords" in last.text
        with web.store() as store:
            assert status(store, job)[1].state == "awaiting_user"
        db = sqlite3.connect(web.data_dir / "state.db")
        try:
            db.execute("UPDATE invitation SET expires_at = '2020-01-01 00:00:00.000000'")
            db.commit()
        finally:
            db.close()
        user_page.goto(bob_second)
        refused = user_page.locator("[data-testid=refused]").inner_text()
        assert "expired on 2020-01-01" in refused and admin.email in refused
        screenshot(user_page, "invite-expired-phone")
    finally:
        visitor.close()
    blobs = [web.output(), *(r.content.decode("latin-1") for r in smtp.received)]
    blobs += [p.read_bytes().decode("latin-1") for p in web.data_dir.rglob("*") if p.is_file()]
    for secret in (ann.src_pw, ann.dst_pw, bob.dst_pw, wrong):
        assert not any(secret in b for b in blobs)


def test_an_admin_login_replaces_passwords_and_the_preflight_names_bad_rows(
    mailing_web: WebServer,
    page: Any,
    dovecot_factory: Any,
    servers: tuple[DevServer, DevServer],
    tmp_path: Path,
) -> None:
    """A Microsoft 365 list whose destination is reached as Dovecot's master user."""
    web = mailing_web
    # Dovecot's auth process must read it: not under pytest's private (0700) directories.
    masters = Path(tempfile.mkdtemp(prefix="mailmover-masters-"))
    masters.chmod(0o755)
    admin_pw = "Adm1n-" + secrets.token_hex(6)
    (masters / "master-users").write_text(f"mover:{admin_pw}\n")
    (masters / "master-users").chmod(0o644)
    conf = (
        "auth_master_user_separator = *\n"
        "passdb {\n  driver = passwd-file\n  master = yes\n"
        f"  args = scheme=PLAIN {masters}/master-users\n  result_success = continue\n}}\n"
    )
    dst = dovecot_factory(extra_conf=conf)
    cy = runcli.Accounts(servers[0], dst, tmp_path, "cy")
    dee = runcli.Accounts(servers[0], dst, tmp_path, "dee")
    cy.load(runcli.folders(INBOX=corpus.bulk(10, seed=31, size_dist="small", total_bytes=50_000)))
    path = tmp_path / "m365.csv"
    header = "EmailAddress,UserName,Password\n"
    path.write_text(header + f"{cy.user},{cy.user},{cy.src_pw}\n{dee.user},{dee.user},wrong-pw\n")
    person, password = web.add_account(name="admin-login")
    sign_in(page, web, person.email, password)
    with web.store() as store:
        before = job_names(store)
    src = servers[0]

    def send() -> None:
        page.goto(web.base + "/batches/new")
        page.set_input_files("input[name=file]", str(path))
        page.fill("input[name=source_server]", f"imap://{src.host}:{src.port}?tls=none")
        page.fill("input[name=dest_server]", f"imap://{dst.host}:{dst.port}?tls=none")
        page.locator("summary", has_text="Admin logins").click()
        page.locator("select[name=dest_admin_kind]").select_option("master")
        page.fill("input[name=dest_admin_user]", "mover")
        page.fill("input[name=dest_admin_password]", admin_pw)
        page.check("input[name=preflight]")
        page.click("text=Check the file")

    send()
    problems = page.locator("[data-testid=problems] li").all_inner_texts()
    assert len(problems) == 1 and problems[0].startswith("line 3: pre-flight failed: ")
    assert "uthentication" in problems[0]
    assert page.input_value("input[name=dest_admin_password]") == ""
    screenshot(page, "batch-preflight-failed")
    with web.store() as store:
        assert job_names(store) == before

    path.write_text(header + f"{cy.user},{cy.user},{cy.src_pw}\n")
    send()
    assert page.url.endswith("/preview")
    assert "admin login (mover)" in page.locator("table.preview").inner_text()
    page.click("button[type=submit].primary")
    job = page.url.rsplit("/", 1)[1]
    with web.store() as store:
        wait_for(lambda: status(store, job)[0].state == "completed", "cy's mailbox copied")
    expected, got = cy.src_snapshot(), cy.dst_snapshot()
    assert runcli.exact_copy_problems(expected, got) == []
    assert f"Master user logging in as {cy.user}" in (dst.root / "dovecot.log").read_text()
    blobs = [page.content(), web.output()]
    blobs += [p.read_bytes().decode("latin-1") for p in web.data_dir.rglob("*") if p.is_file()]
    for secret in (admin_pw, cy.src_pw):
        assert not any(secret in b for b in blobs)
    shutil.rmtree(masters)


def test_an_asked_user_signs_in_with_microsoft_instead_of_a_password(
    mailing_web: WebServer,
    page: Any,
    chromium: Any,
    oauth: OAuthServer,
    dovecot_factory: Any,
    servers: tuple[DevServer, DevServer],
    smtp: SmtpServer,
    tmp_path: Path,
) -> None:
    web = mailing_web
    with oauth_dovecot(dovecot_factory, oauth) as source:
        eve = runcli.Accounts(source, servers[1], tmp_path, "eve", f"eve-{secrets.token_hex(3)}")
        eve.load(
            runcli.folders(INBOX=corpus.bulk(6, seed=41, size_dist="small", total_bytes=30_000))
        )
        oauth.authorize_as = eve.user
        path = tmp_path / "ms.csv"
        path.write_text(
            "source,dest,dest_password,email,source_preset\n"
            f"{eve.user},{eve.user},{eve.dst_pw},{eve.user}@example.com,microsoft365\n"
        )
        admin, password = web.add_account(name="ms-admin")
        sign_in(page, web, admin.email, password)
        upload(
            page, web, path, ask=True,
            source_server=f"imap://{source.host}:{source.port}?tls=none",
            dest_server=f"imap://{servers[1].host}:{servers[1].port}?tls=none",
        )  # fmt: skip
        page.click("button[type=submit].primary")
        job = page.url.split("/batches/")[1].split("/")[0]
        visitor = chromium.new_context()
        try:
            user_page = visitor.new_page()
            user_page.goto(first_link(smtp, f"{eve.user}@example.com", web))
            user_page.click("text=Sign in with Microsoft")
            assert "Signed in with Microsoft" in user_page.locator(".alert.good").inner_text()
            assert user_page.locator("input[name=source_password]").count() == 0
            user_page.click("text=Move my mail")
            assert "Thank you" in user_page.locator("h1").inner_text()
        finally:
            visitor.close()
        with web.store() as store:
            wait_for(lambda: status(store, job)[0].state == "completed", "eve's mailbox copied")
        expected, got = eve.src_snapshot(), eve.dst_snapshot()
        assert runcli.exact_copy_problems(expected, got) == []
        assert runcli.extra_messages(expected, got) == []
