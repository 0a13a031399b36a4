"""The JSON API for new transfers and batches: the same checks as the pages, answers a
script can read, and never a password in them."""

from __future__ import annotations

import email
import email.policy
import re
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import delete

from mailmover.devserver import DevServer
from mailmover.service.jobs import list_jobs, status
from mailmover.service.signinlimits import ADDRESS_LIMIT, SigninLimiter
from mailmover.store import Store, schema
from support import corpus, runcli
from support.service import wait_for
from support.smtp_server import SmtpServer
from support.web import WebServer, signed_in


@pytest.fixture
def servers(mail_servers: tuple[DevServer, DevServer]) -> tuple[DevServer, DevServer]:
    return mail_servers


@pytest.fixture
def web(served: WebServer) -> WebServer:
    return served


def jobs(store: Store) -> set[str]:
    return {j.name for j in list_jobs(store)}


def side(server: DevServer, user: str, password: str) -> dict[str, Any]:
    return {"provider": "custom", "user": user, "password": password, "host": server.host,
            "port": server.port, "security": "plain"}  # fmt: skip


def test_a_transfer_and_a_batch_through_the_api(
    web: WebServer, servers: tuple[DevServer, DevServer], tmp_path: Path
) -> None:
    account = runcli.Accounts(*servers, tmp_path, "api")
    account.load(
        runcli.folders(INBOX=corpus.bulk(6, seed=3, size_dist="small", total_bytes=30_000))
    )
    src, dst = servers
    with web.store() as store:
        before = jobs(store)
    with closing(signed_in(web, "script")) as client:
        wrong = "not-" + account.dst_pw
        body = {
            "source": side(src, account.user, account.src_pw),
            "dest": side(dst, account.user, wrong),
        }
        refused = client.post("/api/transfers", json=body | {"check_only": True})
        assert refused.status_code == 422
        logins = refused.json()["logins"]
        assert logins["source"] is None and "uthentication" in logins["dest"]
        assert wrong not in refused.text and account.src_pw not in refused.text

        body["dest"] = side(dst, account.user, account.dst_pw)
        checked = client.post("/api/transfers", json=body | {"check_only": True})
        assert checked.status_code == 200
        assert [(f["name"], f["messages"]) for f in checked.json()["folders"]] == [("INBOX", 6)]
        with web.store() as store:
            assert jobs(store) == before
        made = client.post("/api/transfers", json=body | {"name": "api-one"})
        assert made.status_code == 201 and made.json()["name"] == "api-one"
        assert account.dst_pw not in made.text

        bad = client.post(
            "/api/batches",
            json={"csv": "source,source_password,dest,dest_password\na,,b,c\nx,y\n"},
        )
        assert bad.status_code == 422
        assert bad.json()["problems"] == [
            {"line": 2, "reason": "source is a bare user name: give a URL or a source server "
                                  "(--source-server)"},
            {"line": 2, "reason": "dest is a bare user name: give a URL or a dest server "
                                  "(--dest-server)"},
            {"line": 2, "reason": "empty password in source_password"},
            {"line": 3, "reason": "2 fields where the header has 4"},
        ]  # fmt: skip
        preview = client.post(
            "/api/batches",
            json={"csv": f"source,source_password,dest,dest_password\n"
                  f"{account.src_url()},{account.src_pw},{account.dst_url()},{account.dst_pw}\n",
                  "check_only": True},
        )  # fmt: skip
        assert preview.status_code == 200 and len(preview.json()["mailboxes"]) == 1
        assert account.src_pw not in preview.text
        with web.store() as store:
            assert jobs(store) == before | {"api-one"}
            wait_for(lambda: status(store, "api-one")[0].state == "completed", "api-one done")
    expected, got = account.src_snapshot(), account.dst_snapshot()
    assert runcli.exact_copy_problems(expected, got) == []
    with closing(signed_in(web, "other")) as other:
        assert other.get("/api/batches/api-one/invitations").status_code == 404


def test_the_api_tries_no_more_wrong_passwords_than_the_wizard(
    web: WebServer, servers: tuple[DevServer, DevServer], tmp_path: Path
) -> None:
    """Ten wrong mail passwords in a minute: the next one, even right, is not tried."""
    account = runcli.Accounts(*servers, tmp_path, "guess")
    account.load(runcli.folders(INBOX=corpus.bulk(1, seed=4, size_dist="small")))
    src, dst = servers

    def body(password: str) -> dict[str, Any]:
        return {"source": side(src, account.user, account.src_pw),
                "dest": side(dst, account.user, password), "check_only": True}  # fmt: skip

    with closing(signed_in(web, "guesser")) as client:
        codes = [client.post("/api/transfers", json=body(f"guess-{n}")).status_code
                 for n in range(10)]  # fmt: skip
        right = client.post("/api/transfers", json=body(account.dst_pw))
    assert codes == [422] * 10
    assert right.status_code == 429 and "Too many wrong passwords" in right.json()["error"]
    assert account.dst_pw not in right.text


def test_wrong_passwords_from_a_shared_address_do_not_refuse_a_person_s_jobs(
    web: WebServer, servers: tuple[DevServer, DevServer], tmp_path: Path
) -> None:
    """Thirty wrong passwords from one address (an office behind one NAT) close sign-in
    from it for a while, but a person whose own budget is whole still makes jobs from
    there: jobs are refused on the person's budget alone, as the runners count it."""
    account = runcli.Accounts(*servers, tmp_path, "nat")
    account.load(runcli.folders(INBOX=corpus.bulk(1, seed=5, size_dist="small")))
    line = f"{account.src_url()},{account.src_pw},{account.dst_url()},{account.dst_pw}\n"
    csv = "source,source_password,dest,dest_password\n" + line
    failures = schema.signin_failure
    with closing(signed_in(web, "office")) as client, web.store() as store:
        limiter = SigninLimiter(store)
        try:
            for n in range(ADDRESS_LIMIT):  # other people's, from the same address
                limiter.failed(limiter.account_key(f"colleague{n}@example.com"), "127.0.0.1")
            assert not limiter.allowed(limiter.account_key("office@example.com"), "127.0.0.1")
            made = client.post("/api/batches", json={"csv": csv, "name": "nat-batch"})
            assert made.status_code == 201, made.text
            wait_for(lambda: status(store, "nat-batch")[0].state == "completed", "nat done")
        finally:
            with store.write_engine.begin() as conn:  # the address is this server's tests'
                conn.execute(
                    delete(failures).where(
                        failures.c.kind == "address", failures.c.key == "127.0.0.1"
                    )
                )
    assert runcli.exact_copy_problems(account.src_snapshot(), account.dst_snapshot()) == []


def links_to(smtp: SmtpServer, web: WebServer, to: str) -> list[str]:
    found: list[str] = []
    for received in smtp.received:
        if received.recipients == [to]:
            msg = email.message_from_bytes(received.content, policy=email.policy.default)
            body = msg.get_body().get_content()  # type: ignore[union-attr]
            found += re.findall(re.escape(web.base) + r"/invite/\S+", body)
    return found


def test_inviting_oneself_gives_no_more_guesses_than_the_wizard(
    web: WebServer, servers: tuple[DevServer, DevServer], smtp: SmtpServer, tmp_path: Path
) -> None:
    """A person who invites themselves to three mailboxes and guesses on each link spends
    their own budget of wrong mail passwords, as in the wizard: after ten, the third
    link tries nothing (not even the right password), and nor does their wizard."""
    src, dst = servers
    users = [runcli.Accounts(src, dst, tmp_path, f"self{n}") for n in range(3)]
    lines = "".join(f"{u.user},{u.user},{u.dst_pw},{u.user}@example.com\n" for u in users)
    batch = {
        "csv": "source,dest,dest_password,email\n" + lines, "ask_users": True,
        "source_server": f"imap://{src.host}:{src.port}?tls=none",
        "dest_server": f"imap://{dst.host}:{dst.port}?tls=none",
    }  # fmt: skip
    try:
        with closing(signed_in(web, "self-inviter")) as owner, httpx.Client() as visitor:
            made = owner.post("/api/batches", json=batch)
            assert made.status_code == 201 and made.json()["invited"] == 3, made.text

            def guess(link: str, password: str) -> int:
                page = visitor.get(link).text
                token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
                form = {"csrf_token": token, "source_password": password}
                return visitor.post(link, data=form).status_code

            first, second, third = (links_to(smtp, web, f"{u.user}@example.com")[-1] for u in users)
            codes = [guess(first, f"guess-{n}") for n in range(5)]
            codes += [guess(second, f"guess-{n}") for n in range(5)]
            assert codes == [400] * 10  # each said wrong, the link still open
            assert guess(third, users[2].src_pw) == 429
            u = users[2]
            body = {"source": side(src, u.user, u.src_pw), "dest": side(dst, u.user, u.dst_pw),
                    "check_only": True}  # fmt: skip
            assert owner.post("/api/transfers", json=body).status_code == 429
    finally:
        with web.store() as store, store.write_engine.begin() as conn:
            failures = schema.signin_failure  # the address is this server's other tests' too
            conn.execute(
                delete(failures).where(failures.c.kind == "address", failures.c.key == "127.0.0.1")
            )
