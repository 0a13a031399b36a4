"""``mailmover serve``'s first administrator, and administration in Chromium: accounts
made and their roles changed (audit-logged), bad input named on the page."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from support.web import WebServer, screenshot, sign_in


def test_first_start_makes_an_administrator_and_prints_its_password_once(
    tmp_path: Path, page: Any
) -> None:
    server = WebServer(tmp_path / "data", runner=False, admin_from_env=False)
    server.args.append("--secure-cookies")  # as behind a TLS proxy
    server.start()
    try:
        found = re.search(r"Sign in as (\S+) with the password (\S+)\n", server.output())
        assert found, server.output()
        email, password = found.groups()
        assert email == "admin@localhost"
        assert "open http://127.0.0.1:" in server.output()
        sign_in(page, server, email, password)
        assert page.url == server.base + "/transfers"
        assert "Users" in page.locator("header nav").inner_text()  # an administrator's menu
        cookies = {c["name"]: c for c in page.context.cookies()}
        assert cookies["mm_session"]["secure"] and cookies["mm_csrf"]["secure"]
    finally:
        server.stop()
    again = WebServer(tmp_path / "data", runner=False, admin_from_env=False)
    again.log = tmp_path / "again.log"
    again.start()
    try:
        assert password not in again.output()
        assert "Sign in as" not in again.output()
    finally:
        again.stop()


def test_an_administrator_makes_a_user_and_changes_roles(web: WebServer, page: Any) -> None:
    sign_in(page, web, *web.admin())
    page.click("text=Users")
    assert page.url == web.base + "/admin/users"
    # Bad input: named on the page; what was typed comes back, never the password.
    page.fill("input[name=email]", "carol@example.com")
    page.fill("input[name=password]", "short-pw")
    page.click("text=Create account")
    assert "at least 10 characters" in page.locator(".alert").inner_text()
    assert page.input_value("input[name=email]") == "carol@example.com"
    assert "short-pw" not in page.content()

    password = "a-long-enough-password"
    page.fill("input[name=password]", password)
    page.click("text=Create account")
    assert "The account was created" in page.locator(".alert").inner_text()
    row = page.locator("tr", has_text="carol@example.com")
    assert row.locator("select").input_value() == "user"
    row.locator("select").select_option("administrator")
    row.locator("text=Change").click()
    assert "The role was changed" in page.locator(".alert").inner_text()
    row = page.locator("tr", has_text="carol@example.com")
    assert row.locator("select").input_value() == "administrator"
    screenshot(page, "admin-users")

    page.click("text=Audit log")
    lines = page.locator("table.list tbody tr").all_inner_texts()
    assert [line.split("\t")[1:4] for line in lines[:2]] == [
        [web.admin_email, "changed role", "carol@example.com"],
        [web.admin_email, "created user", "carol@example.com"],
    ]
    assert "user → administrator" in lines[0]

    # The last administrator cannot stop being one.
    page.click("text=Users")
    carol = page.locator("tr", has_text="carol@example.com")
    carol.locator("select").select_option("user")
    carol.locator("text=Change").click()
    assert "role was changed" in page.locator(".alert").inner_text()
    me = page.locator("tr", has_text=web.admin_email)
    me.locator("select").select_option("user")
    me.locator("text=Change").click()
    assert "the last administrator stays one" in page.locator(".alert").inner_text()
    me = page.locator("tr", has_text=web.admin_email)
    assert me.locator("select").input_value() == "administrator"

    # A user's own menu has no administration, and its pages are refused.
    page.click("text=Sign out")
    sign_in(page, web, "carol@example.com", password)
    assert page.locator("header nav").inner_text().split() == ["Transfers"]
    assert page.goto(web.base + "/admin/users").status == 403
    assert page.goto(web.base + "/admin/audit").status == 403
    assert "Only an administrator" in page.locator(".alert").inner_text()


def test_bad_input_on_a_transfer_page_is_named(web: WebServer, page: Any) -> None:
    sign_in(page, web, *web.admin())
    response = page.goto(web.base + "/transfers/no-such-transfer")
    assert response.status == 404
    assert "no transfer named 'no-such-transfer'" in page.locator(".alert").inner_text()
    assert page.goto(web.base + "/no/such/page").status == 404
    assert "There is no such page" in page.content()
    # A form whose fields cannot be read: their names, in words, never their values.
    page.goto(web.base + "/admin/users")
    csrf = page.locator("input[name=csrf_token]").first.input_value()
    answer = page.request.post(
        web.base + "/admin/users/not-a-number/role",
        form={"csrf_token": csrf, "role": "user", "password": "secret-value-1"},
    )
    assert answer.status == 400
    body = answer.text()
    assert "The form was not filled in right: account_id" in body
    assert "secret-value-1" not in body and "Traceback" not in body


def test_passwords_changed_by_their_owner_and_by_an_administrator(
    web: WebServer, page: Any
) -> None:
    account, password = web.add_account(name="gina")
    sign_in(page, web, account.email, password)
    page.click(f"text={account.email}")
    assert page.url == web.base + "/account/tokens"
    page.fill("input[name=current]", "not my password")
    page.fill("form[action='/account/password'] input[name=password]", "gina's new password")
    page.click("text=Change password")
    assert "the current password is not right" in page.locator(".alert").inner_text()
    page.fill("input[name=current]", password)
    page.fill("form[action='/account/password'] input[name=password]", "gina's new password")
    page.click("text=Change password")
    assert page.url == web.base + "/signin?changed=1"
    assert "Your password was changed" in page.locator(".alert").inner_text()
    sign_in(page, web, account.email, "gina's new password")
    assert page.url == web.base + "/transfers"
    page.click("text=Sign out")

    sign_in(page, web, *web.admin())
    page.goto(web.base + "/admin/users")
    page.click(f"text={account.email}")
    page.fill("input[name=password]", "set by the admin!")
    page.click("text=Set password")
    assert "The password was changed" in page.locator(".alert").inner_text()
    assert "changed password" in page.content()  # in what gina did, and the admin
    with web.store() as store:
        from mailmover.service.audit import entries

        actions = [(e.actor, e.action, e.target) for e in entries(store)][:2]
    assert actions == [
        (web.admin_email, "changed password", account.email),
        (account.email, "changed password", account.email),
    ]
    web.passwords += ["gina's new password", "set by the admin!"]
    assert not any(p in web.output() for p in web.passwords)


def test_the_system_page_shows_the_runner_and_its_workers(web: WebServer, page: Any) -> None:
    sign_in(page, web, *web.admin())
    page.click("header nav >> text=System")
    assert page.locator("#runner-state").inner_text() == "running"
    rows = page.locator("table.list").first.locator("tbody tr").all_inner_texts()
    assert rows, page.content()
    for row in rows:
        _name, pid, health, _held = row.split("\t")
        assert health == "alive"
        assert Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[1:3] == [
            b"-m", b"mailmover.service.worker",
        ]  # fmt: skip
    screenshot(page, "admin-system")
    page.click("text=Sign out")
    user, password = web.add_account()
    sign_in(page, web, user.email, password)
    assert page.goto(web.base + "/admin/system").status == 403
