"""New transfer, step by step: where → sign in → pre-flight → choose → confirm.

Each step is a plain form; what was given so far is kept in a draft (``web.drafts``),
passwords encrypted, and is never written back into a page. The last step makes a
one-mailbox job (``service.transfers``) and goes to its page.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from mailmover.errors import UsageError
from mailmover.service import audit
from mailmover.service.accounts import Account
from mailmover.service.credentials import password_spec
from mailmover.service.signinlimits import person_key
from mailmover.service.transfers import (
    CUSTOM,
    Choices,
    SideForm,
    SideName,
    create_transfer,
    parse_mapping,
    preflight,
    providers,
)
from mailmover.web.auth import CurrentUser, State
from mailmover.web.drafts import Draft, Drafts, drafts, make_once, signins
from mailmover.web.invites import TOO_MANY
from mailmover.web.state import render, web_state

router = APIRouter()
DraftStore = Annotated[Drafts, Depends(drafts)]
SIDES: tuple[SideName, SideName] = ("source", "dest")
SIDE_WORDS = {"source": "Your mail is now at", "dest": "Move it to"}


def _side_form(form: FormData, side: str) -> SideForm:
    def text(name: str) -> str:
        value = form.get(f"{side}_{name}", "")
        return value.strip() if isinstance(value, str) else ""

    port = text("port")
    if port and not port.isdigit():
        raise UsageError(f"the port is a number, not {port[:10]!r}")
    security = text("security") or "tls"
    if security not in ("tls", "starttls", "plain"):
        raise UsageError("choose how the connection is secured")
    return SideForm(
        provider=text("provider") or CUSTOM,
        user=text("user"),
        host=text("host"),
        port=int(port) if port else None,
        security=security,  # type: ignore[arg-type]
    )


def login_budget(user: Account) -> str:
    """The rate limiter's key for the mail logins a person tries (wizard and API share it)."""
    return person_key(user.id)


def _oauth_for(request: Request, form: SideForm | None) -> str | None:
    """The OAuth2 provider that can sign this side in here, if any."""
    if form is None:
        return None
    offered = next((p.oauth for p in providers() if p.name == form.provider), None)
    return offered if offered in signins(request).clients else None


def _where(request: Request, values: dict[str, Any], error: str | None = None) -> Response:
    context = {"providers": providers(), "values": values, "error": error, "sides": SIDE_WORDS}
    return render(request, "wizard_where.html", context, 400 if error else 200)


@router.get("/new")
def new_transfer(request: Request, user: CurrentUser) -> Response:
    return _where(request, {})


@router.post("/new")
async def new_transfer_where(request: Request, user: CurrentUser, store: DraftStore) -> Response:
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}
    try:
        sides = {side: _side_form(form, side) for side in SIDES}
        for side, side_form in sides.items():
            try:
                side_form.endpoint()
            except UsageError as exc:
                where = "the source" if side == "source" else "the destination"
                raise UsageError(f"For {where}: {exc.message}") from None
    except UsageError as exc:
        return _where(request, values, exc.message)
    draft = store.new(user.id, source=sides["source"], dest=sides["dest"])
    return RedirectResponse(f"/new/{draft.id}/signin", status_code=303)


def _signin(
    request: Request, draft: Draft, errors: dict[str, str] | None = None, status: int = 200
) -> Response:
    sides = []
    for side in SIDES:
        form = draft.source if side == "source" else draft.dest
        assert form is not None
        endpoint = form.endpoint()
        have = draft.secrets.get(side)
        kind = None
        if have is not None:
            kind = web_state(request).box.decrypt(have).get("kind")
        sides.append({
            "side": side, "words": SIDE_WORDS[side], "user": endpoint.user,
            "host": endpoint.host, "oauth": _oauth_for(request, form), "kept": kind,
            "error": (errors or {}).get(side),
        })  # fmt: skip
    context = {"draft": draft, "sides": sides, "error": (errors or {}).get("all")}
    return render(request, "wizard_signin.html", context, status)


@router.get("/new/{draft_id}/signin")
def signin_step(request: Request, draft_id: str, user: CurrentUser, store: DraftStore) -> Response:
    return _signin(request, store.get(draft_id, user.id))


@router.post("/new/{draft_id}/signin")
async def signin_post(
    request: Request, draft_id: str, user: CurrentUser, store: DraftStore, web: State
) -> Response:
    draft = store.get(draft_id, user.id)
    form = await request.form()
    errors: dict[str, str] = {}
    for side in SIDES:
        given = form.get(f"{side}_password", "")
        if isinstance(given, str) and given:
            draft.secrets[side] = web.box.encrypt(password_spec(given))
        elif side not in draft.secrets:
            errors[side] = "Enter the password (or sign in)."
    store.save(draft)
    if errors:
        return _signin(request, draft, errors, 400)
    key = login_budget(user)
    address = request.client.host if request.client else "unknown"
    attempt = web.limiter.begin(key, address)  # counted as wrong until both sign in
    if attempt is None:
        return _signin(request, draft, {"all": TOO_MANY}, 429)
    assert draft.source is not None and draft.dest is not None
    result = await preflight(draft.source, draft.dest, draft.specs(web.box))
    draft.preflight = result
    if not any(result.logins.values()):
        attempt.succeeded()
    if result.ok:
        store.save(draft)
        return RedirectResponse(f"/new/{draft.id}/check", status_code=303)
    for side in SIDES:
        reason = result.logins[side]
        if reason is not None:
            errors[side] = f"Could not sign in: {reason}"
            draft.secrets.pop(side, None)  # a wrong password is not kept
    store.save(draft)
    if result.reason:
        errors["all"] = f"Signed in, but the folders could not be read: {result.reason}"
    return _signin(request, draft, errors, 400)


def _check(request: Request, draft: Draft, error: str | None = None) -> Response:
    if draft.preflight is None or not draft.preflight.ok:
        return RedirectResponse(f"/new/{draft.id}/signin", status_code=303)
    mapping = "\n".join(f"{old} = {new}" for old, new in draft.choices.mapping.items())
    context = {"draft": draft, "pre": draft.preflight, "choices": draft.choices,
               "mapping": mapping, "error": error}  # fmt: skip
    return render(request, "wizard_check.html", context, 400 if error else 200)


@router.get("/new/{draft_id}/check")
def check_step(request: Request, draft_id: str, user: CurrentUser, store: DraftStore) -> Response:
    return _check(request, store.get(draft_id, user.id))


def _date(form: FormData, name: str, words: str) -> date | None:
    value = form.get(name, "")
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise UsageError(f"{words} must be a date (YYYY-MM-DD)") from None


@router.post("/new/{draft_id}/check")
async def check_post(
    request: Request, draft_id: str, user: CurrentUser, store: DraftStore
) -> Response:
    draft = store.get(draft_id, user.id)
    if draft.preflight is None:
        return RedirectResponse(f"/new/{draft.id}/signin", status_code=303)
    form = await request.form()
    names = [f.name for f in draft.preflight.folders]
    chosen = {v for v in form.getlist("folder") if isinstance(v, str)}
    try:
        if not chosen & set(names):
            raise UsageError("choose at least one folder")
        text = form.get("mapping", "")
        mapping = parse_mapping(text if isinstance(text, str) else "")
        unknown = [old for old in mapping if old not in names]
        if unknown:
            raise UsageError(f"the folder map names a folder the source lacks: {unknown[0]!r}")
        choices = Choices(
            exclude=tuple(n for n in names if n not in chosen),
            mapping=mapping,
            since=_date(form, "since", "the first date"),
            before=_date(form, "before", "the last date"),
        )
        assert draft.source is not None and draft.dest is not None
        choices.settings(draft.source, draft.dest)  # checks the dates
    except UsageError as exc:
        return _check(request, draft, exc.message)
    draft.choices = choices
    store.save(draft)
    return RedirectResponse(f"/new/{draft.id}/confirm", status_code=303)


@router.get("/new/{draft_id}/confirm")
def confirm_step(request: Request, draft_id: str, user: CurrentUser, store: DraftStore) -> Response:
    draft = store.get(draft_id, user.id)
    if draft.preflight is None or not draft.preflight.ok:
        return RedirectResponse(f"/new/{draft.id}/signin", status_code=303)
    excluded = set(draft.choices.exclude)
    folders = [f for f in draft.preflight.folders if f.name not in excluded]
    assert draft.source is not None and draft.dest is not None
    context = {
        "draft": draft,
        "source": draft.source.endpoint(),
        "dest": draft.dest.endpoint(),
        "folders": folders,
        "messages": sum(f.messages for f in folders),
        "bytes": sum(f.bytes for f in folders),
        "choices": draft.choices,
    }
    return render(request, "wizard_confirm.html", context)


@router.post("/new/{draft_id}/confirm")
async def confirm_post(
    request: Request, draft_id: str, user: CurrentUser, store: DraftStore, web: State
) -> Response:
    draft = store.get(draft_id, user.id)
    if draft.job is None and (draft.preflight is None or not draft.preflight.ok):
        return RedirectResponse(f"/new/{draft.id}/signin", status_code=303)

    def create() -> str:
        source, dest = draft.source, draft.dest
        assert source is not None and dest is not None
        job = create_transfer(
            web.store, web.box, source, dest, draft.specs(web.box), draft.choices,
            owner=user.email, owner_id=user.id,
        )  # fmt: skip
        detail = f"{source.endpoint().url} → {dest.endpoint().url}"
        audit.record(web.store, user, "created", job, detail)
        return job

    job, _made = await make_once(store, draft, create)
    return RedirectResponse(f"/transfers/{job}", status_code=303)
