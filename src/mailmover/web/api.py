"""The JSON API: the same service calls and the same permission checks as the pages.

A script signs in with an API token (``Authorization: Bearer mmt_…``, made under
"API tokens"); a browser's session works too, with the CSRF token in the
``X-CSRF-Token`` header for anything that changes state.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from mailmover.service import access, jobs
from mailmover.service.schedule import job_detail
from mailmover.web.auth import CurrentUser, State
from mailmover.web.transfers import act, report, schedule, totals

router = APIRouter(prefix="/api", tags=["transfers"])


class ActionBody(BaseModel):
    """Which mailbox (its source or destination user or URL); none: every one."""

    mailbox: str | None = None


class ScheduleBody(BaseModel):
    """A delta pass every this many hours; null: no schedule."""

    hours: float | None = None


def _totals(boxes: list[jobs.MailboxStatus]) -> dict[str, Any]:
    t = totals(boxes)
    return {
        "words": t.words, "messages_total": t.messages_total,
        "messages_copied": t.messages_copied, "messages_failed": t.messages_failed,
        "bytes_total": t.bytes_total, "bytes_copied": t.bytes_copied, "rate": t.rate,
        "eta_seconds": t.eta_seconds, "by_state": t.by_state,
    }  # fmt: skip


@router.get("/transfers")
def list_transfers(web: State, user: CurrentUser) -> list[dict[str, Any]]:
    """The transfers this account sees, newest first."""
    out = []
    for job, boxes in access.visible_jobs_with_mailboxes(web.store, user):
        out.append(job.to_dict() | _totals(boxes))
    return out


@router.get("/transfers/{job}")
def get_transfer(job: str, web: State, user: CurrentUser) -> dict[str, Any]:
    """One transfer: its schedule, totals and every mailbox's state and counters."""
    access.check(web.store, user, job)
    detail = job_detail(web.store, job)
    boxes = jobs.status(web.store, job)
    return {
        "name": detail.name,
        "owner": detail.owner,
        "state": detail.state,
        "created_at": detail.created_at.isoformat(),
        "delta_every_hours": detail.delta_every_hours,
        "mailboxes": [b.to_dict() for b in boxes],
    } | _totals(boxes)


@router.post("/transfers/{job}/{action}")
def transfer_action(
    job: str, action: str, web: State, user: CurrentUser, body: ActionBody | None = None
) -> dict[str, Any]:
    """pause, resume, cancel (a mailbox or all), delta, complete or retry."""
    n = act(web.store, user, job, action, body.mailbox if body else None)
    return {"action": action, "mailboxes": n}


@router.put("/transfers/{job}/schedule")
def put_schedule(job: str, body: ScheduleBody, web: State, user: CurrentUser) -> dict[str, Any]:
    """Set or clear the delta schedule."""
    schedule(web.store, user, job, body.hours)
    return {"delta_every_hours": body.hours}


@router.get("/transfers/{job}/report")
def get_report(job: str, web: State, user: CurrentUser) -> dict[str, Any]:
    """Every mailbox and folder with its counts and passes, and every message not copied."""
    return report(web.store, user, job, "api")
