"""Two web app processes on one job database (``uvicorn --workers 2``, or two machines)
share one budget of wrong passwords and every draft, on both backends."""

from __future__ import annotations

import asyncio
import re
import secrets
from pathlib import Path

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from mailmover.service.accounts import USER, create_account
from mailmover.service.drafts import Drafts
from mailmover.service.jobs import list_jobs
from mailmover.service.secrets import SecretBox
from mailmover.service.signinlimits import person_key
from mailmover.store import Store, schema
from mailmover.web.app import create_app
from mailmover.web.config import WebConfig


async def sign_in(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    page = (await client.get("/signin")).text
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    form = {"email": email, "password": password, "csrf_token": token}
    return await client.post("/signin", data=form)


def csrf(page: str) -> str:
    return page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


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
        # The sign-in form from one process, posted to the other (its CSRF token taken).
        token = csrf((await one.get("/signin")).text)
        two.cookies = one.cookies
        form = {"email": "bob@example.com", "password": "whatever", "csrf_token": token}
        assert (await two.post("/signin", data=form)).status_code == 401
    for app in apps:
        app.state.web.store.close()


async def test_a_draft_made_through_one_process_is_started_through_the_other_once(
    database_url: str, tmp_path: Path
) -> None:
    with Store.open(database_url) as store:
        create_account(store, "ann@example.com", "ann's long password", USER)
        create_account(store, "bob@example.com", "bob's long password", USER)
    config = WebConfig(
        data_dir=tmp_path, database_url=database_url, env={}, start_runner=False,
        cookie_secure=False,
    )  # fmt: skip
    mail_pw = "Mail-" + secrets.token_hex(8)
    csv = (
        "source,source_password,dest,dest_password\n"
        f"imap://ann@127.0.0.1:1143?tls=none,{mail_pw},imap://ann@127.0.0.1:2143?tls=none,x2\n"
    )
    apps = [create_app(config), create_app(config)]
    async with client(apps[0]) as one, client(apps[1]) as two, client(apps[1]) as bob:
        assert (await sign_in(one, "ann@example.com", "ann's long password")).status_code == 303
        two.cookies = one.cookies  # the same browser, its requests sent to either process
        assert (await sign_in(bob, "bob@example.com", "bob's long password")).status_code == 303
        token = csrf((await one.get("/batches/new")).text)
        files = {"file": ("team.csv", csv.encode(), "text/csv")}
        made = await one.post("/batches/new", data={"csrf_token": token}, files=files)
        assert made.status_code == 303, made.text
        preview = made.headers["location"]
        assert re.fullmatch(r"/batches/[\w-]+/preview", preview), preview
        shown = await two.get(preview)
        assert shown.status_code == 200 and "1 mailbox ready" in shown.text
        assert mail_pw not in shown.text
        assert (await bob.get(preview)).status_code == 404  # another person's draft

        start = preview.replace("/preview", "/start")
        clicks = await asyncio.gather(
            *(c.post(start, data={"csrf_token": token}) for c in (one, two, one, two))
        )
    assert {c.status_code for c in clicks} == {303}
    places = {c.headers["location"] for c in clicks}
    with Store.open(database_url) as store:
        jobs = list_jobs(store)
        assert [f"/transfers/{j.name}" for j in jobs] == list(places)  # one job, for all four
        with store.engine.connect() as conn:
            stored = b"".join(conn.execute(schema.web_draft.select().with_only_columns(
                schema.web_draft.c.data)).scalars())  # fmt: skip
    assert stored and mail_pw.encode() not in stored
    for app in apps:
        app.state.web.store.close()


async def test_what_is_typed_as_an_email_is_neither_kept_nor_another_budget(
    database_url: str, tmp_path: Path
) -> None:
    """A sign-in as ``wizard:<id>`` spends no person's mail-password budget, and the text
    typed in the email box (here a password typed in the wrong box) is not stored."""
    with Store.open(database_url) as store:
        ann = create_account(store, "ann@example.com", secrets.token_urlsafe(12), USER)
    config = WebConfig(
        data_dir=tmp_path, database_url=database_url, env={}, start_runner=False,
        cookie_secure=False,
    )  # fmt: skip
    app = create_app(config)
    typed = f"pw-{secrets.token_urlsafe(9)}"
    async with client(app) as one:
        for _ in range(10):
            assert (await sign_in(one, person_key(ann.id), "x")).status_code == 401
        assert (await sign_in(one, person_key(ann.id), "x")).status_code == 429
        assert (await sign_in(one, typed, "x")).status_code == 401
    web = app.state.web
    assert web.limiter.remaining(person_key(ann.id)) == 10  # ann's budget untouched
    with web.store.engine.connect() as conn:
        keys = [str(k) for k in conn.execute(select(schema.signin_failure.c.key)).scalars()]
    assert len(keys) == 22 and not any(typed in k or "wizard" in k for k in keys), keys
    web.store.close()


def test_a_stale_copy_of_a_draft_cannot_undo_its_job(database_url: str, tmp_path: Path) -> None:
    """One request made the draft's job (its passwords forgotten) while another held the
    draft as it was: the other's save changes nothing, so no second job can be made."""
    with Store.open(database_url) as store:
        ann = create_account(store, "ann@example.com", secrets.token_urlsafe(12), USER)
        drafts = Drafts(store, SecretBox.open(tmp_path, {}))
        drafts.new(ann.id)
        draft_id = drafts.new(ann.id, name="batch").id
        stale, making = drafts.get(draft_id, ann.id), drafts.get(draft_id, ann.id)
        stale.secrets["source"] = b"sealed password"
        making.made("job-1")
        drafts.save(making)
        drafts.save(stale)  # the older copy, with its password, saved last
        kept = drafts.get(draft_id, ann.id)
        assert kept.job == "job-1" and not kept.secrets
        assert not drafts.begin_making(kept)
