"""OAuth2 sign-in from the wizard and from invitation pages: off to the provider and back.

``/oauth/{provider}/start`` sends the browser to the provider with a fresh ``state``;
``/oauth/callback`` trades the code for tokens (``service.signin``) and files the
sign-in where it was asked for: a wizard draft's side, or an invitation's side.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from mailmover.errors import MailmoverError, UsageError
from mailmover.service.invites import InviteRefused, open_invitation
from mailmover.service.transfers import SideName
from mailmover.web.auth import State, current_user
from mailmover.web.drafts import drafts, signins
from mailmover.web.invites import oauth_given
from mailmover.web.state import render

router = APIRouter()


def _side(value: str) -> SideName:
    if value not in ("source", "dest"):
        raise UsageError("a sign-in is for the source or the destination")
    return "source" if value == "source" else "dest"


@router.get("/oauth/{provider}/start")
def oauth_start(
    request: Request,
    provider: str,
    web: State,
    side: str,
    draft: str = "",
    invite: str = "",
) -> Response:
    which = _side(side)
    purpose: dict[str, Any] = {"side": which}
    hint = None
    if invite:
        try:
            found = open_invitation(web.store, invite)
        except InviteRefused as exc:
            return render(request, "invite_refused.html", {"message": exc.message}, 410)
        purpose["invite"] = invite
        hint = found.users[which]
    else:
        user = current_user(request)
        held = drafts(request).get(draft, user.id)
        form = held.source if which == "source" else held.dest
        purpose["draft"] = held.id
        hint = form.user if form else None
    redirect_uri = str(request.url_for("oauth_callback"))
    url = signins(request).start(provider, redirect_uri, purpose, login_hint=hint)
    return RedirectResponse(url, status_code=303)


@router.get("/oauth/callback", name="oauth_callback")
async def oauth_callback(
    request: Request, web: State, state: str = "", code: str = "", error: str = ""
) -> Response:
    try:
        purpose, spec = await signins(request).finish(state, code or None, error or None)
    except MailmoverError as exc:
        context = {"title": "Sign-in not finished", "message": exc.message}
        return render(request, "error.html", context, 400)
    side: SideName = purpose["side"]
    if "invite" in purpose:
        token = purpose["invite"]
        oauth_given(request).add(token, side, spec)
        return RedirectResponse(f"/invite/{token}", status_code=303)
    user = current_user(request)
    held = drafts(request).get(purpose["draft"], user.id)
    held.secrets[side] = web.box.encrypt(spec)
    drafts(request).save(held)
    return RedirectResponse(f"/new/{held.id}/signin", status_code=303)
