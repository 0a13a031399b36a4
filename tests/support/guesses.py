"""Someone guessing a mail password through the web app: a Dovecot that logs every
refused login, a victim's mailbox, and batch lines each guessing its password."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

#: the header of the batch lines
CSV = "source,source_password,dest,dest_password\n"


@dataclass(frozen=True)
class Guesses:
    """``lines``: one guess each at the victim's password (the last one right), each into
    a mailbox of the guesser's own (``mineN``, password ``Mine-pw-N``) on ``server``."""

    mail: Any  # mailmover.devserver.DevServer
    victim_pw: str
    server: str
    lines: list[str]

    def refused(self) -> int:
        """Wrong passwords for the victim that Dovecot checked."""
        return refused_logins(self.mail, "victim")

    def victim_logged_in(self) -> bool:
        return "Login: user=<victim>" in self.mail.log_path.read_text()


def password_guesses(dovecot_factory: Any, wrong: int, spare: int = 0) -> Guesses:
    """A new Dovecot with a victim, and ``wrong`` wrong guesses then the right one;
    ``spare`` more mailboxes of the guesser's own, unused by the lines."""
    mail = dovecot_factory(extra_conf="auth_verbose = yes\n")
    victim_pw = "Right-" + secrets.token_hex(6)
    mail.add_user("victim", victim_pw)
    for n in range(wrong + 1 + spare):
        mail.add_user(f"mine{n}", f"Mine-pw-{n}")
    guesses = [f"guess-{n}" for n in range(wrong)] + [victim_pw]
    lines = [f"victim,{g},mine{n},Mine-pw-{n}\n" for n, g in enumerate(guesses)]
    return Guesses(mail, victim_pw, f"imap://{mail.host}:{mail.port}?tls=none", lines)


def refused_logins(mail: Any, user: str) -> int:
    """Wrong passwords for ``user`` that a Dovecot with ``auth_verbose = yes`` checked."""
    lines = mail.log_path.read_text().splitlines()
    return sum(1 for line in lines if f"({user}," in line and "Password mismatch" in line)
