"""Connection budgets of the local runner: global, per server (host), per account.

A mailbox pass with ``n`` connection pairs holds ``n`` connections at its source
server and account and ``n`` at its destination's, ``2n`` of the global budget. A
mailbox is started with as many pairs as every budget allows (at least one), or not
started until some are given back.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Final

#: Gmail allows about 15 simultaneous IMAP connections per account.
DEFAULT_PER_ACCOUNT: Final = 15
DEFAULT_PER_SERVER: Final = 40
DEFAULT_GLOBAL: Final = 200


@dataclass(frozen=True)
class Usage:
    """What one mailbox holds: its hosts and accounts, and its connection pairs."""

    hosts: tuple[str, str]
    accounts: tuple[str, str]
    pairs: int


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
        self.held_global += 2 * pairs
        for h in hosts:
            self.held_hosts[h] += pairs
        for a in accounts:
            self.held_accounts[a] += pairs
        return Usage(hosts, accounts, pairs)

    def give_back(self, usage: Usage) -> None:
        self.held_global -= 2 * usage.pairs
        for h in usage.hosts:
            self.held_hosts[h] -= usage.pairs
        for a in usage.accounts:
            self.held_accounts[a] -= usage.pairs
