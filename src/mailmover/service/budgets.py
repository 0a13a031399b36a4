"""Connection budgets: global, per server (host), per account, counted in the job database.

A mailbox pass with ``n`` connection pairs holds ``n`` connections at its source
server and account and ``n`` at its destination's, ``2n`` of the global budget. A
mailbox is started with as many pairs as every budget allows (at least one), or not
started until some are given back.

What is held is what the running mailboxes of the database hold (their
``connections``, while their lease is live), so every runner and worker on one
database, on any machine, counts against the same limits; a dead worker's
connections are given back when its lease expires. Budgets are taken one claim at a
time: under an advisory lock on PostgreSQL, under the write lock on SQLite.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Connection, select, text

from mailmover.store import schema
from mailmover.store.database import Store

#: Gmail allows about 15 simultaneous IMAP connections per account.
DEFAULT_PER_ACCOUNT: Final = 15
DEFAULT_PER_SERVER: Final = 40
DEFAULT_GLOBAL: Final = 200

#: Key of the PostgreSQL advisory lock under which budgets are counted and taken.
_PG_BUDGET_LOCK: Final = 0x6D6D627564676574  # "mmbudget"

mb = schema.mailbox


@dataclass(frozen=True)
class Usage:
    """What one mailbox holds: its hosts and accounts, and its connection pairs."""

    hosts: tuple[str, str]
    accounts: tuple[str, str]
    pairs: int


def usage_of(source: Mapping[str, Any], dest: Mapping[str, Any], pairs: int) -> Usage:
    """The servers (``host:port``) and accounts of a pair of endpoints (``endpoint_dict``)."""
    hosts = (server_of(source), server_of(dest))
    return Usage(hosts, (f"{hosts[0]}/{source['user']}", f"{hosts[1]}/{dest['user']}"), pairs)


def server_of(endpoint: Mapping[str, Any]) -> str:
    """The ``host:port`` of an endpoint, as budgets and holds name servers."""
    return f"{endpoint['host']}:{endpoint['port']}"


@dataclass
class Budgets:
    """The limits and what is held against them."""

    global_limit: int = DEFAULT_GLOBAL
    per_server: int = DEFAULT_PER_SERVER
    per_account: int = DEFAULT_PER_ACCOUNT
    held_global: int = 0
    held_hosts: Counter[str] = field(default_factory=Counter)
    held_accounts: Counter[str] = field(default_factory=Counter)

    def grant(self, hosts: tuple[str, str], accounts: tuple[str, str], wanted: int) -> Usage | None:
        """Take up to ``wanted`` connection pairs; None when not even one fits now."""
        room = [wanted, (self.global_limit - self.held_global) // 2]
        need_hosts = Counter(hosts)
        need_accounts = Counter(accounts)
        room += [(self.per_server - self.held_hosts[h]) // n for h, n in need_hosts.items()]
        room += [(self.per_account - self.held_accounts[a]) // n for a, n in need_accounts.items()]
        pairs = min(room)
        if pairs < 1:
            return None
        usage = Usage(hosts, accounts, pairs)
        self.hold(usage)
        return usage

    def hold(self, usage: Usage) -> None:
        self.held_global += 2 * usage.pairs
        for h in usage.hosts:
            self.held_hosts[h] += usage.pairs
        for a in usage.accounts:
            self.held_accounts[a] += usage.pairs

    def give_back(self, usage: Usage) -> None:
        self.held_global -= 2 * usage.pairs
        for h in usage.hosts:
            self.held_hosts[h] -= usage.pairs
        for a in usage.accounts:
            self.held_accounts[a] -= usage.pairs

    def limits(self) -> Budgets:
        """The same limits with nothing held."""
        return Budgets(self.global_limit, self.per_server, self.per_account)


def held(conn: Connection, limits: Budgets, now: datetime) -> Budgets:
    """``limits`` with what the running mailboxes of the database hold now."""
    rows = conn.execute(
        select(mb.c.source_endpoint, mb.c.dest_endpoint, mb.c.connections).where(
            mb.c.state == "running",
            mb.c.lease_expires >= now,
            mb.c.connections > 0,
            mb.c.source_endpoint.is_not(None),
        )
    ).all()
    counted = limits.limits()
    for row in rows:
        counted.hold(usage_of(row.source_endpoint, row.dest_endpoint, row.connections))
    return counted


def take(conn: Connection, limits: Budgets, want: Usage, now: datetime) -> int:
    """Connection pairs granted to ``want`` in this transaction (0: none fits now).

    The caller writes them to the mailbox (``connections``) before its transaction
    ends; until then no other claim counts.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_BUDGET_LOCK})
    usage = held(conn, limits, now).grant(want.hosts, want.accounts, want.pairs)
    return usage.pairs if usage is not None else 0


def in_use(store: Store, now: datetime) -> Budgets:
    """Connections held now, fleet-wide (for the metrics), against default limits."""
    with store.engine.connect() as conn:
        return held(conn, Budgets(), now)
