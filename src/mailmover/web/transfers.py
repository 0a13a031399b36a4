"""The transfers list and a transfer's page: progress, actions, event log, reports.

Every route checks ``service.access`` first: a transfer another user owns is
answered exactly like one that does not exist (404).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Final

from fastapi import APIRouter, Form, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response, StreamingResponse

from mailmover.errors import UsageError
from mailmover.service import access, audit, jobs
from mailmover.service.accounts import Account
from mailmover.service.apitokens import token_account
from mailmover.service.joblog import job_events, job_version
from mailmover.service.jobs import MailboxStatus
from mailmover.service.reports import report_csv, report_data
from mailmover.service.schedule import job_detail, set_delta_schedule
from mailmover.service.sessions import find_session
from mailmover.service.states import ACTIVE_STATES, END_STATES, STATE_WORDS
from mailmover.store.database import Store
from mailmover.web.auth import SESSION_COOKIE, CurrentUser, State, bearer_token
from mailmover.web.state import WebState, render

router = APIRouter()

#: What each action button does: the service function and the words for the audit log.
ACTIONS: Final[dict[str, tuple[Callable[..., int], str, bool]]] = {
    # name: (function, audit verb, takes a mailbox)
    "pause": (jobs.pause, "paused", True),
    "resume": (jobs.resume, "resumed", True),
    "cancel": (jobs.cancel, "cancelled", True),
    "delta": (jobs.delta, "asked for a delta pass", False),
    "complete": (jobs.complete, "completed", False),
    "retry": (jobs.retry_errors, "retried the errors", False),
}
#: Seconds between looks at the database while a page listens for progress.
LIVE_EVERY: Final = 1.0
#: Every this many looks, a live stream checks that its reader may still read it.
RECHECK_EVERY: Final = 30


@dataclass(frozen=True)
class Totals:
    """A transfer's mailboxes added up."""

    mailboxes: int
    messages_total: int
    messages_copied: int
    messages_failed: int
    bytes_total: int
    bytes_copied: int
    bytes_left: int
    rate: float | None
    eta_seconds: float | None
    by_state: dict[str, int]
    words: str
    tone_state: str


def totals(boxes: list[MailboxStatus]) -> Totals:
    """The sums, the combined rate and ETA, and the transfer's state in words."""
    by_state: dict[str, int] = {}
    for b in boxes:
        by_state[b.state] = by_state.get(b.state, 0) + 1
    rates = [b.rate for b in boxes if b.rate]
    rate = sum(rates) if rates else None
    # What is still to move: of the mailboxes that will run (bytes_left counts only the
    # folders begun so far).
    left = sum(
        max(b.bytes_left, b.bytes_total - b.bytes_copied) for b in boxes if b.state in ACTIVE_STATES
    )
    if len(boxes) == 1:
        words, main = boxes[0].words, boxes[0].state
    else:
        order = ["failed", "running", "waiting", "paused", "queued", "awaiting_user",
                 "completing", "synced", "completed_with_errors", "completed",
                 "cancelled"]  # fmt: skip
        parts = [f"{by_state[s]} {STATE_WORDS.get(s) or s.replace('_', ' ')}"
                 for s in order if s in by_state]  # fmt: skip
        words = ", ".join(parts) or "no mailboxes"
        main = next((s for s in order if s in by_state), "queued")
    return Totals(
        mailboxes=len(boxes),
        messages_total=sum(b.messages_total for b in boxes),
        messages_copied=sum(b.messages_copied for b in boxes),
        messages_failed=sum(b.messages_failed for b in boxes),
        bytes_total=sum(b.bytes_total for b in boxes),
        bytes_copied=sum(b.bytes_copied for b in boxes),
        bytes_left=left,
        rate=rate,
        eta_seconds=left / rate if rate else None,
        by_state=by_state,
        words=words,
        tone_state=main,
    )


@router.get("/transfers")
def transfers_list(request: Request, web: State, user: CurrentUser) -> Response:
    rows = []
    for job, boxes in access.visible_jobs_with_mailboxes(web.store, user):
        rows.append({"job": job, "boxes": boxes[:3], "more": len(boxes) - 3,
                     "totals": totals(boxes)})  # fmt: skip
    return render(request, "transfers.html", {"rows": rows})


#: Lines of a transfer's event log on its page (each mailbox's page has its own).
LOG_SHOWN: Final = 50
#: Messages not copied listed on a transfer's page (the report has them all).
NOT_COPIED_SHOWN: Final = 100


#: A transfer with up to this many mailboxes shows each with its folders; a larger one,
#: one row per mailbox (problems first), each linked to its own page.
DETAILED_UP_TO: Final = 5
#: Rows of mailboxes a large transfer's page shows at once (``?state=`` narrows them).
ROWS_SHOWN: Final = 200
#: Which mailboxes a large transfer lists first.
_FIRST: Final = ("failed", "waiting", "completed_with_errors", "paused", "running",
                 "completing", "queued", "synced", "completed", "cancelled")  # fmt: skip


def _live_context(store: Store, job: str, state: str | None = None) -> dict[str, Any]:
    boxes = jobs.status(store, job)
    context: dict[str, Any] = {
        "job": job,
        "boxes": boxes,
        "totals": totals(boxes),
        "finished": all(b.state in END_STATES for b in boxes),
        "compact": len(boxes) > DETAILED_UP_TO,
        "state_filter": state if state in _FIRST else None,
        "folders": {},
        "not_copied": [],
        "not_copied_count": 0,
    }
    if context["compact"]:
        rank = {s: n for n, s in enumerate(_FIRST)}
        chosen = [b for b in boxes if context["state_filter"] in (None, b.state)]
        chosen.sort(key=lambda b: (rank.get(b.state, 99), b.line or 0, b.id))
        context["rows"] = chosen[:ROWS_SHOWN]
        context["rows_more"] = len(chosen) - len(context["rows"])
        return context
    data = report_data(store, job)["mailboxes"]
    missed = [(m["source"], miss) for m in data for miss in m["not_copied"]]
    context["folders"] = {m["id"]: m["folders"] for m in data}
    context["not_copied"] = missed[:NOT_COPIED_SHOWN]
    context["not_copied_count"] = len(missed)
    return context


@router.get("/transfers/{job}")
def transfer_page(request: Request, job: str, web: State, user: CurrentUser) -> Response:
    access.check(web.store, user, job)
    context = _live_context(web.store, job, request.query_params.get("state")) | {
        "detail": job_detail(web.store, job),
        "log": job_events(web.store, job, LOG_SHOWN),
        "done": request.query_params.get("done"),
        "count": int(n) if (n := request.query_params.get("n", "")).isdigit() else 0,
    }
    return render(request, "transfer.html", context)


@router.get("/transfers/{job}/live")
def transfer_live(request: Request, job: str, web: State, user: CurrentUser) -> Response:
    """The page's progress part alone (what the live stream sends)."""
    access.check(web.store, user, job)
    state = request.query_params.get("state")
    return render(request, "_live.html", _live_context(web.store, job, state))


def _render_live(request: Request, web: WebState, job: str) -> str:
    template = web.templates.get_template("_live.html")
    state = request.query_params.get("state")
    return template.render({"request": request} | _live_context(web.store, job, state))


def _event(name: str, html: str) -> str:
    data = "".join(f"data: {line}\n" for line in html.splitlines() or [""])
    return f"event: {name}\n{data}\n"


def still_allowed(request: Request, store: Store, job: str) -> bool:
    """True while the reader of a live stream may still read it: their session or API
    token is live, and the job is theirs by their account as it is now (a role taken
    away counts)."""
    token = request.cookies.get(SESSION_COOKIE)
    bearer = bearer_token(request)
    if token:
        session = find_session(store, token)
        account = session.account if session is not None else None
    else:
        account = token_account(store, bearer) if bearer else None
    return account is not None and access.can_see(store, account, job)


@router.get("/transfers/{job}/events")
async def transfer_events(request: Request, job: str, web: State, user: CurrentUser) -> Response:
    """Server-sent events: the progress part again each time it changes."""
    await run_in_threadpool(access.check, web.store, user, job)

    async def stream() -> AsyncIterator[str]:
        seen: tuple[Any, ...] | None = None
        html, quiet = None, 0
        ticks = 0
        while not await request.is_disconnected():
            ticks += 1
            if ticks % RECHECK_EVERY == 0 and not await run_in_threadpool(
                still_allowed, request, web.store, job
            ):
                return  # signed out, disabled, or the transfer is no longer theirs
            # The page is drawn again only when the job changed (one cheap query).
            version = await run_in_threadpool(job_version, web.store, job)
            if version != seen:
                seen = version
                drawn = await run_in_threadpool(_render_live, request, web, job)
                if drawn != html:
                    html, quiet = drawn, 0
                    yield _event("live", drawn)
                    continue
            quiet += 1
            if quiet % 15 == 0:
                yield ": still here\n\n"
            await asyncio.sleep(LIVE_EVERY)

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


@router.post("/transfers/{job}/schedule")
def transfer_schedule(
    job: str, web: State, user: CurrentUser, hours: Annotated[str, Form()] = ""
) -> Response:
    access.check(web.store, user, job)
    text = hours.strip()
    try:
        every = float(text) if text else None
    except ValueError:
        raise UsageError(f"a delta schedule is a number of hours, not {text[:20]!r}") from None
    schedule(web.store, user, job, every)
    return RedirectResponse(f"/transfers/{job}?done=schedule", status_code=303)


def act(store: Store, user: Account, job: str, action: str, mailbox: str | None) -> int:
    """Do ``action`` to the job (or one mailbox of it) for ``user``, audit-logged; how many
    mailboxes it touched. Shared by the pages and the JSON API."""
    access.check(store, user, job)
    if action not in ACTIONS:
        raise jobs.NotFound(f"there is no action {action!r}")
    function, verb, per_mailbox = ACTIONS[action]
    n = function(store, job, mailbox) if per_mailbox else function(store, job)
    audit.record(store, user, verb, job, f"mailbox {mailbox}" if mailbox else "all mailboxes")
    return int(n)


def schedule(store: Store, user: Account, job: str, hours: float | None) -> None:
    """Set the job's delta schedule for ``user``, audit-logged."""
    access.check(store, user, job)
    set_delta_schedule(store, job, hours)
    audit.record(store, user, "set the delta schedule", job,
                 f"every {hours:g} h" if hours else "none")  # fmt: skip


@router.post("/transfers/{job}/{action}")
def transfer_action(
    job: str,
    action: str,
    web: State,
    user: CurrentUser,
    mailbox: Annotated[str, Form()] = "",
) -> Response:
    n = act(web.store, user, job, action, mailbox.strip() or None)
    return RedirectResponse(f"/transfers/{job}?done={action}&n={n}", status_code=303)


def report(store: Store, user: Account, job: str, fmt: str) -> dict[str, Any]:
    """The job's report for ``user``, its download audit-logged."""
    access.check(store, user, job)
    data = report_data(store, job)
    audit.record(store, user, "downloaded a report", job, fmt)
    return data


@router.get("/transfers/{job}/report.{fmt}")
def transfer_report(job: str, fmt: str, web: State, user: CurrentUser) -> Response:
    if fmt not in ("csv", "json"):
        raise jobs.NotFound("a report is report.csv or report.json")
    data = report(web.store, user, job, fmt)
    if fmt == "csv":
        body, media = report_csv(data), "text/csv; charset=utf-8"
    else:
        body, media = json.dumps(data, indent=2), "application/json"
    disposition = f'attachment; filename="{job}-report.{fmt}"'
    return Response(body, media_type=media, headers={"Content-Disposition": disposition})
