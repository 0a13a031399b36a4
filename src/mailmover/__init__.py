"""mailmover: move mailboxes between IMAP servers, every message exact."""

__version__ = "0.1.0"
