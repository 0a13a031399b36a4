"""What every request of the web app shares: the store, the key box, the templates."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from mailmover.service.secrets import SecretBox
from mailmover.service.signinlimits import SigninLimiter
from mailmover.store.database import Store
from mailmover.web.config import WebConfig
from mailmover.web.csrf import csrf_field
from mailmover.web.localrunner import LocalRunner

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


@dataclass
class WebState:
    """The app's shared objects, in ``app.state.web``."""

    config: WebConfig
    store: Store
    box: SecretBox
    limiter: SigninLimiter
    templates: Jinja2Templates
    #: the local runner while it runs in this process (``WebConfig.start_runner``)
    runner: LocalRunner | None = None


def make_templates() -> Jinja2Templates:
    """The page templates, with ``csrf_field()`` and the filters the pages use."""
    from mailmover.web import formats

    templates = Jinja2Templates(directory=str(TEMPLATES))
    templates.env.globals["csrf_field"] = csrf_field
    formats.install(templates.env)
    return templates


def web_state(request: Request) -> WebState:
    """The app's shared objects (a FastAPI dependency)."""
    state: WebState = request.app.state.web
    return state


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> Response:
    """The template ``name`` with ``context``, the signed-in account as ``user``."""
    session = getattr(request.state, "session", None)
    ctx = {"user": session.account if session is not None else None} | (context or {})
    templates = web_state(request).templates
    return templates.TemplateResponse(request, name, ctx, status_code=status_code)
