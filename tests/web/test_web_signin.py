"""Signing in: through the real form in Chromium, refused without the CSRF token, and
the eleventh wrong password in a minute refused without being checked."""

from __future__ import annotations

from typing import Any

import httpx

from support.web import WebServer, screenshot, sign_in


def test_sign_in_and_out_in_the_browser(web: WebServer, page: Any) -> None:
    page.goto(web.base + "/transfers")
    assert page.url == web.base + "/signin?next=/transfers"
    sign_in(page, web, *web.admin(), next="/transfers")
    assert page.url == web.base + "/transfers"
    assert page.locator("h1").inner_text() == "Transfers"
    assert page.locator("header .who a").inner_text() == web.admin_email
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["mm_session"]
    assert session["httpOnly"] and session["sameSite"] == "Lax"
    assert cookies["mm_csrf"]["httpOnly"] and cookies["mm_csrf"]["sameSite"] == "Strict"
    page.click("text=Sign out")
    assert page.url == web.base + "/signin"
    page.goto(web.base + "/transfers")
    assert page.url.startswith(web.base + "/signin")


def test_a_wrong_password_says_so_and_keeps_no_password(web: WebServer, page: Any) -> None:
    account, password = web.add_account()
    wrong = password + "x"
    sign_in(page, web, account.email, wrong)
    assert "do not match an account" in page.locator(".alert").inner_text()
    screenshot(page, "signin-refused")
    assert page.input_value("input[name=email]") == account.email
    assert page.input_value("input[name=password]") == ""
    assert wrong not in page.content()


def _csrf(client: httpx.Client, base: str) -> str:
    html = client.get(base + "/signin").text
    return html.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


def test_a_form_without_its_csrf_token_is_refused(web: WebServer) -> None:
    with httpx.Client() as client:
        token = _csrf(client, web.base)
        form = {"email": web.admin_email, "password": web.admin_password}
        refused = client.post(web.base + "/signin", data=form)
        assert refused.status_code == 403 and "did not come from this site" in refused.text
        forged = client.post(web.base + "/signin", data=form | {"csrf_token": token + "0"})
        assert forged.status_code == 403
        assert "mm_session" not in client.cookies
        ok = client.post(web.base + "/signin", data=form | {"csrf_token": token})
        assert ok.status_code == 303 and "mm_session" in client.cookies
        # Signed in, the session's own token is wanted: the one from before is refused.
        stale = client.post(web.base + "/signout", data={"csrf_token": token})
        assert stale.status_code == 403
        page = client.get(web.base + "/transfers").text
        current = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        header = client.post(web.base + "/signout", headers={"X-CSRF-Token": current})
        assert header.status_code == 303
        assert client.get(web.base + "/transfers").status_code == 303


def test_the_eleventh_wrong_password_is_refused_unchecked(web: WebServer) -> None:
    account, password = web.add_account()
    with httpx.Client() as client:
        token = _csrf(client, web.base)

        def attempt(pw: str) -> int:
            form = {"email": account.email, "password": pw, "csrf_token": token}
            return client.post(web.base + "/signin", data=form).status_code

        assert [attempt(f"wrong-{n}-password") for n in range(10)] == [401] * 10
        # The right password now is not even checked: the account is closed for a minute.
        assert attempt(password) == 429
        assert "mm_session" not in client.cookies
    # Another account from the same address still signs in (its own limit is 10, the
    # address's 30).
    other, other_pw = web.add_account()
    with httpx.Client() as client:
        token = _csrf(client, web.base)
        form = {"email": other.email, "password": other_pw, "csrf_token": token}
        assert client.post(web.base + "/signin", data=form).status_code == 303


def test_signing_in_over_a_session_ends_the_earlier_one(web: WebServer) -> None:
    account, password = web.add_account()
    with httpx.Client() as client:
        form = {"email": account.email, "password": password}
        first = client.post(
            web.base + "/signin", data=form | {"csrf_token": _csrf(client, web.base)}
        )
        assert first.status_code == 303
        earlier = client.cookies["mm_session"]
        page = client.get(web.base + "/transfers").text
        current = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        again = client.post(web.base + "/signin", data=form | {"csrf_token": current})
        assert again.status_code == 303 and client.cookies["mm_session"] != earlier
        assert client.get(web.base + "/transfers").status_code == 200
    with httpx.Client(cookies={"mm_session": earlier}) as stale:
        assert stale.get(web.base + "/transfers").status_code == 303
