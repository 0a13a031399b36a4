"""Signing in and out, and the dependencies that say who is asking.

``current_user`` is the signed-in account (a visitor who is not signed in is sent
to the sign-in page); ``require_admin`` also wants the administrator role.
"""

from __future__ import annotations

from typing import Annotated, Final
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from starlette.responses import RedirectResponse, Response

from mailmover.service.accounts import Account, AccountError, authenticate, normal_email
from mailmover.service.sessions import close_session, open_session
from mailmover.web.state import WebState, render, web_state

#: The session cookie: a random token whose hash is in the database.
SESSION_COOKIE: Final = "mm_session"

router = APIRouter()


class SignInRequired(Exception):
    """The page needs a signed-in account; ``next_url`` is where to go after."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


class Forbidden(Exception):
    """The signed-in account may not do this (not an administrator)."""


def current_user(request: Request) -> Account:
    """The signed-in account; ``SignInRequired`` (a redirect to sign in) when none."""
    session = getattr(request.state, "session", None)
    if session is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(target)
    account: Account = session.account
    return account


def require_admin(user: Annotated[Account, Depends(current_user)]) -> Account:
    """The signed-in account if it is an administrator; ``Forbidden`` otherwise."""
    if not user.is_admin:
        raise Forbidden()
    return user


CurrentUser = Annotated[Account, Depends(current_user)]
AdminUser = Annotated[Account, Depends(require_admin)]
State = Annotated[WebState, Depends(web_state)]


def bearer_token(request: Request) -> str | None:
    """The API token of ``Authorization: Bearer TOKEN``, if the request has one."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def safe_next(target: str | None) -> str:
    """``target`` if it is a path of this site, else the transfers list."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/transfers"


def signin_url(next_url: str) -> str:
    return f"/signin?next={quote(next_url, safe='/')}"


@router.get("/signin")
def signin_page(request: Request, next: str = "/transfers", changed: bool = False) -> Response:
    if getattr(request.state, "session", None) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return render(
        request, "signin.html", {"next": safe_next(next), "email": "", "changed": changed}
    )


@router.post("/signin")
def signin(
    request: Request,
    web: State,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/transfers",
) -> Response:
    address = request.client.host if request.client else "unknown"
    try:
        key = web.limiter.account_key(normal_email(email))
    except AccountError:
        key = web.limiter.account_key(email.strip().lower())
    context = {"next": safe_next(next), "email": email.strip()}
    attempt = web.limiter.begin(key, address)  # counted as wrong until it is right
    if attempt is None:
        error = "Too many wrong passwords. Wait a minute, then try again."
        return render(request, "signin.html", context | {"error": error}, status_code=429)
    account = authenticate(web.store, email, password)
    if account is None:
        error = "That email and password do not match an account."
        return render(request, "signin.html", context | {"error": error}, status_code=401)
    attempt.succeeded()
    earlier = request.cookies.get(SESSION_COOKIE)
    if earlier:  # signing in over a session ends it: one browser, one live session
        close_session(web.store, earlier)
    token, _session = open_session(web.store, account)
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        secure=web.config.cookie_secure,
        samesite="lax",
        path="/",
    )
    return response


@router.post("/signout")
def signout(request: Request, web: State) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        close_session(web.store, token)
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
