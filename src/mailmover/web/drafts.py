"""The app's drafts (``service.drafts``, in the job database) and OAuth2 sign-ins on their
way, as request dependencies; and making a draft's job once, whichever process is asked."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Final

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from mailmover.errors import UsageError
from mailmover.service.drafts import MAKING_FOR, Draft, Drafts
from mailmover.service.signin import SignIns, clients

__all__ = ["Draft", "Drafts", "drafts", "make_once", "signins"]

#: how often a request waiting for another's job looks again (seconds)
LOOK_EVERY: Final = 0.1


def drafts(request: Request) -> Drafts:
    """The app's drafts."""
    web = request.app.state.web
    return Drafts(web.store, web.box)


async def make_once(store: Drafts, draft: Draft, create: Callable[[], str]) -> tuple[str, bool]:
    """The draft's job and whether this request made it: made here by ``create`` (in a
    thread), unless another request (in any process) made it or is making it; then its."""
    guard = time.monotonic() + MAKING_FOR.total_seconds() * 1.5
    while True:
        job = draft.job or await run_in_threadpool(store.job_of, draft)
        if job is not None:
            return job, False
        if await run_in_threadpool(store.begin_making, draft):
            break
        if time.monotonic() > guard:  # a guard against a hang, not a timing
            raise UsageError("this transfer is being started already; see Transfers")
        await asyncio.sleep(LOOK_EVERY)
    try:
        job = await run_in_threadpool(create)
    except BaseException:
        await run_in_threadpool(store.end_making, draft)
        raise
    draft.made(job)
    await run_in_threadpool(store.save, draft)
    return job, True


def signins(request: Request) -> SignIns:
    """The app's OAuth2 sign-ins on their way (providers from the app's environment)."""
    state = request.app.state
    if not hasattr(state, "signins"):
        web = state.web
        state.signins = SignIns(clients(web.config.env), web.store, web.box)
    found: SignIns = state.signins
    return found
