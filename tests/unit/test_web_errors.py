"""The page of a request that crashed, and its log line: neither holds the URL's secrets."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from types import SimpleNamespace

import httpx
import pytest
from fastapi import FastAPI, Request
from starlette.responses import Response

from mailmover.web import errors
from mailmover.web.state import make_templates

TOKEN = "one-time-link-token-8f3a2c"


def test_a_crash_logs_the_route_pattern_not_the_token_in_the_path(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = FastAPI()
    app.state.web = SimpleNamespace(templates=make_templates())
    errors.install(app)

    @app.middleware("http")
    async def csrf_token(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        request.state.csrf_token = ""
        return await call_next(request)

    @app.get("/invite/{token}")
    def invite(token: str) -> None:
        raise RuntimeError(f"cannot open {token}")

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get(f"/invite/{TOKEN}")

    with caplog.at_level(logging.ERROR, logger="mailmover.web"):
        answer = asyncio.run(get())
    assert answer.status_code == 500
    assert TOKEN not in answer.text
    assert "GET /invite/{token} failed: RuntimeError" in caplog.text
    assert TOKEN not in caplog.text
