"""A worker cut off from its database stops its passes before its leases run out."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from mailmover.engine.control import PassControl
from mailmover.service import worker as worker_module
from mailmover.service.leases import LEASE_SECONDS
from mailmover.service.secrets import SecretBox
from mailmover.service.worker import FENCE_SECONDS, EventTally, Worker
from mailmover.store import Store


@pytest.fixture
def passing(tmp_path: Path) -> Iterator[tuple[Worker, PassControl]]:
    """A worker with one pass under way (mailbox 1), beating every few milliseconds."""
    store = Store.open(f"sqlite:///{tmp_path / 'jobs.db'}")
    worker = Worker(store, SecretBox.open(tmp_path, env={}), "w1")
    control = PassControl()
    worker.controls[1] = control
    worker.tallies[1] = EventTally()
    yield worker, control
    store.close()


async def _beats(worker: Worker, count: int) -> None:
    task = asyncio.create_task(worker.beat())
    for _ in range(count):
        await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def test_the_fence_comes_well_before_the_lease_expires() -> None:
    assert 0 < FENCE_SECONDS <= LEASE_SECONDS / 2


async def test_beats_that_fail_past_the_fence_pause_every_pass(
    passing: tuple[Worker, PassControl], monkeypatch: pytest.MonkeyPatch
) -> None:
    worker, control = passing

    def unreachable(*_args: Any) -> dict[int, str | None]:
        raise OperationalError("SELECT 1", None, ConnectionError("server closed the connection"))

    monkeypatch.setattr(worker_module, "heartbeat_many", unreachable)
    monkeypatch.setattr(worker_module, "HEARTBEAT", 0.001)
    monkeypatch.setattr(worker_module, "FENCE_SECONDS", 0.0)
    await _beats(worker, 20)
    assert control.requested == "pause"


async def test_beats_that_renew_the_leases_leave_the_passes_running(
    passing: tuple[Worker, PassControl], monkeypatch: pytest.MonkeyPatch
) -> None:
    worker, control = passing
    renewed: list[int] = []

    def renew(_store: Store, _owner: str, beats: dict[int, Any]) -> dict[int, str | None]:
        renewed.append(len(beats))
        return dict.fromkeys(beats)

    monkeypatch.setattr(worker_module, "heartbeat_many", renew)
    monkeypatch.setattr(worker_module, "HEARTBEAT", 0.001)
    await _beats(worker, 20)
    assert renewed and set(renewed) == {1}
    assert control.requested is None
