"""``mailmover users``: accounts of the web app from the console, passwords never in argv."""

from __future__ import annotations

from pathlib import Path

from mailmover.service.accounts import authenticate
from mailmover.store import Store
from support import runcli


def test_users_are_added_listed_and_given_a_new_password(tmp_path: Path) -> None:
    env = {"MAILMOVER_DATA_DIR": str(tmp_path), "MAILMOVER_USER_PASSWORD": "first password"}
    made = runcli.run("users", "add", "Boss@Example.org", "--role", "administrator", env=env)
    assert (made.code, made.stdout) == (0, "made boss@example.org (administrator)\n"), made
    again = runcli.run("users", "add", "boss@example.org", env=env)
    assert again.code == 2 and "exists already" in again.stderr
    assert runcli.run("users", "list", env=env).stdout == "boss@example.org\tadministrator\n"
    # From the hidden prompt (typed twice) when the environment has none.
    prompted = runcli.run(
        "users", "password", "boss@example.org", env=env | {"MAILMOVER_USER_PASSWORD": ""},
        stdin="second password\nsecond password\n",
    )  # fmt: skip
    assert prompted.code == 0, prompted
    short = runcli.run("users", "password", "boss@example.org",
                       env=env | {"MAILMOVER_USER_PASSWORD": "short"})  # fmt: skip
    assert short.code == 2 and "at least 10 characters" in short.stderr
    with Store.open(f"sqlite:///{tmp_path / 'state.db'}") as store:
        assert authenticate(store, "boss@example.org", "second password") is not None
        assert authenticate(store, "boss@example.org", "first password") is None
    for out in (made, again, prompted, short):
        assert "first password" not in out.stdout + out.stderr
        assert "second password" not in out.stdout
