"""The ``mailmover`` console script.

``copy``, ``verify`` and ``check`` run from ``mailmover.cli.transfers`` alone:
a copy starts its connections without first importing the service layer, the
web app and SQLAlchemy (about half of the start-up). Every other command, and
``--help``, loads them all (``mailmover.cli.main``).
"""

from __future__ import annotations

import sys

#: the commands ``mailmover.cli.transfers`` holds
TRANSFERS = frozenset({"copy", "verify", "check"})


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in TRANSFERS:
        from mailmover.cli.transfers import app
    else:
        from mailmover.cli.main import app
    app(prog_name="mailmover")
