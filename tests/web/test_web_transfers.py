"""A transfer's page in Chromium, against ``mailmover serve`` with its local runner and two
real Dovecots: live progress to an exact copy, pause/resume/cancel reaching the runner,
the report downloaded, and each account seeing only its own transfers."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from mailmover.devserver import DevServer
from mailmover.service.audit import entries
from mailmover.service.reports import report_data
from support import corpus, runcli
from support.service import Batch, SlowLink, mail, wait_for
from support.web import WebServer, create_transfer, screenshot, sign_in

STATE_JS = "(s) => document.querySelector('#live .mailbox')?.dataset.state === s"


@pytest.fixture(scope="module")
def servers(dovecot_factory: Any) -> Iterator[tuple[DevServer, DevServer]]:
    yield dovecot_factory(layout="fs"), dovecot_factory(layout="maildir++")


def _batch(web: WebServer, servers: tuple[DevServer, DevServer], name: str, n: int) -> Batch:
    # The batch's data directory is the server's: one job database.
    assert web.data_dir.name == "data"
    return Batch(*servers, web.data_dir.parent, n, name)


def _copied(page: Any) -> int:
    text = page.locator("#live .mailbox .mailbox-figures span").first.inner_text()
    return int(text.split()[0])


def test_live_progress_to_an_exact_copy_and_the_report(
    web: WebServer, page: Any, servers: tuple[DevServer, DevServer]
) -> None:
    owner, password = web.add_account()
    batch = _batch(web, servers, "live", 1)
    batch.load([mail(7, count=60, total=600_000)])
    link = SlowLink(servers[1], rate=150_000)  # a few seconds: the page sees it move
    try:
        create_transfer(web, batch, owner, dst_port=link.port, batch_messages=10, window=4)
        sign_in(page, web, owner.email, password, next="/transfers/live")
        assert page.url == web.base + "/transfers/live"
        page.evaluate("window.notReloaded = true")
        page.wait_for_function(STATE_JS, arg="running", timeout=60_000)
        page.wait_for_function(
            "() => { const n = parseInt(document.querySelector("
            "'#live .mailbox .mailbox-figures span').textContent);"
            " return n > 0 && n < 60; }",
            timeout=60_000,
        )
        assert "running" in page.locator("#live .mailbox .state").inner_text()
        screenshot(page, "transfer-running")
        page.wait_for_function(STATE_JS, arg="completed", timeout=90_000)
    finally:
        link.close()
    # The page moved by itself: no reload, no navigation.
    assert page.evaluate("window.notReloaded") is True
    assert _copied(page) == 60
    assert batch.problems() == []
    (box,) = batch.status()
    assert box.state == "completed" and box.messages_copied == 60
    assert not box.has_credentials
    page.reload()
    screenshot(page, "transfer-completed")
    folders = page.locator("#live table.folders tbody tr").all_inner_texts()
    assert [f.split("\t")[0] for f in folders] == ["Archive", "INBOX"]

    with page.expect_download() as got:
        page.click("text=Download CSV")
    rows = list(csv.DictReader(io.StringIO(got.value.path().read_text(encoding="utf-8"))))
    assert [r["row"] for r in rows].count("mailbox") == 1
    assert sum(int(r["copied"]) for r in rows if r["row"] == "folder") == 60
    with page.expect_download() as got:
        page.click("text=Download JSON")
    data = json.loads(got.value.path().read_text(encoding="utf-8"))
    with web.store() as store:
        assert data == json.loads(json.dumps(report_data(store, "live")))
        log = entries(store, actor_id=owner.id)
    assert [(e.action, e.target) for e in log][:2] == [("downloaded a report", "live")] * 2
    assert batch.leaked(page.content(), web.output(), more=web.passwords) == []
    # A finished transfer offers no action that would do nothing.
    assert page.locator("#live .actions button").count() == 0
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    screenshot(page, "transfer-phone")
    page.click("text=Transfers")
    assert "live" in page.locator("table.transfers").inner_text()
    assert "completed" in page.locator("table.transfers .pill").first.inner_text()
    page.set_viewport_size({"width": 1280, "height": 900})
    screenshot(page, "transfers-list")


def test_pause_resume_and_cancel_from_the_page_reach_the_runner(
    web: WebServer, page: Any, servers: tuple[DevServer, DevServer]
) -> None:
    owner, password = web.add_account()
    batch = _batch(web, servers, "steer", 2)
    batch.load([mail(11, count=80, total=800_000), mail(12, count=80, total=800_000)])
    link = SlowLink(servers[1], rate=100_000)
    try:
        create_transfer(web, batch, owner, dst_port=link.port, batch_messages=10, window=4)
        sign_in(page, web, owner.email, password, next="/transfers/steer")

        def running(i: int) -> bool:
            s = batch.status()[i]
            return s.state == "running" and s.messages_copied > 0

        wait_for(lambda: running(0) and running(1), "both mailboxes to be copying")
        page.reload()
        page.locator("#live article.mailbox").nth(0).locator("button[data-action=pause]").click()
        page.wait_for_load_state()
        assert "Pause asked: 1 mailbox(es)" in page.locator(".alert").inner_text()
        wait_for(lambda: batch.status()[0].state == "paused", "the worker to pause")
        with web.store() as store:
            passes = report_data(store, "steer")["mailboxes"][0]["passes"]
        assert passes[-1]["outcome"] == "paused"  # the worker took it, not the database alone
        page.wait_for_function(STATE_JS, arg="paused")
        copied = batch.status()[0].messages_copied
        assert 0 < copied < 80

        page.locator("#live article.mailbox").nth(1).locator("button[data-action=cancel]").click()
        page.wait_for_load_state()
        assert "Cancelled: 1 mailbox(es)" in page.locator(".alert").inner_text()
        wait_for(lambda: batch.status()[1].state == "cancelled", "the worker to cancel")
        assert not batch.status()[1].has_credentials

        page.locator("#live article.mailbox").nth(0).locator("button[data-action=resume]").click()
        page.wait_for_load_state()
        wait_for(lambda: batch.status()[0].state == "completed", "the resumed mailbox to finish")
    finally:
        link.close()
    account = batch.accounts[0]
    expected, got = batch.expected[0], account.dst_snapshot()
    assert runcli.exact_copy_problems(expected, got) + runcli.extra_messages(expected, got) == []
    page.reload()
    states = page.locator("#live article.mailbox").evaluate_all(
        "els => els.map(e => e.dataset.state)"
    )
    assert states == ["completed", "cancelled"]
    with web.store() as store:
        log = [(e.action, e.detail) for e in entries(store, actor_id=owner.id)]
    sources = [a.src_url(None) for a in batch.accounts]
    assert log[:3] == [
        ("resumed", f"mailbox {sources[0]}"),
        ("cancelled", f"mailbox {sources[1]}"),
        ("paused", f"mailbox {sources[0]}"),
    ]
    assert batch.leaked(page.content(), web.output(), more=web.passwords) == []


def _client(web: WebServer, email: str, password: str) -> tuple[httpx.Client, str]:
    """A signed-in HTTP client and its session's CSRF token."""
    client = httpx.Client(base_url=web.base)
    token = client.get("/signin").text.split('name="csrf_token" value="', 1)[1].split('"')[0]
    signed = client.post("/signin", data={"email": email, "password": password,
                                          "csrf_token": token})  # fmt: skip
    assert signed.status_code == 303
    page = client.get("/transfers").text
    return client, page.split('name="csrf_token" value="', 1)[1].split('"')[0]


def test_a_user_sees_only_their_own_transfers_and_an_admin_all(
    web: WebServer, page: Any, servers: tuple[DevServer, DevServer]
) -> None:
    alice, alice_pw = web.add_account(name="alice")
    bob, bob_pw = web.add_account(name="bob")
    for name, owner in (("alices", alice), ("bobs", bob)):
        batch = _batch(web, servers, name, 1)
        batch.load([mail(3, count=4, total=20_000)])
        create_transfer(web, batch, owner, delta_every_hours=24)

    bob_client, bob_csrf = _client(web, bob.email, bob_pw)
    with contextlib.closing(bob_client):
        assert "/transfers/bobs" in bob_client.get("/transfers").text
        assert "alices" not in bob_client.get("/transfers").text
        for path in ("/transfers/alices", "/transfers/alices/live",
                     "/transfers/alices/report.csv", "/transfers/alices/report.json",
                     "/transfers/alices/events"):  # fmt: skip
            assert bob_client.get(path).status_code == 404, path
        for action in ("pause", "cancel", "resume", "delta", "complete"):
            refused = bob_client.post(f"/transfers/alices/{action}", data={"csrf_token": bob_csrf})
            assert refused.status_code == 404, action
        missing = bob_client.get("/transfers/nobody")
        assert missing.status_code == 404
        # Someone else's transfer and one that does not exist look the same.
        assert refused.text.replace("alices", "X") == bob_client.post(
            "/transfers/nobody/complete", data={"csrf_token": bob_csrf}
        ).text.replace("nobody", "X")
        assert bob_client.get("/admin/users").status_code == 403
    with web.store() as store:
        assert not any(e.target == "alices" for e in entries(store, actor_id=bob.id))

    sign_in(page, web, alice.email, alice_pw)
    assert page.goto(web.base + "/transfers/bobs").status == 404
    assert "no transfer named 'bobs'" in page.locator(".alert").inner_text()
    assert page.goto(web.base + "/transfers/alices").status == 200
    # Bad input is named on the page; a good schedule is saved and audit-logged.
    page.fill("input[name=hours]", "soon")
    page.click("text=Save schedule")
    refused = page.locator(".alert").inner_text()
    assert "a delta schedule is a number of hours, not 'soon'" in refused
    page.goto(web.base + "/transfers/alices")
    assert page.input_value("input[name=hours]") == "24"
    page.fill("input[name=hours]", "6")
    page.click("text=Save schedule")
    assert "The delta schedule was saved" in page.locator(".alert").inner_text()
    assert page.input_value("input[name=hours]") == "6"
    with web.store() as store:
        (last, *_) = entries(store, actor_id=alice.id)
    assert (last.action, last.target, last.detail) == (
        "set the delta schedule", "alices", "every 6 h",
    )  # fmt: skip

    admin_client, _ = _client(web, *web.admin())
    with contextlib.closing(admin_client):
        listing = admin_client.get("/transfers").text
        assert "/transfers/alices" in listing and "/transfers/bobs" in listing
        assert admin_client.get("/transfers/alices").status_code == 200
        assert admin_client.get("/transfers/bobs/report.json").status_code == 200


def test_a_delta_pass_and_completion_from_the_page(
    web: WebServer, page: Any, servers: tuple[DevServer, DevServer]
) -> None:
    owner, password = web.add_account()
    batch = _batch(web, servers, "kept", 1)
    batch.load([mail(21, count=10, total=60_000)])
    create_transfer(web, batch, owner, delta_every_hours=24)
    sign_in(page, web, owner.email, password, next="/transfers/kept")
    page.wait_for_function(STATE_JS, arg="synced")
    assert "synced" in page.locator("#live .mailbox .state").inner_text()
    # New mail at the source: "Delta pass now" brings it, and the transfer stays synced.
    account = batch.accounts[0]
    account.load(mail(22, count=4, total=20_000))
    page.click("button[data-action=delta-all]")
    assert "A delta pass was queued for 1 mailbox(es)" in page.locator(".alert").inner_text()
    wait_for(lambda: batch.status()[0].messages_copied == 14, "the delta pass")
    page.wait_for_function(STATE_JS, arg="synced")
    assert batch.status()[0].has_credentials
    page.click("button[data-action=complete-all]")
    assert "Completing 1 mailbox(es)" in page.locator(".alert").inner_text()
    page.wait_for_function(STATE_JS, arg="completed")
    (box,) = batch.status()
    assert box.state == "completed" and not box.has_credentials
    expected, got = account.src_snapshot(), account.dst_snapshot()
    assert runcli.exact_copy_problems(expected, got) + runcli.extra_messages(expected, got) == []
    with web.store() as store:
        log = [e.action for e in entries(store, actor_id=owner.id)]
    assert log[:2] == ["completed", "asked for a delta pass"]


def test_a_message_the_destination_refuses_is_named_on_the_page(
    web: WebServer, page: Any, servers: tuple[DevServer, DevServer], dovecot_factory: Any
) -> None:
    owner, password = web.add_account()
    small_dest = dovecot_factory(max_message_size=200_000)
    batch = Batch(servers[0], small_dest, web.data_dir.parent, 1, "refused")
    big = corpus.bulk(1, seed=99, size_dist="realistic", total_bytes=400_000)
    small = corpus.bulk(6, seed=98, size_dist="small")
    batch.load([runcli.folders(INBOX=[*small[:3], *big, *small[3:]])])
    create_transfer(web, batch, owner)
    sign_in(page, web, owner.email, password, next="/transfers/refused")
    page.wait_for_function(STATE_JS, arg="completed_with_errors")
    pill = page.locator("#live .mailbox .state")
    assert pill.inner_text() == "completed with errors (1 message(s) not copied)"
    assert "warn" in (pill.get_attribute("class") or "")
    rows = page.locator("section.not-copied tbody tr").all_inner_texts()
    assert len(rows) == 1
    folder, uid, _size, subject, reason = rows[0].split("\t")
    assert (folder, subject) == ("INBOX", "Bulk message 0 of 1") and uid and reason
    screenshot(page, "transfer-not-copied")
    page.click("button[data-action=retry-all]")
    said = page.locator(".alert").inner_text()
    assert "Retrying the messages not copied in 1 mailbox(es)" in said

    def passes() -> list[Any]:
        with web.store() as store:
            found: list[Any] = report_data(store, "refused")["mailboxes"][0]["passes"]
        return found

    def retried() -> bool:
        return batch.status()[0].state == "completed_with_errors" and len(passes()) == 2

    wait_for(retried, "the retry pass")
    assert passes()[-1]["kind"] == "retry_errors"
    assert batch.status()[0].messages_copied == 6


def test_a_large_transfer_lists_one_row_per_mailbox_each_with_its_page(
    web: WebServer, page: Any, servers: tuple[DevServer, DevServer]
) -> None:
    owner, password = web.add_account()
    batch = _batch(web, servers, "seven", 7)
    batch.load([mail(30 + n, count=4, total=16_000) for n in range(7)])
    create_transfer(web, batch, owner)
    other = _batch(web, servers, "someone-elses", 1)
    other.load([mail(40, count=2, total=8_000)])
    stranger, _ = web.add_account()
    create_transfer(web, other, stranger)
    wait_for(lambda: batch.states() == ["completed"] * 7, "the seven mailboxes")
    sign_in(page, web, owner.email, password, next="/transfers/seven")
    rows = page.locator("#live table.mailboxes tbody tr")
    assert rows.count() == 7
    assert rows.evaluate_all("rs => rs.map(r => r.dataset.state)") == ["completed"] * 7
    assert page.locator("#live article.mailbox").count() == 0
    page.click("nav.filters >> text=7 completed")
    assert page.url == web.base + "/transfers/seven?state=completed"
    assert page.locator("#live table.mailboxes tbody tr").count() == 7
    page.goto(web.base + "/transfers/seven?state=failed")
    assert page.locator("#live table.mailboxes tbody tr").count() == 0

    page.goto(web.base + "/transfers/seven")
    screenshot(page, "transfer-many")
    third = batch.accounts[2]
    page.click(f"text={third.user} on 127.0.0.1")
    assert page.locator("h1").inner_text() == third.src_url()
    folders = page.locator("#live table.folders tbody tr").all_inner_texts()
    assert [f.split("\t")[:2] for f in folders] == [["Archive", "2 of 2"], ["INBOX", "2 of 2"]]
    assert "completed" in page.locator("table.log").inner_text()
    mine = batch.status()[2].id
    assert page.url == f"{web.base}/transfers/seven/mailboxes/{mine}"
    (theirs,) = other.status()
    # Another's mailbox, by its id under one's own transfer or under theirs: not found.
    for path in (f"/transfers/seven/mailboxes/{theirs.id}",
                 f"/transfers/someone-elses/mailboxes/{theirs.id}",
                 "/transfers/seven/mailboxes/999999"):  # fmt: skip
        assert page.goto(web.base + path).status == 404, path
