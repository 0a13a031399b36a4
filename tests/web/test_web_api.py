"""The JSON API with API tokens made and revoked in the browser: the same actions and the
same permission checks as the pages."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from mailmover.devserver import DevServer
from mailmover.service.audit import entries
from support.service import Batch, mail, wait_for
from support.web import WebServer, create_transfer, sign_in


@pytest.fixture(scope="module")
def servers(dovecot_factory: Any) -> Iterator[tuple[DevServer, DevServer]]:
    yield dovecot_factory(), dovecot_factory()


def _make_token(page: Any, web: WebServer, name: str) -> str:
    page.goto(web.base + "/account/tokens")
    page.fill("input[name=name]", name)
    page.click("text=Make a token")
    token: str = page.locator("code.token").inner_text()
    assert token.startswith("mmt_")
    return token


def test_tokens_drive_the_api_within_the_owners_transfers(
    web: WebServer, page: Any, servers: tuple[DevServer, DevServer]
) -> None:
    erin, erin_pw = web.add_account(name="erin")
    frank, frank_pw = web.add_account(name="frank")
    batch = Batch(*servers, web.data_dir.parent, 1, "erins")
    batch.load([mail(5, count=6, total=30_000)])
    create_transfer(web, batch, erin, delta_every_hours=12)

    sign_in(page, web, erin.email, erin_pw, next="/account/tokens")
    token = _make_token(page, web, "nightly script")
    page.goto(web.base + "/account/tokens")
    assert token not in page.content()  # shown once
    assert "nightly script" in page.locator("table.list").inner_text()

    api = httpx.Client(base_url=web.base + "/api", headers={"Authorization": f"Bearer {token}"})
    with api:
        assert [t["name"] for t in api.get("/transfers").json()] == ["erins"]
        wait_for(lambda: api.get("/transfers/erins").json()["mailboxes"][0]["state"] == "synced",
                 "the first pass")  # fmt: skip
        got = api.get("/transfers/erins").json()
        assert got["delta_every_hours"] == 12 and got["messages_copied"] == 6
        assert got["words"].startswith("synced")
        assert api.post("/transfers/erins/delta").json() == {"action": "delta", "mailboxes": 1}
        assert api.put("/transfers/erins/schedule", json={"hours": 2}).status_code == 200
        assert api.get("/transfers/erins").json()["delta_every_hours"] == 2
        report = api.get("/transfers/erins/report").json()
        assert report["job"] == "erins" and len(report["mailboxes"]) == 1
        assert api.post("/transfers/erins/explode").status_code == 404

    with web.store() as store:
        actions = [(e.action, e.target) for e in entries(store, actor_id=erin.id)][:4]
    assert actions == [
        ("downloaded a report", "erins"),
        ("set the delta schedule", "erins"),
        ("asked for a delta pass", "erins"),
        ("created an API token", "nightly script"),
    ]

    # Another account's token reaches nothing of erin's.
    page.click("text=Sign out")
    sign_in(page, web, frank.email, frank_pw, next="/account/tokens")
    other = _make_token(page, web, "frank's")
    with httpx.Client(base_url=web.base + "/api",
                      headers={"Authorization": f"Bearer {other}"}) as api:  # fmt: skip
        assert api.get("/transfers").json() == []
        assert api.get("/transfers/erins").status_code == 404
        assert api.post("/transfers/erins/cancel").status_code == 404
        assert api.get("/transfers/erins/report").status_code == 404
    assert batch.status()[0].state != "cancelled"

    # Revoked, or made up: refused.
    page.click("text=Sign out")
    sign_in(page, web, erin.email, erin_pw, next="/account/tokens")
    page.locator("tr", has_text="nightly script").locator("text=Revoke").click()
    assert "The token was revoked" in page.locator(".alert").inner_text()
    for bad in (token, "mmt_" + "x" * 43, "not-a-token"):
        with httpx.Client(headers={"Authorization": f"Bearer {bad}"}) as api:
            refused = api.get(web.base + "/api/transfers")
        assert refused.status_code == 401 and refused.json() == {"error": "sign in first"}
    assert batch.leaked(web.output(), more=[token, other, *web.passwords]) == []


def test_a_browser_session_needs_the_csrf_header_for_the_api(web: WebServer, page: Any) -> None:
    sign_in(page, web, *web.admin())
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    with httpx.Client(base_url=web.base, cookies=cookies) as client:
        assert client.get("/api/transfers").status_code == 200
        refused = client.post("/api/transfers/anything/pause")
        assert refused.status_code == 403
        assert "did not come from this site" in refused.json()["error"]
        html = client.get("/transfers").text
        csrf = html.split('name="csrf_token" value="', 1)[1].split('"')[0]
        missing = client.post("/api/transfers/anything/pause", headers={"X-CSRF-Token": csrf})
        assert missing.status_code == 404
    assert page.goto(web.base + "/api/openapi.json").status == 200
