"""New transfer, step by step, in Chromium against real Dovecots.

Where → sign in (a wrong password said on the page, never shown back) → pre-flight
(folders with counts, the rename the destination needs) → choose (a bad folder map
refused in words; two folders left out) → confirm → the transfer's page; the local
runner copies and the destination holds exactly the chosen folders of the source.
A Microsoft sign-in (the local OAuth server, Dovecot checking its tokens) replaces a
password the same way.
"""

from __future__ import annotations

import re
import secrets
import threading
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mailmover.devserver import DevServer
from mailmover.service.jobs import list_jobs, status
from support import corpus, runcli
from support.oauth_dovecot import oauth_dovecot
from support.oauth_server import OAuthServer
from support.service import wait_for
from support.web import WebServer, screenshot, sign_in, signed_in

LEFT_OUT = (("Junk",), ("Work.2019",))


@pytest.fixture
def servers(mail_servers: tuple[DevServer, DevServer]) -> tuple[DevServer, DevServer]:
    return mail_servers


@pytest.fixture
def web(served: WebServer) -> WebServer:
    return served


def fill_side(page: Any, side: str, server: DevServer, provider: str, user: str) -> None:
    page.select_option(f"select[name={side}_provider]", provider)
    page.fill(f"input[name={side}_user]", user)
    page.locator(f"fieldset:has(select[name={side}_provider]) summary").click()
    page.fill(f"input[name={side}_host]", server.host)
    page.fill(f"input[name={side}_port]", str(server.port))
    page.select_option(f"select[name={side}_security]", "plain")


def test_a_transfer_made_step_by_step_copies_exactly(
    web: WebServer, page: Any, servers: tuple[DevServer, DevServer], tmp_path: Path
) -> None:
    account = runcli.Accounts(*servers, tmp_path, "wiz")
    msgs = corpus.bulk(30, seed=11, size_dist="small", total_bytes=150_000)
    account.load(
        runcli.folders(INBOX=msgs[:10], Archive=msgs[10:20], Junk=msgs[20:25])
        + runcli.folders(**{"Work.2019": msgs[25:]})
    )
    person, password = web.add_account(name="wiz")
    sign_in(page, web, person.email, password)
    page.click("text=New transfer")
    assert page.url == web.base + "/new"
    fill_side(page, "source", account.src, "dovecot", account.user)
    fill_side(page, "dest", account.dst, "custom", account.user)
    screenshot(page, "wizard-1-where")
    page.click("button[type=submit].primary")
    assert re.search(r"/new/[\w-]+/signin$", page.url)

    wrong = "not-" + account.dst_pw
    page.fill("input[name=source_password]", account.src_pw)
    page.fill("input[name=dest_password]", wrong)
    page.click("button[type=submit].primary")
    error = page.locator("[data-testid=dest-error]").inner_text()
    assert "Could not sign in" in error and "uthentication" in error
    assert page.locator("[data-testid=source-error]").count() == 0
    html = page.content()
    assert wrong not in html and account.src_pw not in html
    assert page.input_value("input[name=dest_password]") == ""
    assert "leave empty to keep it" in page.locator("fieldset").first.inner_text()
    screenshot(page, "wizard-2-signin-refused")
    page.fill("input[name=dest_password]", account.dst_pw)
    page.click("button[type=submit].primary")
    assert page.url.endswith("/check")

    rows = page.locator("table.folders-choice tbody tr")
    rows.first.wait_for()
    counts = {
        rows.nth(i).locator("td").nth(1).inner_text(): rows.nth(i).locator("td").nth(2).inner_text()
        for i in range(rows.count())
    }
    assert counts == {"INBOX": "10", "Archive": "10", "Junk": "5", "Work.2019": "5"}
    assert "Work.2019 → Work_2019" in page.locator("ul.renamed").inner_text()
    assert "connections at once\n4" in page.locator("dl.limits").inner_text().lower()
    screenshot(page, "wizard-3-check")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "wizard-3-check-phone")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.fill("textarea[name=mapping]", "Nowhere = Somewhere")
    page.click("button[type=submit].primary")
    assert "names a folder the source lacks: 'Nowhere'" in page.locator(".alert.bad").inner_text()
    page.fill("textarea[name=mapping]", "")
    page.uncheck("input[name=folder][value=Junk]")
    page.uncheck("input[name='folder'][value='Work.2019']")
    page.click("button[type=submit].primary")
    assert page.url.endswith("/confirm")
    assert "2: INBOX, Archive" in page.locator("dl.figures").inner_text()
    screenshot(page, "wizard-4-confirm")
    page.click("text=Start the transfer")
    assert re.search(r"/transfers/wiz-[\w.-]+$", page.url), page.url
    job = page.url.rsplit("/", 1)[1]

    with web.store() as store:
        wait_for(lambda: status(store, job)[0].state == "completed", "the transfer to complete")
    page.reload()
    screenshot(page, "wizard-5-transfer-done")
    expected = account.src_snapshot()
    expected = replace(
        expected,
        folders={p: c for p, c in expected.folders.items() if p not in LEFT_OUT},
        subscribed=expected.subscribed - set(LEFT_OUT),
    )
    got = account.dst_snapshot()
    assert runcli.exact_copy_problems(expected, got) == []
    assert runcli.extra_messages(expected, got) == []
    blobs = [page.content(), web.output()]
    blobs += [p.read_bytes().decode("latin-1") for p in web.data_dir.rglob("*") if p.is_file()]
    for secret in (account.src_pw, account.dst_pw, wrong):
        assert not any(secret in b for b in blobs)


def test_confirming_twice_at_once_makes_one_transfer(
    web: WebServer, servers: tuple[DevServer, DevServer], tmp_path: Path
) -> None:
    """A double click on "Start" must not make two jobs copying the same mailbox twice."""
    account = runcli.Accounts(*servers, tmp_path, "twice")
    account.load(runcli.folders(INBOX=corpus.bulk(3, seed=5, size_dist="small", total_bytes=9_000)))
    src, dst = servers
    where: dict[str, str] = {}
    for side, server in (("source", src), ("dest", dst)):
        where |= {f"{side}_provider": "custom", f"{side}_user": account.user,
                  f"{side}_host": server.host, f"{side}_port": str(server.port),
                  f"{side}_security": "plain"}  # fmt: skip
    with web.store() as store:
        before = {j.name for j in list_jobs(store)}
    with closing(signed_in(web, "twice")) as client:
        signin = client.post("/new", data=where).headers["location"]
        passwords = {"source_password": account.src_pw, "dest_password": account.dst_pw}
        check = client.post(signin, data=passwords).headers["location"]
        folders = re.findall(r'name="folder" value="([^"]+)"', client.get(check).text)
        confirm = client.post(check, data={"folder": folders}).headers["location"]
        assert confirm.endswith("/confirm"), confirm
        start = threading.Barrier(2)
        answers: list[str] = []

        def click() -> None:
            start.wait()
            answers.append(client.post(confirm).headers["location"])

        clicks = [threading.Thread(target=click) for _ in range(2)]
        for thread in clicks:
            thread.start()
        for thread in clicks:
            thread.join()
    with web.store() as store:
        made = {j.name for j in list_jobs(store)} - before
    assert len(made) == 1, made
    assert answers == [f"/transfers/{next(iter(made))}"] * 2


def test_someone_else_cannot_open_a_draft(web: WebServer, page: Any) -> None:
    first, password = web.add_account(name="first")
    sign_in(page, web, first.email, password)
    page.goto(web.base + "/new")
    page.fill("input[name=source_user]", "al")
    page.fill("input[name=dest_user]", "al")
    page.locator("fieldset:has(select[name=source_provider]) summary").click()
    page.click("button[type=submit].primary")
    assert "For the source: give the server's name" in page.locator(".alert.bad").inner_text()
    page.select_option("select[name=source_provider]", "gmail")
    page.select_option("select[name=dest_provider]", "fastmail")
    page.click("button[type=submit].primary")
    draft_url = page.url
    assert "imap.gmail.com" in page.content() and "imap.fastmail.com" in page.content()
    second, password2 = web.add_account(name="second")
    page.click("text=Sign out")
    sign_in(page, web, second.email, password2)
    answer = page.goto(draft_url)
    assert answer is not None and answer.status == 404


def test_a_microsoft_sign_in_replaces_the_password(
    web: WebServer,
    page: Any,
    oauth: OAuthServer,
    dovecot_factory: Any,
    servers: tuple[DevServer, DevServer],
    tmp_path: Path,
) -> None:
    with oauth_dovecot(dovecot_factory, oauth) as source:
        user = f"ms-{secrets.token_hex(3)}@example.com"
        account = runcli.Accounts(source, servers[1], tmp_path, "ms", user=user)
        msgs = corpus.bulk(8, seed=5, size_dist="small", total_bytes=40_000)
        account.load(runcli.folders(INBOX=msgs))
        oauth.authorize_as = account.user
        person, password = web.add_account(name="ms")
        sign_in(page, web, person.email, password)
        page.goto(web.base + "/new")
        fill_side(page, "source", source, "microsoft365", account.user)
        fill_side(page, "dest", account.dst, "custom", account.user)
        page.click("button[type=submit].primary")
        assert page.locator("input[name=dest_password]").count() == 1
        assert page.locator("text=Sign in with Microsoft").count() == 1  # not for the custom side
        page.click("text=Sign in with Microsoft")
        assert re.search(r"/new/[\w-]+/signin$", page.url)
        assert "Signed in with Microsoft" in page.locator(".alert.good").inner_text()
        assert page.locator("input[name=source_password]").count() == 0
        (asked,) = oauth.authorize_requests[-1:]
        assert asked["login_hint"] == account.user and asked["code_challenge_method"] == "S256"
        page.fill("input[name=dest_password]", account.dst_pw)
        page.click("button[type=submit].primary")
        assert page.url.endswith("/check"), page.content()[-2000:]
        page.click("button[type=submit].primary")
        page.click("text=Start the transfer")
        job = page.url.rsplit("/", 1)[1]
        with web.store() as store:
            wait_for(lambda: status(store, job)[0].state == "completed", "the transfer to complete")
        expected, got = account.src_snapshot(), account.dst_snapshot()
        assert runcli.exact_copy_problems(expected, got) == []
        assert runcli.extra_messages(expected, got) == []
