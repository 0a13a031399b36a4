"""Batch: upload a file, see every bad line or a preview, start; and ask each user.

The file is read whole before anything is made (``service.batchfile``): a bad line is
named with its number and the reason and nothing starts. A good file is shown as a
preview (kept in a draft) until the person starts it. With "ask each user", mailboxes
without a password wait for their users, who get a one-time link by email
(``service.invites``); the invitations page sends a link again.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import PurePath
from typing import Annotated, Final

from fastapi import APIRouter, Depends, Request
from starlette.datastructures import UploadFile
from starlette.responses import RedirectResponse, Response

from mailmover.errors import UsageError
from mailmover.service import access, audit, invites
from mailmover.service.batchfile import BatchOptions, check_batch
from mailmover.service.credentials import AdminLogin
from mailmover.service.emails import EmailFailed, SmtpSettings
from mailmover.service.jobs import JobSpec, NotFound, create_job_from_batch
from mailmover.service.preflight import check_rows, failures
from mailmover.service.transfers import SideName, job_name
from mailmover.web.auth import CurrentUser, State
from mailmover.web.config import WebConfig
from mailmover.web.drafts import Draft, Drafts, drafts, make_once
from mailmover.web.invites import TOO_MANY
from mailmover.web.state import render
from mailmover.web.wizard import login_budget

router = APIRouter()
DraftStore = Annotated[Drafts, Depends(drafts)]
#: the largest file taken (a 10,000-line batch is well under 2 MB)
MAX_UPLOAD: Final = 5_000_000
SIDES: Final[tuple[SideName, SideName]] = ("source", "dest")
#: why no job is made while the person's wrong mail passwords are spent (service.loginguard)
JOBS_REFUSED: Final = (
    "Too many wrong mail passwords in your transfers and checks: nothing new can start "
    "for a minute. Wait a minute, then try again."
)


def invite_settings(config: WebConfig) -> invites.InviteSettings:
    """Where invitation links point and how they are sent; ``UsageError`` without SMTP."""
    smtp = config.smtp or SmtpSettings.from_env(config.env)
    if smtp is None:
        raise UsageError(
            "this server cannot send email, so it cannot ask users: set MAILMOVER_SMTP_HOST"
        )
    days = config.env.get("MAILMOVER_INVITE_DAYS", "").strip()
    try:
        ttl = timedelta(days=float(days)) if days else invites.DEFAULT_TTL
    except ValueError:
        raise UsageError("MAILMOVER_INVITE_DAYS is a number of days") from None
    if ttl <= timedelta(0):
        raise UsageError("MAILMOVER_INVITE_DAYS must be above 0")
    return invites.InviteSettings(config.public_url, smtp, ttl)


def _upload(
    request: Request, values: dict[str, str], status: int | None = None, **context: object
) -> Response:
    if status is None:
        status = 400 if context.get("problems") or context.get("error") else 200
    return render(request, "batch_upload.html", {"values": values} | context, status)


@router.get("/batches/new")
def batch_new(request: Request, user: CurrentUser) -> Response:
    return _upload(request, {})


@router.post("/batches/new")
async def batch_upload(
    request: Request, user: CurrentUser, store: DraftStore, web: State
) -> Response:
    form = await request.form()
    values = {k: v.strip() for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}
    upload = form.get("file")
    data = await upload.read(MAX_UPLOAD + 1) if isinstance(upload, UploadFile) else b""
    await form.close()  # the uploaded file's temporary copy
    if not isinstance(upload, UploadFile) or not upload.filename:
        return _upload(request, values, error="Choose the batch file to upload.")
    if len(data) > MAX_UPLOAD:
        return _upload(request, values, error="The file is larger than 5 MB; split it.")
    ask = values.get("ask_users") == "on"
    try:
        if ask:
            invite_settings(web.config)
        name = values.get("name") or batch_name(upload.filename)
        admins = {side: admin_login(values, side) for side in SIDES}
        options = BatchOptions(
            source_server=values.get("source_server") or None,
            dest_server=values.get("dest_server") or None,
            source_admin=admins["source"] is not None,
            dest_admin=admins["dest"] is not None,
            ask_users=ask,
        )
        rows, problems = check_batch(data, options)
        unchecked = 0
        # The wizard's limit on wrong mail passwords: a file is no password oracle.
        address = request.client.host if request.client else "unknown"
        budget = web.limiter.bound(login_budget(user), address)
        checked = not problems and values.get("preflight") == "on"
        # Jobs are refused on the person's budget alone, as the runners count it.
        left = budget.remaining() if checked else web.limiter.remaining(login_budget(user))
        if not problems and left <= 0:
            return _upload(request, values, 429, error=TOO_MANY if checked else JOBS_REFUSED)
        if checked:
            known = [r for r in rows if not options.asked(r)]
            checks = await check_rows(known, None, admins["source"], admins["dest"], budget=budget)
            problems = failures(checks)
            unchecked = sum(1 for c in checks if not c.checked)
    except UsageError as exc:
        return _upload(request, values, error=exc.message)
    if unchecked:
        error = (
            f"Too many wrong passwords: the pre-flight stopped and {unchecked} line(s) were "
            "not checked. Wait a minute, then upload the file again."
        )
        return _upload(request, values, 429, error=error, problems=problems,
                       filename=upload.filename)  # fmt: skip
    if problems:
        return _upload(request, values, problems=problems, filename=upload.filename)
    draft = store.new(
        user.id, rows=rows, options=options, name=name, checked=checked,
        admins={side: login for side, login in admins.items() if login is not None},
        filename=PurePath(upload.filename).name,
    )  # fmt: skip
    return RedirectResponse(f"/batches/{draft.id}/preview", status_code=303)


def admin_login(values: dict[str, str], side: SideName) -> AdminLogin | None:
    """The side's admin login from the form (a master user or an authorization identity)."""
    kind = values.get(f"{side}_admin_kind", "")
    if not kind:
        return None
    if kind not in ("master", "authzid"):
        raise UsageError("an admin login is a master user or a SASL authorization identity")
    user, secret = values.get(f"{side}_admin_user", ""), values.get(f"{side}_admin_password", "")
    if not user or not secret:
        where = "source" if side == "source" else "destination"
        raise UsageError(f"the {where}'s admin login needs the admin's name and password")
    return AdminLogin("master" if kind == "master" else "authzid", user, secret)


def batch_name(filename: str) -> str:
    """A fresh job name made from the file's name: ``team-3f9a1c``."""
    return job_name(PurePath(filename).stem, "batch")


@router.get("/batches/{draft_id}/preview")
def batch_preview(
    request: Request, draft_id: str, user: CurrentUser, store: DraftStore
) -> Response:
    return _preview(request, store.get(draft_id, user.id))


def _preview(
    request: Request, draft: Draft, error: str | None = None, status: int = 400
) -> Response:
    options = draft.options or BatchOptions()
    rows = [(r, options.asked(r)) for r in draft.rows]
    context = {"draft": draft, "rows": rows, "asked": sum(1 for _, a in rows if a),
               "admins": draft.admins, "error": error}  # fmt: skip
    return render(request, "batch_preview.html", context, status if error else 200)


@router.post("/batches/{draft_id}/start")
async def batch_start(
    request: Request, draft_id: str, user: CurrentUser, store: DraftStore, web: State
) -> Response:
    draft = store.get(draft_id, user.id)
    form = await request.form()
    name = form.get("name")
    name = name.strip() if isinstance(name, str) and name.strip() else draft.name

    def create() -> str:
        spec = JobSpec(
            name, owner=user.email, owner_id=user.id, source_admin=draft.admins.get("source"),
            dest_admin=draft.admins.get("dest"), logins_checked=draft.checked,
        )  # fmt: skip
        job = create_job_from_batch(web.store, web.box, draft.rows, spec)
        detail = f"{len(draft.rows)} mailbox(es) from {draft.filename}"
        audit.record(web.store, user, "created", job, detail)
        return job

    if draft.job is not None:  # started already (a second click)
        return RedirectResponse(f"/transfers/{draft.job}", status_code=303)
    asked = any((draft.options or BatchOptions()).asked(r) for r in draft.rows)
    if not draft.checked and not web.limiter.allowed(login_budget(user)):
        return _preview(request, draft, JOBS_REFUSED, 429)
    try:
        job, made = await make_once(store, draft, create)
    except UsageError as exc:
        return _preview(request, draft, exc.message)
    if not made:  # a second click: the first one asks the users
        return RedirectResponse(f"/transfers/{job}", status_code=303)
    if asked:
        try:
            await invites.send_invitations(web.store, job, invite_settings(web.config))
        except (EmailFailed, UsageError):
            return RedirectResponse(f"/batches/{job}/invitations?failed=1", status_code=303)
        return RedirectResponse(f"/batches/{job}/invitations?sent=1", status_code=303)
    return RedirectResponse(f"/transfers/{job}", status_code=303)


@router.get("/batches/{job}/invitations")
def batch_invitations(request: Request, job: str, user: CurrentUser, web: State) -> Response:
    access.check(web.store, user, job)
    context = {
        "job": job,
        "invitations": invites.invitations(web.store, job),
        "sent": request.query_params.get("sent"),
        "failed": request.query_params.get("failed"),
        "resent": request.query_params.get("resent"),
    }
    return render(request, "batch_invitations.html", context)


@router.post("/batches/{job}/invitations/{mailbox_id}/resend")
async def batch_resend(job: str, mailbox_id: int, user: CurrentUser, web: State) -> Response:
    access.check(web.store, user, job)
    if mailbox_id not in {i.mailbox_id for i in invites.invitations(web.store, job)}:
        raise NotFound(f"no invitation for mailbox {mailbox_id} in {job!r}")
    try:
        sent = await invites.resend(web.store, mailbox_id, invite_settings(web.config))
    except EmailFailed:
        return RedirectResponse(f"/batches/{job}/invitations?failed=1", status_code=303)
    audit.record(web.store, user, "sent an invitation again", job, sent.email)
    return RedirectResponse(f"/batches/{job}/invitations?resent={mailbox_id}", status_code=303)
