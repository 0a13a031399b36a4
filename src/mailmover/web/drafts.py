"""What a person has filled in so far, between the steps of the wizard or a batch upload.

Drafts live in this process's memory for an hour, each under a random id and bound
to the account that made it; credentials in a draft are encrypted with the app's key,
so no step ever sends a password back to the browser.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Final

from fastapi import Request

from mailmover.service.batchfile import BatchOptions, BatchRow
from mailmover.service.credentials import AdminLogin
from mailmover.service.jobs import NotFound
from mailmover.service.secrets import SecretBox
from mailmover.service.signin import SignIns, clients
from mailmover.service.transfers import Choices, Preflight, SideForm, SideName

#: seconds a draft is kept after it was last touched
KEEP_FOR: Final = 3600.0


@dataclass
class Draft:
    """One wizard run or one uploaded batch, not yet started."""

    id: str
    owner: int
    touched: float
    source: SideForm | None = None
    dest: SideForm | None = None
    #: encrypted credentials specs, by side
    secrets: dict[SideName, bytes] = field(default_factory=dict, repr=False)
    preflight: Preflight | None = None
    choices: Choices = field(default_factory=Choices)
    #: a batch: its rows (passwords stay in memory only) and how it was read
    rows: list[BatchRow] = field(default_factory=list, repr=False)
    options: BatchOptions | None = None
    #: admin logins by side (their secrets in memory only, never in a page)
    admins: dict[SideName, AdminLogin] = field(default_factory=dict, repr=False)
    filename: str = ""
    name: str = ""
    #: a batch whose every line's logins the pre-flight tried, and all worked
    checked: bool = False
    #: the job made from this draft: a second "start" (a double click) goes to it
    job: str | None = None
    #: held while the job is being made, so that it is made once
    making: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False, compare=False)

    def specs(self, box: SecretBox) -> dict[SideName, dict[str, Any]]:
        return {side: box.decrypt(blob) for side, blob in self.secrets.items()}

    def made(self, job: str) -> None:
        """The job exists: remember its name, forget every password."""
        self.job = job
        self.secrets.clear()
        self.rows = []
        self.admins = {}


class Drafts:
    """Every open draft of this process."""

    def __init__(self) -> None:
        self._drafts: dict[str, Draft] = {}
        self._lock = threading.Lock()

    def new(self, owner: int) -> Draft:
        with self._lock:
            self._expire()
            draft = Draft(secrets.token_urlsafe(16), owner, time.monotonic())
            self._drafts[draft.id] = draft
            return draft

    def get(self, draft_id: str, owner: int) -> Draft:
        """The draft, if it is ``owner``'s and still kept; ``NotFound`` otherwise."""
        with self._lock:
            self._expire()
            draft = self._drafts.get(draft_id)
            if draft is None or draft.owner != owner:
                raise NotFound("this form has expired (drafts are kept for an hour); start again")
            draft.touched = time.monotonic()
            return draft

    def _expire(self) -> None:
        now = time.monotonic()
        for key in [k for k, d in self._drafts.items() if now - d.touched > KEEP_FOR]:
            del self._drafts[key]


def drafts(request: Request) -> Drafts:
    """The app's drafts (made on first use)."""
    state = request.app.state
    if not hasattr(state, "drafts"):
        state.drafts = Drafts()
    found: Drafts = state.drafts
    return found


def signins(request: Request) -> SignIns:
    """The app's OAuth2 sign-ins on their way (providers from the app's environment)."""
    state = request.app.state
    if not hasattr(state, "signins"):
        state.signins = SignIns(clients(state.web.config.env))
    found: SignIns = state.signins
    return found
