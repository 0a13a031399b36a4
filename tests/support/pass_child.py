"""A pass run in a child process, as a worker process runs one: everything arrives as data.

Reads one JSON object on stdin — ``pair`` and ``settings`` (their ``to_dict`` forms),
``kind``, ``db`` (a SQLite path) and ``secrets`` (``{"source": ..., "dest": ...}``) —
runs ``run_pass`` and prints every event as a JSON line on stdout.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from mailmover.engine.events import Event, event_json
from mailmover.engine.passes import run_pass
from mailmover.engine.ports import Secret, SideName
from mailmover.engine.settings import MailboxPair, PassSettings
from mailmover.store import Store, StoreJournal


class GivenCredentials:
    """Secrets received as data; kept only as long as the pass runs."""

    def __init__(self, secrets: dict[str, str]) -> None:
        self._secrets = secrets

    async def secret(self, side: SideName) -> Secret:
        return Secret(self._secrets[side])


def emit(event: Event) -> None:
    print(json.dumps(event_json(event)), flush=True)


async def main(job: dict[str, Any]) -> int:
    pair = MailboxPair.from_dict(job["pair"])
    store = Store.open(f"sqlite:///{job['db']}")
    try:
        journal = await StoreJournal.open(store, pair.source.url, pair.dest.url)
        report = await run_pass(
            pair,
            PassSettings.from_dict(job["settings"]),
            job["kind"],
            journal=journal,
            credentials=GivenCredentials(job.pop("secrets")),
            events=emit,
        )
    finally:
        store.close()
    return 0 if report.outcome == "completed" else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(json.loads(sys.stdin.read()))))
