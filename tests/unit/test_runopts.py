"""The checks ``run`` and ``worker`` share on their options."""

from __future__ import annotations

import pytest

from mailmover.cli.runopts import checked
from mailmover.errors import UsageError


def test_options_that_cannot_work_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAILMOVER_WEBHOOK_SECRET", raising=False)
    with pytest.raises(UsageError, match="--concurrency must be at least 1"):
        checked(0, 30.0, None)
    with pytest.raises(UsageError, match="--settle-after-crash cannot be negative"):
        checked(4, -1.0, None)
    with pytest.raises(UsageError, match="set MAILMOVER_WEBHOOK_SECRET"):
        checked(4, 30.0, ["http://127.0.0.1:9/hook"])
    assert checked(4, 0.0, None) == ""
    monkeypatch.setenv("MAILMOVER_WEBHOOK_SECRET", "s3")
    assert checked(4, 30.0, ["http://127.0.0.1:9/hook"]) == "s3"
