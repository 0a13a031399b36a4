"""APPEND of a message whose bytes are still arriving: the literal is announced at its
whole size and written as the bytes come (``LiteralStream``).

The server completes such an APPEND only once it has every byte announced; if
the bytes cannot all come, the connection is dropped before the literal ends,
and the server stores nothing (RFC 3501 6.3.11: an APPEND that fails appends
nothing; Dovecot discards a message whose literal never ended).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime

from mailmover.imap.client import SYNC_LITERAL_ABOVE, IMAPClient
from mailmover.imap.connection import LiteralStream, Result
from mailmover.imap.proto.commands import Announced, Arg, Mailbox, flag_list


def append_relayed_nowait(
    client: IMAPClient,
    mailbox: str,
    flags: Sequence[str],
    internaldate: datetime | None,
    stream: LiteralStream,
) -> asyncio.Future[Result]:
    """Queue an APPEND whose message is ``stream`` (``stream.size`` bytes)."""
    args: list[Arg] = [Mailbox(mailbox), flag_list(tuple(flags))]
    if internaldate is not None:
        args.append(internaldate)
    args.append(Announced(stream.size))
    plus = client.has("LITERAL+") and stream.size <= SYNC_LITERAL_ABOVE
    return client.submit("APPEND", args, literal_plus=plus, stream=stream)
