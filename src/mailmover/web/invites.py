"""The invitation landing page: a mailbox's user gives their own password, or signs in.

Reached from the emailed one-time link, without an account. The password is tried at
the server first (a wrong one is said at once), never shown back and never logged;
then the mailbox is queued. An expired, replaced or used link gets a page saying so.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any, cast

from fastapi import APIRouter, Request
from starlette.responses import Response

from mailmover.providers import detect
from mailmover.service.credentials import password_spec
from mailmover.service.invites import Invitation, InviteRefused, answer, open_invitation
from mailmover.service.pending import PendingRecords
from mailmover.service.secrets import SecretBox
from mailmover.service.signinlimits import person_key
from mailmover.service.transfers import OAUTH_PROVIDERS, SideName
from mailmover.store.database import Store
from mailmover.web.auth import State
from mailmover.web.drafts import signins
from mailmover.web.state import render, web_state

router = APIRouter()
#: what a visitor reads after too many wrong passwords in a minute (none is tried then)
TOO_MANY = "Too many wrong passwords. Wait a minute, then try again."
#: how long an invitation page's sign-ins are kept after the last one
KEEP_FOR = timedelta(hours=1)


class InviteSignIns:
    """OAuth2 sign-ins made from invitation pages, by the link: encrypted, kept an hour,
    in the job database (``service.pending``: the next page may be another process's)."""

    def __init__(self, store: Store, box: SecretBox) -> None:
        self._kept = PendingRecords(store, box, "invite", KEEP_FOR)

    def add(self, token: str, side: SideName, spec: dict[str, Any]) -> None:
        self._kept.put(token, (self._kept.get(token) or {}) | {side: spec})

    def get(self, token: str) -> dict[SideName, dict[str, Any]]:
        return cast(dict[SideName, dict[str, Any]], self._kept.get(token) or {})

    def forget(self, token: str, sides: Iterable[SideName] | None = None) -> None:
        """Forget the link's sign-ins (those of ``sides`` only, when given)."""
        if sides is None:
            self._kept.forget(token)
            return
        kept = self._kept.get(token)
        if kept is not None:
            self._kept.put(token, {s: v for s, v in kept.items() if s not in set(sides)})


def oauth_given(request: Request) -> InviteSignIns:
    """The app's OAuth2 sign-ins made from invitation pages."""
    web = web_state(request)
    return InviteSignIns(web.store, web.box)


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
    address = request.client.host if request.client else "unknown"
    # Counted as wrong until it signs in: for the link and, so that inviting oneself
    # gives no more guesses than the wizard, for the person who made the job.
    budgets: list[tuple[str, str | None]] = [(f"invite:{found.mailbox_id}", address)]
    if found.owner_id is not None:
        budgets.append((person_key(found.owner_id), None))
    attempt = web.limiter.begin_all(budgets)
    if attempt is None:
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
        attempt.succeeded()
        return _refused(request, exc)
    if not refused:
        attempt.succeeded()
    else:
        errors = {side: f"Could not sign in: {why}" for side, why in refused.items()}
        oauth_given(request).forget(token, refused)
        return _page(request, token, found, errors)
    oauth_given(request).forget(token)
    return render(request, "invite_done.html", {"invitation": found})
