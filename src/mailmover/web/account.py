"""The signed-in account's own page: its password, and its API tokens (made, shown once,
and revoked)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from mailmover.service.accounts import AccountError, WrongPassword, change_own_password
from mailmover.service.apitokens import create_token, list_tokens, revoke_token
from mailmover.web.auth import CurrentUser, State
from mailmover.web.state import render

router = APIRouter(prefix="/account")


def _page(
    request: Request, web: State, user: CurrentUser, status_code: int = 200, **extra: object
) -> Response:
    context = {"tokens": list_tokens(web.store, user), "done": request.query_params.get("done")}
    return render(request, "account_tokens.html", context | extra, status_code=status_code)


@router.get("/tokens")
def tokens(request: Request, web: State, user: CurrentUser) -> Response:
    return _page(request, web, user)


@router.post("/tokens")
def make_token(
    request: Request, web: State, user: CurrentUser, name: Annotated[str, Form()] = ""
) -> Response:
    try:
        token, made = create_token(web.store, user, name)
    except AccountError as exc:
        return _page(request, web, user, 400, error=exc.message)
    # The one time the token is shown; it is not kept anywhere but its hash.
    response = _page(request, web, user, new_token=token, new_name=made.name)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/tokens/{token_id}/revoke")
def revoke(web: State, user: CurrentUser, token_id: int) -> Response:
    revoke_token(web.store, user, token_id)
    return RedirectResponse("/account/tokens?done=revoked", status_code=303)


@router.post("/password")
def change_password(
    request: Request,
    web: State,
    user: CurrentUser,
    current: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
) -> Response:
    address = request.client.host if request.client else "unknown"
    key = web.limiter.account_key(user.email)
    attempt = web.limiter.begin(key, address)  # counted as wrong until it is right
    if attempt is None:
        error = "Too many wrong passwords. Wait a minute, then try again."
        return _page(request, web, user, 429, password_error=error)
    try:
        change_own_password(web.store, user, current, password)
    except AccountError as exc:
        if not isinstance(exc, WrongPassword):  # the current one was right
            attempt.succeeded()
        return _page(request, web, user, 400, password_error=exc.message)
    attempt.succeeded()
    return RedirectResponse("/signin?changed=1", status_code=303)
