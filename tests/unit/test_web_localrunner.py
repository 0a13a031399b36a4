"""The system page's view of the local runner, from the runner's public ``health()``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from mailmover.service.budgets import Budgets
from mailmover.service.leases import now_utc
from mailmover.store import Store, schema
from mailmover.web.config import WebConfig
from mailmover.web.localrunner import LocalRunner

mb = schema.mailbox


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(f"sqlite:///{tmp_path}/state.db") as s:
        yield s


def running(store: Store, user: str, connections: int, lease: timedelta) -> None:
    """A mailbox from ``user`` at src:143 to dst:143 running with ``connections`` pairs."""
    m = store.mailbox(f"imap://{user}@src", f"imap://{user}@dst", "system")
    with store.write_engine.begin() as conn:
        conn.execute(
            update(mb)
            .where(mb.c.id == m.id)
            .values(
                state="running", connections=connections, lease_owner="w1",
                lease_expires=now_utc() + lease,
                source_endpoint={"user": user, "host": "src", "port": 143},
                dest_endpoint={"user": user, "host": "dst", "port": 143},
            )
        )  # fmt: skip


def test_the_limits_count_the_connections_running_mailboxes_hold(
    store: Store, tmp_path: Path
) -> None:
    running(store, "al", 3, timedelta(seconds=30))
    running(store, "bo", 2, timedelta(seconds=30))
    running(store, "cy", 4, timedelta(seconds=-1))  # its worker is gone: nothing held
    local = LocalRunner(store, WebConfig(tmp_path, runner_concurrency=6))
    health = local.health()
    limits = Budgets()
    assert health["alive"] is False and health["concurrency"] == 6
    assert list(health["workers"]) == []  # not started
    assert health["limits"] == {
        "global": (2 * (3 + 2), limits.global_limit),
        "per server": (3 + 2, limits.per_server),
        "per account": (3, limits.per_account),
    }
