"""A tagged NO/BAD becomes the error whose ``retryable`` says what the caller can do."""

from __future__ import annotations

import pytest

from mailmover.errors import AuthenticationFailed, MessageRefused, OverQuota, ServerUnavailable
from mailmover.imap.failures import error_for
from mailmover.imap.proto.responses import ResponseCode, Tagged


def _no(text: str, code: str | None = None, status: str = "NO") -> Tagged:
    return Tagged("A1", status, ResponseCode(code) if code else None, text)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("code", "text"),
    [
        ("UNAVAILABLE", "Maximum number of connections from user+IP exceeded"),
        (None, "Too many simultaneous connections"),
        (None, "Request is throttled. Suggested Backoff Time: 148 milliseconds"),
        ("LIMIT", "Too many logins"),
        ("INUSE", "Mailbox in use"),
        (None, "Server busy, try again later"),
    ],
)
def test_a_busy_server_at_login_is_retryable_not_a_wrong_password(
    code: str | None, text: str
) -> None:
    for command in ("LOGIN", "AUTHENTICATE"):
        error = error_for(command, _no(text, code))
        assert isinstance(error, ServerUnavailable), (command, text)
        assert error.retryable


@pytest.mark.parametrize(
    ("code", "text"),
    [
        ("AUTHENTICATIONFAILED", "Authentication failed."),
        (None, "Invalid credentials"),
        ("AUTHENTICATIONFAILED", "Too many failed attempts"),  # the code wins over the words
        ("EXPIRED", "Password expired"),
    ],
)
def test_a_refused_password_is_final(code: str | None, text: str) -> None:
    error = error_for("LOGIN", _no(text, code))
    assert isinstance(error, AuthenticationFailed)
    assert not error.retryable


def test_append_refusals_keep_their_kind() -> None:
    assert isinstance(error_for("APPEND", _no("Quota exceeded", "OVERQUOTA")), OverQuota)
    assert isinstance(error_for("APPEND", _no("Too big", "TOOBIG")), MessageRefused)
    assert isinstance(error_for("APPEND", _no("throttled")), ServerUnavailable)


def test_a_lockout_in_words_alone_is_not_taken_for_a_busy_server() -> None:
    error = error_for("LOGIN", _no("Too many failed login attempts"))
    assert isinstance(error, AuthenticationFailed)
