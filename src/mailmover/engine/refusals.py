"""What the destination answered to a batch's APPENDs, and what can still get a refused
message stored.

One message refused inside a MULTIAPPEND refuses them all: they are sent one
by one to find it.

Groupware (Scalix, Exchange) refuses flags it lists in PERMANENTFLAGS or
answers BAD for them. The message is sent again without keywords, then
without flags, and each flag it lost is then set with a STORE of its own;
flags that fail even that are remembered for the whole destination and
dropped from later messages.
"""

from __future__ import annotations

from mailmover.engine.batches import Item, Sent, about_size
from mailmover.engine.flags import without_keywords
from mailmover.engine.profile import ServerProfile
from mailmover.engine.report import FolderResult
from mailmover.errors import CommandFailed, MessageRefused
from mailmover.imap.client import (
    AppendResult,
    IMAPClient,
    Message,
    append_result,
    append_results,
)


def queue_appends(dst: IMAPClient, mailbox: str, sent: Sent, indexes: list[int]) -> None:
    """Send the messages of ``sent`` at ``indexes``: as one MULTIAPPEND when the server
    has it (Dovecot stores a MULTIAPPEND of 1,000 small messages about seven times faster
    than 1,000 pipelined APPENDs, each of which is its own transaction there)."""
    if len(indexes) > 1 and dst.has("MULTIAPPEND"):
        messages = [message_of(sent.batch[i]) for i in indexes]
        sent.commands.append((indexes, dst.multiappend_nowait(mailbox, messages)))
    else:
        for i in indexes:
            sent.commands.append(([i], dst.append_nowait(mailbox, message_of(sent.batch[i]))))


async def append_outcomes(
    dst: IMAPClient,
    mailbox: str,
    sent: Sent,
    dest: ServerProfile | None,
    result: FolderResult,
) -> dict[int, AppendResult | str]:
    """Each sent item's APPENDUID, or the reason it was refused, by item index."""
    outcomes: dict[int, AppendResult | str] = {}
    for indexes, future in sent.commands:
        try:
            appended = append_results(await future, len(indexes))
            outcomes.update(zip(indexes, appended, strict=True))
            continue
        except MessageRefused as exc:
            if len(indexes) == 1:
                item = sent.batch[indexes[0]]
                outcomes[indexes[0]] = await retry_refused(dst, mailbox, item, exc, dest, result)
                continue
        singles = [(i, dst.append_nowait(mailbox, message_of(sent.batch[i]))) for i in indexes]
        for i, single in singles:
            try:
                outcomes[i] = append_result(await single)
            except MessageRefused as exc:
                item = sent.batch[i]
                outcomes[i] = await retry_refused(dst, mailbox, item, exc, dest, result)
    return outcomes


def message_of(item: Item) -> Message:
    """The APPEND of an item whose body arrived whole."""
    assert item.body is not None
    return Message(item.body, item.flags, item.meta.internaldate)


async def retry_refused(
    dst: IMAPClient,
    mailbox: str,
    item: Item,
    exc: MessageRefused,
    dest: ServerProfile | None,
    result: FolderResult,
) -> AppendResult | str:
    """Try what can succeed: without keywords, then without flags, then STORE them.

    The APPENDUID of the copy that was stored, or the reason none was.
    """
    if item.body is None or about_size(exc):
        return exc.message
    attempts = [without_keywords(item.flags), ()]
    for flags in dict.fromkeys(a for a in attempts if a != item.flags):
        message = Message(item.body, flags, item.meta.internaldate)
        try:
            answer = await dst.append_nowait(mailbox, message)
        except MessageRefused:
            continue
        appended = append_result(answer)
        missing = [f for f in item.flags if f not in flags]
        kept = await store_each(dst, appended.uid, missing)
        for flag in missing:
            if flag not in kept:
                result.flags_dropped += 1
                if dest is not None:
                    dest.learned_refused.add(flag.lower())
        item.flags = tuple(sorted((*flags, *kept)))
        return appended
    return exc.message


async def store_each(dst: IMAPClient, uid: int | None, flags: list[str]) -> list[str]:
    """Set each flag with its own STORE; the ones the server accepted."""
    if uid is None or not flags:
        return []
    stores = [(f, dst.uid_store_nowait([uid], "+FLAGS.SILENT", [f])) for f in flags]
    kept = []
    for flag, future in stores:
        try:
            await future
            kept.append(flag)
        except CommandFailed:
            pass
    return kept
