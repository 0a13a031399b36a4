"""Two administrators demoting (or disabling) each other at once leave one administrator.

Each round makes the two requests meet at the worst moment: a request about to write
its change waits until the other one is about to write too, or is held by a lock
(inside a ``SELECT ... FOR [NO KEY] UPDATE`` or SQLite's ``BEGIN IMMEDIATE``, which cannot
finish while the first one's transaction holds what it waits for). Without a lock
both write, and no administrator is left.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import event, select

from mailmover.service import accounts
from mailmover.service.accounts import ADMIN, USER, Account, AccountError
from mailmover.store import Store, schema

#: a guard against hangs (seconds), not a timing
GUARD = 30.0
ROUNDS = 12


class Meeting:
    """Holds each request just before it writes the account until the other has caught up."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.writing: set[int] = set()  # threads about to write the account
        self.locking: set[int] = set()  # threads inside a statement that waits for a lock

    def before(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sql = " ".join(statement.split()).upper()
        me = threading.get_ident()
        with self.cond:
            if re.search(r"FOR (NO KEY )?UPDATE", sql) or sql.startswith("BEGIN IMMEDIATE"):
                self.locking.add(me)
                self.cond.notify_all()
                return
            if not sql.startswith("UPDATE ACCOUNT"):
                return
            self.writing.add(me)
            self.cond.notify_all()
            caught_up = self.cond.wait_for(
                lambda: len(self.writing) == 2 or bool(self.locking - {me}), GUARD
            )
            assert caught_up, "the other request neither wrote nor waited for a lock"

    def after(self, *_args: Any) -> None:
        with self.cond:
            self.locking.discard(threading.get_ident())


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with Store.open(database_url) as s:
        yield s


def admins(store: Store) -> list[int]:
    acc = schema.account
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(acc.c.id).where(acc.c.role == ADMIN, acc.c.active.is_(True)).order_by(acc.c.id)
        )
        return [int(i) for i in rows.scalars()]


def attempt(
    how: Callable[[Account, int], object],
    actor: Account,
    target: int,
    refused: list[str],
    failed: list[BaseException],
) -> None:
    """``how(actor, target)``, noting a refusal or any other failure."""
    try:
        how(actor, target)
    except AccountError as exc:
        refused.append(str(exc))
    except BaseException as exc:
        failed.append(exc)


def test_two_admins_demoting_each_other_at_once_leave_one(store: Store) -> None:
    first = accounts.create_account(store, "first@example.com", "first's password", ADMIN)
    changes: list[Callable[[Account, int], object]] = [
        lambda actor, target: accounts.set_role(store, actor, target, USER),
        lambda actor, target: accounts.set_active(store, actor, target, False),
    ]
    for n in range(ROUNDS):
        newcomer = accounts.create_account(store, f"admin{n}@example.com", "a password!", ADMIN)
        one, two = (first, newcomer) if n % 2 else (newcomer, first)
        meeting = Meeting()
        event.listen(store.engine, "before_cursor_execute", meeting.before)
        event.listen(store.engine, "after_cursor_execute", meeting.after)
        refused: list[str] = []
        failed: list[BaseException] = []
        threads = [
            threading.Thread(target=attempt, args=(changes[n % 2], one, two.id, refused, failed)),
            threading.Thread(
                target=attempt, args=(changes[(n + 1) % 2], two, one.id, refused, failed)
            ),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(GUARD * 2)
        event.remove(store.engine, "before_cursor_execute", meeting.before)
        event.remove(store.engine, "after_cursor_execute", meeting.after)
        assert not failed, failed
        left = admins(store)
        assert len(left) == 1, f"round {n}: administrators left: {left}"
        assert len(refused) == 1 and "last administrator" in refused[0]
        first = one if left == [one.id] else two
