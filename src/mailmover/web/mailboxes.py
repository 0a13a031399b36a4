"""One mailbox of a transfer: its folders, the messages it could not copy, its event log.

A large transfer lists its mailboxes one row each; each row leads here.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from mailmover.service import access, jobs
from mailmover.service.reports import mailbox_report
from mailmover.service.states import END_STATES
from mailmover.web.auth import CurrentUser, State
from mailmover.web.state import render
from mailmover.web.transfers import NOT_COPIED_SHOWN, totals

router = APIRouter()


@router.get("/transfers/{job}/mailboxes/{mailbox_id}")
def mailbox_page(
    request: Request, job: str, mailbox_id: int, web: State, user: CurrentUser
) -> Response:
    access.check(web.store, user, job)
    box = jobs.mailbox_status(web.store, mailbox_id)
    if box.job != job:  # said exactly as for a mailbox that does not exist
        raise jobs.NotFound(f"no mailbox with id {mailbox_id}")
    report = mailbox_report(web.store, mailbox_id)
    missed = [(box.source, m) for m in report["not_copied"]]
    context = {
        "job": job,
        "box": box,
        "boxes": [box],
        "totals": totals([box]),
        "finished": box.state in END_STATES,
        "compact": False,
        "folders": {box.id: report["folders"]},
        "not_copied": missed[:NOT_COPIED_SHOWN],
        "not_copied_count": len(missed),
        "log": [(box.source, line) for line in jobs.mailbox_events(web.store, mailbox_id, 200)],
    }
    return render(request, "mailbox.html", context)
