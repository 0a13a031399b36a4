"""A command ends on an error in one line and the error's exit code (``cli.exits``)."""

from __future__ import annotations

import pytest
import typer

from mailmover.cli.exits import one_line_errors
from mailmover.errors import AuthenticationFailed


def ended(
    exc: BaseException, capsys: pytest.CaptureFixture[str], internal: str | None = None
) -> tuple[int, str]:
    with pytest.raises(typer.Exit) as exit_, one_line_errors(False, "interrupted", internal):
        raise exc
    return exit_.value.exit_code, capsys.readouterr().err


def test_errors_end_the_command_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert ended(AuthenticationFailed("the server refused the password"), capsys) == (
        3, "mailmover: the server refused the password\n",
    )  # fmt: skip
    assert ended(KeyboardInterrupt(), capsys) == (130, "mailmover: interrupted\n")
    assert ended(ValueError("bad"), capsys, internal="rerun with --debug") == (
        1, "mailmover: internal error: ValueError: bad (rerun with --debug)\n",
    )  # fmt: skip
    assert ended(typer.Exit(4), capsys, internal="x") == (4, "")  # an exit goes through
    with pytest.raises(ValueError), one_line_errors(False, "interrupted"):  # a bug, unasked
        raise ValueError("bad")
