"""The checks ``run`` and ``worker`` share on their options, and the options they make."""

from __future__ import annotations

from typing import Any

import pytest

from mailmover.cli.runopts import shared
from mailmover.errors import UsageError
from mailmover.service.budgets import Budgets
from mailmover.service.fleet import FleetOptions
from mailmover.service.loginguard import LoginLimits
from mailmover.service.runner import RunnerOptions
from mailmover.service.signinlimits import ACCOUNT_LIMIT, WINDOW


def flags(**given: Any) -> dict[str, Any]:
    return dict(
        concurrency=4, max_connections=200, max_per_server=40, max_per_account=15,
        retention_days=7.0, metrics_port=None, settle=30.0, webhook_url=None,
        notify_users=False,
    ) | given  # fmt: skip


def test_options_that_cannot_work_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAILMOVER_WEBHOOK_SECRET", raising=False)
    monkeypatch.delenv("MAILMOVER_SMTP_HOST", raising=False)
    with pytest.raises(UsageError, match="--concurrency must be at least 1"):
        shared(**flags(concurrency=0))
    with pytest.raises(UsageError, match="--settle-after-crash cannot be negative"):
        shared(**flags(settle=-1.0))
    with pytest.raises(UsageError, match="set MAILMOVER_WEBHOOK_SECRET"):
        shared(**flags(webhook_url=["http://127.0.0.1:9/hook"]))
    assert shared(**flags(settle=0.0))["webhook_secret"] == ""
    monkeypatch.setenv("MAILMOVER_WEBHOOK_SECRET", "s3")
    assert shared(**flags(webhook_url=["http://127.0.0.1:9/hook"]))["webhook_secret"] == "s3"


def test_run_and_worker_make_the_same_shared_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILMOVER_WEBHOOK_SECRET", "s3")
    monkeypatch.setenv("MAILMOVER_SMTP_HOST", "smtp.example.com")
    hook = ["http://127.0.0.1:9/hook"]
    given = flags(concurrency=3, max_per_server=5, metrics_port=9100, webhook_url=hook)
    common = shared(**given | {"notify_users": True})
    runner = RunnerOptions(**common, workers=2)
    fleet = FleetOptions(**common, metrics_host="0.0.0.0")
    for options in (runner, fleet):
        assert options.concurrency == 3 and options.metrics_port == 9100
        assert options.budgets == Budgets(200, 5, 15)
        assert options.webhook_urls == tuple(hook)
        assert options.smtp is not None and options.smtp.host == "smtp.example.com"
        assert options.notify_users and options.settle_seconds == 30.0
    assert "s3" not in repr(runner) + repr(fleet)


def test_the_signin_window_reaches_the_runners(monkeypatch: pytest.MonkeyPatch) -> None:
    """``run`` and ``worker`` take ``--signin-window`` (MAILMOVER_SIGNIN_WINDOW, as serve
    does), so a person's wrong mail passwords are counted over one window everywhere."""
    monkeypatch.delenv("MAILMOVER_SMTP_HOST", raising=False)
    assert shared(**flags())["logins"].window == WINDOW  # the default is serve's
    common = shared(**flags(signin_window=900.0))
    for options in (RunnerOptions(**common, workers=1), FleetOptions(**common)):
        assert options.logins == LoginLimits(per_person=ACCOUNT_LIMIT, window=900.0)
