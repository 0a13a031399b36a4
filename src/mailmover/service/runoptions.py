"""What every runner is told: the options the local runner and a fleet worker share."""

from __future__ import annotations

from dataclasses import dataclass, field

from mailmover.service.budgets import Budgets
from mailmover.service.emails import SmtpSettings
from mailmover.service.loginguard import LoginLimits
from mailmover.service.states import SETTLE_SECONDS


@dataclass(kw_only=True)
class RunOptions:
    """How mailboxes are run, whatever runs them."""

    concurrency: int = 4  # mailboxes at once
    budgets: Budgets = field(default_factory=Budgets)  # connection limits
    connections: int = 4  # pairs per mailbox unless its settings say otherwise
    retention_days: float = 7.0  # credentials of an idle mailbox are erased after this
    metrics_port: int | None = None  # serve Prometheus metrics on this port
    webhook_urls: tuple[str, ...] = ()
    webhook_secret: str = field(default="", repr=False)
    smtp: SmtpSettings | None = None  # email the owners when set
    notify_users: bool = False  # and a note to each mailbox's user when it completes
    settle_seconds: float = SETTLE_SECONDS  # a dead worker's mailbox waits, from its last beat
    logins: LoginLimits = field(default_factory=LoginLimits)  # wrong passwords per job owner
