"""The invitation landing page: a mailbox's user gives their own password, or signs in.

Reached from the emailed one-time link, without an account. The password is tried at
the server first (a wrong one is said at once), never shown back and never logged;
then the mailbox is queued. An expired, replaced or used link gets a page saying so.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from mailmover.providers import detect
from mailmover.service.credentials import password_spec
from mailmover.service.invites import Invitation, InviteRefused, answer, hash_token, open_invitation
from mailmover.service.secrets import SecretBox
from mailmover.service.transfers import OAUTH_PROVIDERS, SideName
from mailmover.web.auth import State
from mailmover.web.drafts import KEEP_FOR, signins
from mailmover.web.state import render, web_state

router = APIRouter()
#: what a visitor reads after too many wrong passwords in a minute (none is tried then)
TOO_MANY = "Too many wrong passwords. Wait a minute, then try again."


class InviteSignIns:
    """OAuth2 sign-ins made from invitation pages, by the link: encrypted, kept an hour."""

    def __init__(self, box: SecretBox) -> None:
        self.box = box
        self._kept: dict[str, tuple[float, dict[SideName, bytes]]] = {}
        self._lock = threading.Lock()

    def add(self, token: str, side: SideName, spec: dict[str, Any]) -> None:
        key, blob = hash_token(token), self.box.encrypt(spec)
        with self._lock:
            self._expire()
            sides = self._kept.get(key, (0.0, {}))[1]
            self._kept[key] = (time.monotonic(), sides | {side: blob})

    def get(self, token: str) -> dict[SideName, dict[str, Any]]:
        with self._lock:
            self._expire()
            sides = self._kept.get(hash_token(token), (0.0, {}))[1]
        return {side: self.box.decrypt(blob) for side, blob in sides.items()}

    def forget(self, token: str, sides: Iterable[SideName] | None = None) -> None:
        """Forget the link's sign-ins (those of ``sides`` only, when given)."""
        with self._lock:
            if sides is None:
                self._kept.pop(hash_token(token), None)
            elif hash_token(token) in self._kept:
                for side in sides:
                    self._kept[hash_token(token)][1].pop(side, None)

    def _expire(self) -> None:
        now = time.monotonic()
        for key in [k for k, (at, _) in self._kept.items() if now - at > KEEP_FOR]:
            del self._kept[key]


def oauth_given(request: Request) -> InviteSignIns:
    """The app's OAuth2 sign-ins made from invitation pages (made on first use)."""
    state = request.app.state
    if not hasattr(state, "invite_oauth"):
        state.invite_oauth = InviteSignIns(web_state(request).box)
    found: InviteSignIns = state.invite_oauth
    return found


def _refused(request: Request, exc: InviteRefused) -> Response:
    return render(request, "invite_refused.html", {"message": exc.message}, 410)


def _page(
    request: Request,
    token: str,
    found: Invitation,
    errors: dict[SideName, str] | None = None,
    status: int | None = None,
) -> Response:
    done = oauth_given(request).get(token)
    sides = []
    for side in found.sides:
        detected = detect(found.hosts[side])
        preset = found.presets[side] or (detected.name if detected else None)
        provider = OAUTH_PROVIDERS.get(preset) if preset else None
        sides.append({
            "side": side, "user": found.users[side], "host": found.hosts[side],
            "oauth": provider if provider in signins(request).clients else None,
            "signed_in": side in done, "error": (errors or {}).get(side),
        })  # fmt: skip
    context = {"token": token, "invitation": found, "sides": sides}
    return render(request, "invite.html", context, status or (400 if errors else 200))


@router.get("/invite/{token}")
def invite_page(request: Request, token: str, web: State) -> Response:
    try:
        found = open_invitation(web.store, token)
    except InviteRefused as exc:
        return _refused(request, exc)
    return _page(request, token, found)


@router.post("/invite/{token}")
async def invite_answer(request: Request, token: str, web: State) -> Response:
    try:
        found = open_invitation(web.store, token)
    except InviteRefused as exc:
        return _refused(request, exc)
    key = f"invite:{found.mailbox_id}"
    address = request.client.host if request.client else "unknown"
    if not web.limiter.allowed(key, address):
        errors = dict.fromkeys(found.sides, TOO_MANY)
        return _page(request, token, found, errors, status=429)
    form = await request.form()
    given = oauth_given(request).get(token)
    for side in found.sides:
        password = form.get(f"{side}_password", "")
        if isinstance(password, str) and password:
            given[side] = password_spec(password)
    try:
        refused = await answer(web.store, web.box, token, given)
    except InviteRefused as exc:
        return _refused(request, exc)
    if refused:
        web.limiter.failed(key, address)
        errors = {side: f"Could not sign in: {why}" for side, why in refused.items()}
        oauth_given(request).forget(token, refused)
        return _page(request, token, found, errors)
    oauth_given(request).forget(token)
    return render(request, "invite_done.html", {"invitation": found})
