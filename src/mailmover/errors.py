"""One exception tree for mailmover.

Each class says whether retrying can help (``retryable``) so that retry
policies read the error instead of guessing. The docstring of a class is its
default message.
"""

from __future__ import annotations


class MailmoverError(Exception):
    """mailmover failed."""

    retryable: bool = False
    #: process exit code when this error ends a command
    exit_code: int = 1
    #: "source" or "dest": the side whose server said it, where that is known
    side: str | None = None
    #: the command this error ended was never wholly sent: the server cannot have done it
    unsent: bool = False

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip().splitlines()[0])

    @property
    def message(self) -> str:
        return str(self.args[0])


# -- what the user typed or named wrong ------------------------------------------------


class UsageError(MailmoverError):
    """The command line or configuration is wrong."""

    exit_code = 2


# -- network and server ----------------------------------------------------------------


class NetworkError(MailmoverError):
    """The connection to the server failed."""

    retryable = True
    exit_code = 3


class ConnectFailed(NetworkError):
    """Could not connect to the server."""


class ConnectionLost(NetworkError):
    """The server closed the connection or it was cut."""

    #: the server's BYE text when it said goodbye first; None when the link was cut
    bye: str | None = None


class IMAPTimeout(NetworkError):
    """The server did not answer in time."""


class TLSFailed(NetworkError):
    """The TLS handshake failed or the certificate was refused."""

    retryable = False


class ProtocolError(MailmoverError):
    """The server sent something that is not IMAP."""

    retryable = True
    exit_code = 3


class AuthenticationFailed(MailmoverError):
    """The server refused the credentials."""

    # Never retried in a loop: accounts get locked that way.
    retryable = False
    exit_code = 3


class RetriesExhausted(MailmoverError):
    """Retrying spent the mailbox's retry budget; running again later may help."""

    retryable = True

    def __init__(self, message: str, cause: MailmoverError) -> None:
        super().__init__(message)
        self.cause = cause


class StoreError(MailmoverError):
    """The job database failed."""

    def __init__(self, message: str | None = None, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class CapabilityMissing(MailmoverError):
    """The server lacks a capability this operation needs."""

    exit_code = 3


class CommandFailed(MailmoverError):
    """The server answered NO or BAD to a command."""

    def __init__(
        self,
        message: str | None = None,
        *,
        status: str = "NO",
        code: str | None = None,
        command: str = "",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.command = command


class ServerUnavailable(CommandFailed):
    """The server is temporarily unable to do this ([UNAVAILABLE], [INUSE], throttling)."""

    retryable = True

    def __init__(
        self,
        message: str | None = None,
        *,
        status: str = "NO",
        code: str | None = None,
        command: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code, command=command)
        #: seconds the server asked us to wait, when it said
        self.retry_after = retry_after


class MailboxMissing(CommandFailed):
    """The mailbox does not exist ([TRYCREATE], [NONEXISTENT])."""


class MessageRefused(CommandFailed):
    """The destination refused this message ([TOOBIG], [LIMIT], content or flags)."""


class OverQuota(CommandFailed):
    """The destination mailbox is over its quota."""
