"""The JSON API for making transfers: one mailbox (with its pre-flight), a batch file, and
the invitations of "ask each user" — the same service calls as the wizard and the batch
pages. Passwords go in; none ever comes back, not even in an error.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, SecretStr
from starlette.concurrency import run_in_threadpool

from mailmover.service import access, audit, invites
from mailmover.service.batchfile import BatchOptions, check_batch
from mailmover.service.credentials import password_spec
from mailmover.service.jobs import JobSpec, NotFound, create_job_from_batch
from mailmover.service.transfers import (
    Choices,
    FolderInfo,
    Preflight,
    SideForm,
    SideName,
    create_transfer,
    preflight,
)
from mailmover.web.auth import CurrentUser, State
from mailmover.web.batches import JOBS_REFUSED, batch_name, invite_settings
from mailmover.web.invites import TOO_MANY
from mailmover.web.wizard import login_budget

router = APIRouter(prefix="/api", tags=["new transfers"])


class Side(BaseModel):
    """One side: a provider preset (``custom`` for another server), the user, the password."""

    provider: str = "custom"
    user: str
    password: SecretStr
    host: str = ""
    port: int | None = None
    security: Literal["tls", "starttls", "plain"] = "tls"

    def form(self) -> SideForm:
        return SideForm(self.provider, self.user, self.host, self.port, self.security)


class NewTransfer(BaseModel):
    """One mailbox to move; ``check_only``: the pre-flight alone, nothing made."""

    source: Side
    dest: Side
    exclude: list[str] = Field(default_factory=list)
    mapping: dict[str, str] = Field(default_factory=dict)
    since: date | None = None
    before: date | None = None
    name: str | None = None
    check_only: bool = False


class NewBatch(BaseModel):
    """A batch file's text in any of the three formats; ``check_only``: the preview alone."""

    csv: str
    name: str | None = None
    source_server: str | None = None
    dest_server: str | None = None
    ask_users: bool = False
    check_only: bool = False


def _folder(f: FolderInfo) -> dict[str, Any]:
    return {"name": f.name, "dest_name": f.dest_name, "messages": f.messages, "bytes": f.bytes,
            "note": f.note, "renamed": f.renamed}  # fmt: skip


def _preflight(result: Preflight) -> dict[str, Any]:
    return {
        "ok": result.ok,
        "logins": result.logins,
        "reason": result.reason,
        "folders": [_folder(f) for f in result.folders],
        "limits": result.limits.__dict__ if result.limits else None,
    }


@router.post("/transfers", status_code=201)
async def new_transfer(body: NewTransfer, request: Request, web: State, user: CurrentUser) -> Any:
    """Check both sides (logins, folders, limits, renames), then make the transfer."""
    key = login_budget(user)
    address = request.client.host if request.client else "unknown"
    attempt = web.limiter.begin(key, address)  # the wizard's limit: no password oracle here
    if attempt is None:
        return JSONResponse({"error": TOO_MANY}, status_code=429)
    source, dest = body.source.form(), body.dest.form()
    specs: dict[SideName, dict[str, Any]] = {
        "source": password_spec(body.source.password.get_secret_value()),
        "dest": password_spec(body.dest.password.get_secret_value()),
    }
    choices = Choices(tuple(body.exclude), dict(body.mapping), body.since, body.before)
    result = await preflight(source, dest, specs, choices)
    checked = _preflight(result)
    if not any(result.logins.values()):
        attempt.succeeded()
    if not result.ok:
        return JSONResponse({"error": "the pre-flight failed"} | checked, status_code=422)
    if body.check_only:
        return JSONResponse(checked, status_code=200)

    def create() -> str:
        job = create_transfer(web.store, web.box, source, dest, specs, choices, name=body.name,
                              owner=user.email, owner_id=user.id)  # fmt: skip
        audit.record(web.store, user, "created", job, "one mailbox, through the API")
        return job

    job = await run_in_threadpool(create)
    return {"name": job} | checked


@router.post("/batches", status_code=201)
async def new_batch(body: NewBatch, web: State, user: CurrentUser) -> Any:
    """Read the whole file: every bad line (422, nothing made), a preview, or the new job.

    Refused (429) while the person's wrong mail passwords are spent (``service.loginguard``).
    """
    if body.ask_users:
        invite_settings(web.config)
    options = BatchOptions(body.source_server, body.dest_server, ask_users=body.ask_users)
    rows, problems = check_batch(body.csv, options)
    if problems:
        bad = [{"line": p.line, "reason": p.reason} for p in problems]
        return JSONResponse({"error": "the file has bad lines", "problems": bad}, 422)
    preview = [
        {"line": r.line, "source": r.source.url, "dest": r.dest.url,
         "asked": list(options.asked(r)), "email": r.email if options.asked(r) else None}
        for r in rows
    ]  # fmt: skip
    if body.check_only:
        return JSONResponse({"mailboxes": preview}, status_code=200)
    name = body.name or batch_name("batch")
    if not web.limiter.allowed(login_budget(user)):  # the person's, as the runners count
        return JSONResponse({"error": JOBS_REFUSED}, status_code=429)

    def create() -> str:
        spec = JobSpec(name, owner=user.email, owner_id=user.id)
        job = create_job_from_batch(web.store, web.box, rows, spec)
        audit.record(web.store, user, "created", job, f"{len(rows)} mailbox(es), through the API")
        return job

    job = await run_in_threadpool(create)
    invited = 0
    if any(options.asked(r) for r in rows):
        invited = len(await invites.send_invitations(web.store, job, invite_settings(web.config)))
    return {"name": job, "mailboxes": preview, "invited": invited}


def _invitation(i: invites.Invitation) -> dict[str, Any]:
    return {
        "mailbox_id": i.mailbox_id, "email": i.email, "sides": list(i.sides),
        "state": i.state, "sent_at": i.sent_at.isoformat() if i.sent_at else None,
        "sends": i.sends, "expires_at": i.expires_at.isoformat(),
        "used_at": i.used_at.isoformat() if i.used_at else None,
    }  # fmt: skip


@router.get("/batches/{job}/invitations")
def list_invitations(job: str, web: State, user: CurrentUser) -> list[dict[str, Any]]:
    """Who was asked for their password, and whether they answered."""
    access.check(web.store, user, job)
    return [_invitation(i) for i in invites.invitations(web.store, job)]


@router.post("/batches/{job}/invitations/{mailbox_id}/resend")
async def resend_invitation(
    job: str, mailbox_id: int, web: State, user: CurrentUser
) -> dict[str, Any]:
    """A new link for that user (the old one stops working), emailed now."""
    access.check(web.store, user, job)
    if mailbox_id not in {i.mailbox_id for i in invites.invitations(web.store, job)}:
        raise NotFound(f"no invitation for mailbox {mailbox_id} in {job!r}")
    sent = await invites.resend(web.store, mailbox_id, invite_settings(web.config))
    audit.record(web.store, user, "sent an invitation again", job, sent.email)
    return _invitation(sent)
