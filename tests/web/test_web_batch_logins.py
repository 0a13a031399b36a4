"""A batch file's pre-flight tries no more wrong mail passwords than the wizard.

Its own ``mailmover serve`` (the limits count per address: other modules' wrong
passwords from 127.0.0.1 stay out of this one's count) and a Dovecot that logs every
refused login, so that the lines not tried are seen not tried.
"""

from __future__ import annotations

import secrets
from contextlib import closing
from typing import Any

from mailmover.devserver import DevServer
from support.web import WebServer, signed_in

CSV = "source,source_password,dest,dest_password\n"


def test_a_batch_file_cannot_guess_more_passwords_than_the_wizard(
    web: WebServer, dovecot_factory: Any
) -> None:
    mail: DevServer = dovecot_factory(extra_conf="auth_verbose = yes\n")
    victim_pw = "Right-" + secrets.token_hex(6)
    mail.add_user("victim", victim_pw)
    for n in range(12):
        mail.add_user(f"mine{n}", f"Mine-pw-{n}")
    server = f"imap://{mail.host}:{mail.port}?tls=none"
    # Twelve guesses at the victim's password, each on a line of its own; the last is right.
    guesses = [f"guess-{n}" for n in range(11)] + [victim_pw]
    lines = [f"victim,{g},mine{n},Mine-pw-{n}\n" for n, g in enumerate(guesses)]
    fields = {"source_server": server, "dest_server": server, "preflight": "on"}

    with closing(signed_in(web, "batch-guesser")) as client:

        def upload(text: str) -> Any:
            files = {"file": ("team.csv", text.encode(), "text/csv")}
            return client.post("/batches/new", data=fields, files=files)

        first = upload(CSV + "".join(lines))
        assert first.status_code == 429
        assert "Too many wrong passwords" in first.text
        assert "2 line(s) were not checked" in first.text
        assert first.text.count("pre-flight failed") == 10
        assert refused_logins(mail) == 10  # the eleventh and the right one were not tried
        assert "Login: user=<victim>" not in mail.log_path.read_text()

        # The wizard's budget is the same one: spent for the API too, and the next file.
        check = {
            "source": {"provider": "custom", "user": "victim", "password": victim_pw,
                       "host": mail.host, "port": mail.port, "security": "plain"},
            "dest": {"provider": "custom", "user": "mine0", "password": "Mine-pw-0",
                     "host": mail.host, "port": mail.port, "security": "plain"},
            "check_only": True,
        }  # fmt: skip
        assert client.post("/api/transfers", json=check).status_code == 429
        again = upload(CSV + lines[-1])
        assert again.status_code == 429 and "Too many wrong passwords" in again.text
    assert refused_logins(mail) == 10
    assert "Login: user=<victim>" not in mail.log_path.read_text()
    assert victim_pw not in web.output()


def refused_logins(mail: DevServer) -> int:
    """Wrong passwords for the victim that Dovecot checked (``auth_verbose``)."""
    lines = mail.log_path.read_text().splitlines()
    return sum(1 for line in lines if "(victim," in line and "Password mismatch" in line)
