"""The job database's URL as it is printed: no password, wherever the URL carries one."""

from __future__ import annotations

from mailmover.store.connect import shown, unreachable

URL = "postgresql://bob:pw-in-netloc@db:5432/jobs?sslmode=require&password=pw-in-query&sslpassword=key-pw"
SECRETS = ("pw-in-netloc", "pw-in-query", "key-pw")


def test_shown_drops_the_password_and_password_parameters_keeps_the_rest() -> None:
    assert shown(URL) == "postgresql://bob@db:5432/jobs?sslmode=require"


def test_a_reason_that_quotes_a_password_prints_stars_instead() -> None:
    line = unreachable(URL, ConnectionError("FATAL:  no: pw-in-netloc pw-in-query key-pw"))
    assert line == f"cannot use the job database {shown(URL)}: no: *** *** ***"
    assert not any(secret in line for secret in SECRETS)
