"""Naming every message a pass leaves behind when the whole mailbox must stop (over quota).

Each folder of the plan is listed again on the source; what the journal does not
record as done becomes one manifest row, with its size, date and subject.
"""

from __future__ import annotations

from collections.abc import Sequence

from mailmover.engine.folders import FolderPlan
from mailmover.engine.headers import summary
from mailmover.engine.listing import date_criteria
from mailmover.engine.options import TransferOptions
from mailmover.engine.ports import Journal
from mailmover.engine.report import Failure
from mailmover.imap.client import IMAPClient

LISTING = "(UID RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER.FIELDS (SUBJECT)])"


async def left_behind(
    src: IMAPClient,
    journal: Journal,
    plans: Sequence[FolderPlan],
    options: TransferOptions,
    reason: str,
) -> dict[str, list[Failure]]:
    """Per source folder, the messages the journal does not record as copied."""
    out: dict[str, list[Failure]] = {}
    for plan in plans:
        selected = await src.examine(plan.source_name)
        if not selected.exists:
            continue
        uids = await src.uid_search(*date_criteria(options.since, options.before))
        rec = await journal.folder(plan.source_name)
        done: set[int] = set()
        if rec is not None and rec.id is not None:
            async for page in journal.iter_messages(
                rec.id, uidvalidity=selected.uidvalidity, states=("done",)
            ):
                done.update(row.source_uid for row in page)
        left = [uid for uid in uids if uid not in done]
        if not left:
            continue
        rows = []
        for fetch in sorted(await src.uid_fetch(left, LISTING), key=lambda f: f.uid or 0):
            if fetch.uid is None:
                continue
            subject = summary(next(iter(fetch.body.values()), b""))[1]
            when = fetch.internaldate
            rows.append(
                Failure(plan.source_name, fetch.uid, fetch.size or 0, when, subject, reason)
            )
        out[plan.source_name] = rows
    return out
