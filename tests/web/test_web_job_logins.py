"""Jobs cannot guess mail passwords either: the passes of a person's jobs try no more
wrong passwords than the wizard allows them, and nothing new starts once they are spent.

Its own ``mailmover serve`` (with its local runner; the window is long, so that the
spent budget outlasts the test) and a Dovecot that logs every refused login, so that
the logins not tried are seen not tried.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from mailmover.service.jobs import list_jobs, status
from mailmover.service.loginguard import REASON
from mailmover.web.batches import JOBS_REFUSED
from support.guesses import CSV, password_guesses
from support.service import wait_for
from support.web import WebServer, screenshot, session_client, sign_in


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
    server = WebServer(tmp_path_factory.mktemp("guarded") / "data")
    server.env["MAILMOVER_SIGNIN_WINDOW"] = "900"
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_jobs_try_no_more_wrong_passwords_than_the_wizard(
    guarded: WebServer, dovecot_factory: Any, page: Any, tmp_path: Path
) -> None:
    web = guarded
    # Fourteen guesses at the victim's password, a mailbox each; the last is right.
    guesses = password_guesses(dovecot_factory, 13, spare=2)
    server, lines = guesses.server, guesses.lines
    batch = {"source_server": server, "dest_server": server}
    guesser, password = web.add_account(name="job-guesser")

    with closing(session_client(web, guesser.email, password)) as client:
        made = client.post("/api/batches", json=batch | {"csv": CSV + "".join(lines)})
        assert made.status_code == 201, made.text
        job = made.json()["name"]
        with web.store() as store:

            def settled() -> dict[str, int] | None:
                states = [(s.state, s.reason) for s in status(store, job)]
                if any(state in ("queued", "running") for state, _ in states):
                    return None
                waiting = sum(1 for s, r in states if s == "waiting" and r == REASON)
                return {"failed": sum(1 for s, _ in states if s == "failed"), "waiting": waiting}

            assert wait_for(settled, "ten failed logins, the rest waiting") == {
                "failed": 10, "waiting": 4,
            }  # fmt: skip
            assert guesses.refused() == 10  # the others were not tried
            assert not guesses.victim_logged_in()

            # Nothing new starts for this person while the budget is spent...
            before = {j.name for j in list_jobs(store)}
            again = client.post("/api/batches", json=batch | {"csv": CSV + lines[-1]})
            assert again.status_code == 429
            assert again.json() == {"error": JOBS_REFUSED}
            assert {j.name for j in list_jobs(store)} == before

    # ... nor through the page, which says why; the job's page says why its mailboxes wait.
    sign_in(page, web, guesser.email, password)
    path = tmp_path / "again.csv"
    path.write_text(CSV + lines[-1])
    page.goto(web.base + "/batches/new")
    page.set_input_files("input[name=file]", str(path))
    page.fill("input[name=source_server]", server)
    page.fill("input[name=dest_server]", server)
    page.click("text=Check the file")
    assert page.locator("p.alert.bad").inner_text() == JOBS_REFUSED
    screenshot(page, "batch-refused-wrong-passwords")
    page.goto(f"{web.base}/transfers/{job}")
    assert page.get_by_text(REASON).count() == 4

    # Another person's batch runs as ever.
    other, other_password = web.add_account(name="colleague")
    with closing(session_client(web, other.email, other_password)) as client:
        line = "mine14,Mine-pw-14,mine15,Mine-pw-15\n"
        theirs = client.post("/api/batches", json=batch | {"csv": CSV + line})
        assert theirs.status_code == 201, theirs.text
        with web.store() as store:
            name = theirs.json()["name"]
            wait_for(lambda: status(store, name)[0].state == "completed", "their mailbox copied")
    assert guesses.refused() == 10
    assert not guesses.victim_logged_in()
    assert guesses.victim_pw not in web.output()
