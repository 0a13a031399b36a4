"""The FastAPI application: ``create_app(WebConfig)``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Final

from fastapi import Depends, FastAPI, Request
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from mailmover.service.apitokens import token_account
from mailmover.service.secrets import SecretBox
from mailmover.service.sessions import Session, find_session
from mailmover.service.signinlimits import SigninLimiter
from mailmover.store.database import Store
from mailmover.web import (
    account,
    admin,
    api,
    api_new,
    batches,
    errors,
    invites,
    mailboxes,
    oauth,
    transfers,
    wizard,
)
from mailmover.web.auth import SESSION_COOKIE, bearer_token
from mailmover.web.auth import router as auth_router
from mailmover.web.config import WebConfig
from mailmover.web.csrf import COOKIE as CSRF_COOKIE
from mailmover.web.csrf import AnonymousTokens, verify_csrf
from mailmover.web.localrunner import LocalRunner
from mailmover.web.state import STATIC, WebState, make_templates

access_log = logging.getLogger("mailmover.web.access")

#: Sent with every response: no framing, no sniffing, scripts and styles from this site only.
SECURITY_HEADERS: Final = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
}


def create_app(config: WebConfig) -> FastAPI:
    """The web app over the job database of ``config``, with its local runner if asked."""
    store = Store.open(config.url)
    box = SecretBox.open(config.data_dir, config.env)
    limiter = SigninLimiter(
        store, config.signin_account_limit, config.signin_address_limit, config.signin_window,
        secret=box.derived_key("mailmover sign-in limits"),
    )  # fmt: skip
    web = WebState(config=config, store=store, box=box, limiter=limiter, templates=make_templates())
    anonymous = AnonymousTokens(web.box.derived_key("mailmover anonymous CSRF tokens"))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        runner = web.runner = LocalRunner(store, config) if config.start_runner else None
        if runner is not None:
            runner.start()
        try:
            yield
        finally:
            web.runner = None
            if runner is not None:
                await run_in_threadpool(runner.stop)
            store.close()

    app = FastAPI(
        title="mailmover",
        lifespan=lifespan,
        dependencies=[Depends(verify_csrf)],
        docs_url=None,  # Swagger UI would load from a CDN: the document alone is served
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.web = web

    @app.middleware("http")
    async def sessions(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        token = request.cookies.get(SESSION_COOKIE, "")
        bearer = bearer_token(request)
        if bearer is not None and not token:
            # A script with an API token: nothing ambient to forge, so no CSRF token.
            account = await run_in_threadpool(token_account, store, bearer)
            request.state.session = Session(account, "") if account is not None else None
            request.state.bearer = True
            request.state.csrf_token = ""
            response = await call_next(request)
            _log_request(request, response)
            return _secured(response)
        session = await run_in_threadpool(find_session, store, token) if token else None
        request.state.session = session
        minted = None
        if session is not None:
            request.state.csrf_token = session.csrf
        else:
            given = request.cookies.get(CSRF_COOKIE)
            if not anonymous.valid(given):
                given = minted = anonymous.mint()
            request.state.csrf_token = given
        response = await call_next(request)
        if minted is not None:
            response.set_cookie(
                CSRF_COOKIE, minted, httponly=True, secure=config.cookie_secure,
                samesite="strict", path="/",
            )  # fmt: skip
        if token and session is None:  # an expired or closed session: forget its cookie
            response.delete_cookie(SESSION_COOKIE, path="/")
        _log_request(request, response)
        return _secured(response)

    @app.get("/", include_in_schema=False)
    def home() -> Response:
        return RedirectResponse("/transfers", status_code=303)

    errors.install(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(auth_router)
    app.include_router(transfers.router)
    app.include_router(mailboxes.router)
    app.include_router(admin.router)
    app.include_router(account.router)
    app.include_router(api.router)
    app.include_router(wizard.router)
    app.include_router(batches.router)
    app.include_router(invites.router)
    app.include_router(oauth.router)
    app.include_router(api_new.router)
    return app


def _secured(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def _log_request(request: Request, response: Response) -> None:
    """One access-log line with the route's pattern, never the URL itself."""
    access_log.info("%s %s %s", request.method, errors.route_pattern(request), response.status_code)
