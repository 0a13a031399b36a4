"""A batch file's pre-flight tries no more wrong mail passwords than the wizard.

Its own ``mailmover serve`` (the limits count per address: other modules' wrong
passwords from 127.0.0.1 stay out of this one's count) and a Dovecot that logs every
refused login, so that the lines not tried are seen not tried.
"""

from __future__ import annotations

from contextlib import closing
from typing import Any

from support.guesses import CSV, password_guesses
from support.web import WebServer, signed_in


def test_a_batch_file_cannot_guess_more_passwords_than_the_wizard(
    web: WebServer, dovecot_factory: Any
) -> None:
    # Twelve guesses at the victim's password, each on a line of its own; the last is right.
    guesses = password_guesses(dovecot_factory, 11)
    mail, victim_pw, server, lines = guesses.mail, guesses.victim_pw, guesses.server, guesses.lines
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
        assert guesses.refused() == 10  # the eleventh and the right one were not tried
        assert not guesses.victim_logged_in()

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
    assert guesses.refused() == 10
    assert not guesses.victim_logged_in()
    assert victim_pw not in web.output()
