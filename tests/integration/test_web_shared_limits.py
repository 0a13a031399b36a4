"""Two web app processes on one job database (``uvicorn --workers 2``, or two machines)
share one budget of wrong passwords, on both backends."""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx
from fastapi import FastAPI

from mailmover.service.accounts import USER, create_account
from mailmover.store import Store
from mailmover.web.app import create_app
from mailmover.web.config import WebConfig


async def sign_in(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    page = (await client.get("/signin")).text
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    form = {"email": email, "password": password, "csrf_token": token}
    return await client.post("/signin", data=form)


def client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1")


async def test_two_app_processes_share_one_budget_of_wrong_passwords(
    database_url: str, tmp_path: Path
) -> None:
    right = secrets.token_urlsafe(12)
    with Store.open(database_url) as store:
        create_account(store, "ann@example.com", right, USER)
    config = WebConfig(
        data_dir=tmp_path, database_url=database_url, env={}, start_runner=False,
        cookie_secure=False,
    )  # fmt: skip
    apps = [create_app(config), create_app(config)]  # each its own objects, as two processes
    async with client(apps[0]) as one, client(apps[1]) as two:
        for n in range(10):  # five wrong passwords through each instance
            answer = await sign_in((one, two)[n % 2], "ann@example.com", f"wrong-{n}")
            assert answer.status_code == 401
        for each in (one, two):
            refused = await sign_in(each, "ann@example.com", right)
            assert refused.status_code == 429
            assert "Too many wrong passwords" in refused.text
        other = await sign_in(two, "bob@example.com", "whatever")  # another account: open
        assert other.status_code == 401
    for app in apps:
        app.state.web.store.close()
