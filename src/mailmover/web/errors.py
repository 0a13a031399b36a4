"""What a person sees when something is refused or goes wrong: a page in words, never a
stack trace, never a secret."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response

from mailmover.errors import MailmoverError
from mailmover.service.jobs import NotFound
from mailmover.web.auth import Forbidden, SignInRequired, signin_url
from mailmover.web.csrf import CsrfRefused
from mailmover.web.state import render

log = logging.getLogger("mailmover.web")


def route_pattern(request: Request) -> str:
    """The route's pattern (``/invite/{token}``), never the URL itself: a one-time link's
    token, a query string."""
    pattern = getattr(request.scope.get("route"), "path", None)
    if pattern is None:
        pattern = "/static/…" if request.url.path.startswith("/static/") else "(no route)"
    return str(pattern)


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _page(request: Request, status: int, title: str, message: str) -> Response:
    if _wants_json(request):
        return JSONResponse({"error": message}, status_code=status)
    return render(request, "error.html", {"title": title, "message": message}, status_code=status)


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    @app.exception_handler(SignInRequired)
    async def sign_in(request: Request, exc: SignInRequired) -> Response:
        if _wants_json(request):
            return JSONResponse({"error": "sign in first"}, status_code=401)
        if request.headers.get("hx-request"):
            return Response(status_code=204, headers={"HX-Redirect": signin_url(exc.next_url)})
        return RedirectResponse(signin_url(exc.next_url), status_code=303)

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> Response:
        return _page(request, 403, "Not allowed", "Only an administrator can do this.")

    @app.exception_handler(CsrfRefused)
    async def csrf(request: Request, exc: CsrfRefused) -> Response:
        message = (
            "This form has expired or did not come from this site. "
            "Go back, reload the page and try again."
        )
        return _page(request, 403, "Form refused", message)

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> Response:
        return _page(request, 404, "Not found", exc.message)

    @app.exception_handler(MailmoverError)
    async def refused(request: Request, exc: MailmoverError) -> Response:
        # Service messages name what was wrong and never carry a secret.
        return _page(request, 400, "Cannot do that", exc.message)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        # Only the fields' names: the values may be passwords.
        fields = sorted({str(e["loc"][-1]) for e in exc.errors() if e.get("loc")})
        message = "The form was not filled in right: " + (", ".join(fields) or "its fields")
        return _page(request, 400, "Cannot do that", message)

    @app.exception_handler(HTTPException)
    async def http(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 404:
            return _page(request, 404, "Not found", "There is no such page.")
        return _page(request, exc.status_code, "Cannot do that", str(exc.detail))

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> Response:
        # The exception's text may quote input and the path may hold a one-time link's
        # token: only the route's pattern and the exception's type are logged.
        log.error("%s %s failed: %s", request.method, route_pattern(request), type(exc).__name__)
        return _page(request, 500, "Something went wrong", "Something went wrong on our side.")
