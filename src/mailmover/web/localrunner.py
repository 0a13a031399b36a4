"""The local runner, run in a thread of the web app's process (``mailmover serve``)."""

from __future__ import annotations

import logging
import threading
from typing import Any

from mailmover.service.loginguard import LoginLimits
from mailmover.service.runner import DRAIN, Runner, RunnerOptions
from mailmover.store.database import Store
from mailmover.web.config import WebConfig

log = logging.getLogger("mailmover.runner")


class LocalRunner:
    """Starts ``service.runner.Runner`` in a thread; ``stop`` pauses what runs and waits."""

    def __init__(self, store: Store, config: WebConfig) -> None:
        logins = LoginLimits(config.signin_account_limit, config.signin_window)
        options = RunnerOptions(
            concurrency=config.runner_concurrency, smtp=config.smtp, logins=logins
        )
        self.runner = Runner(store, config.url, config.data_dir, options, self._emit)
        self.thread = threading.Thread(target=self._run, name="mailmover-runner", daemon=True)

    def _run(self) -> None:
        try:
            self.runner.run(handle_signals=False)
        except Exception as exc:  # the app goes on serving pages; the log says why
            log.error("the local runner stopped: %s", type(exc).__name__)

    @staticmethod
    def _emit(event: dict[str, Any]) -> None:
        # Runner events carry ids, states and words, never credentials.
        log.info("%s", event)

    def health(self) -> dict[str, Any]:
        """The runner's thread, its worker processes and its connection budgets, now."""
        now = self.runner.health()
        budgets = now.budgets
        return {
            "alive": self.thread.is_alive(),
            "concurrency": now.concurrency,
            "workers": now.workers,
            "limits": {
                "global": (budgets.held_global, budgets.global_limit),
                "per server": (max(budgets.held_hosts.values(), default=0), budgets.per_server),
                "per account": (
                    max(budgets.held_accounts.values(), default=0),
                    budgets.per_account,
                ),
            },
        }

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.runner.stop()
        self.thread.join(DRAIN + 5)
