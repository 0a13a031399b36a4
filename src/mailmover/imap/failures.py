"""Turn a tagged NO/BAD into the exception that says what the caller can do."""

from __future__ import annotations

import re

from mailmover.errors import (
    AuthenticationFailed,
    CommandFailed,
    MailboxMissing,
    MailmoverError,
    MessageRefused,
    OverQuota,
    ServerUnavailable,
)
from mailmover.imap.proto.responses import Tagged

# Microsoft 365: "NO Request is throttled. Suggested Backoff Time: 148 milliseconds"
_BACKOFF = re.compile(r"backoff time:\s*(\d+)\s*(milli)?", re.IGNORECASE)
# Dovecot: "NO Mailbox doesn't exist: x" without [NONEXISTENT] on SELECT.
_MISSING = re.compile(r"doesn't exist|does not exist|no such mailbox|not found", re.IGNORECASE)
_TRANSIENT_CODES = {"UNAVAILABLE", "INUSE", "SERVERBUG", "EXPUNGEISSUED"}
_AUTH_CODES = {"AUTHENTICATIONFAILED", "AUTHORIZATIONFAILED", "EXPIRED", "PRIVACYREQUIRED"}
# Said at login by servers that are busy, not by servers that reject the password:
# Dovecot "Maximum number of connections from user+IP exceeded", Exchange
# "Request is throttled", Courier/Cyrus "Too many simultaneous connections".
_BUSY = re.compile(
    r"too many (?:\w+ )?connections|maximum number of connections|try again later", re.I
)


def retry_after(text: str) -> float | None:
    """Seconds a server asked us to wait, from a throttling reply; None when it did not say."""
    match = _BACKOFF.search(text)
    if match is None:
        return None
    value = int(match.group(1))
    return value / 1000 if match.group(2) else float(value)


def error_for(command: str, tagged: Tagged) -> MailmoverError:
    """The exception for a failed command (``command`` is its name, e.g. ``APPEND``)."""
    code = tagged.code.name if tagged.code else None
    text = tagged.text or f"{command} failed"
    if code in _AUTH_CODES:
        return AuthenticationFailed(f"login refused by the server: {text}")
    message = f"{command} refused by the server: {text}"
    wait = retry_after(text)
    transient = code in _TRANSIENT_CODES or wait is not None or "throttl" in text.lower()
    login = command in {"LOGIN", "AUTHENTICATE"}
    # RFC 5530: at login a busy server is not a wrong password; classify by code and words first.
    busy = login and (code == "LIMIT" or _BUSY.search(text) is not None)
    if login and tagged.status == "NO" and not (transient or busy):
        return AuthenticationFailed(f"login refused by the server: {text}")
    if transient or busy or (code == "LIMIT" and command != "APPEND"):
        return ServerUnavailable(
            message, status=tagged.status, code=code, command=command, retry_after=wait
        )
    kind: type[CommandFailed] = CommandFailed
    missing = _MISSING.search(text) and command in {"SELECT", "EXAMINE", "STATUS", "APPEND"}
    if code in {"TRYCREATE", "NONEXISTENT"} or missing:
        kind = MailboxMissing
    elif code == "OVERQUOTA":
        kind = OverQuota
    elif command == "APPEND":
        # NO with TOOBIG/LIMIT, or a BAD from groupware for flags or content it refuses.
        kind = MessageRefused
    return kind(message, status=tagged.status, code=code, command=command)
