"""How a command ends on an error: one line on stderr and the error's exit code."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

import typer

from mailmover.errors import MailmoverError


@contextmanager
def one_line_errors(debug: bool, interrupted: str, internal: str | None = None) -> Iterator[None]:
    """End the command on an error raised inside, in one line.

    A ``MailmoverError``: its message and exit code. Ctrl-C: ``interrupted`` and 130.
    With ``internal``, any other exception (a bug): its name, ``internal`` and 1. With
    ``debug``, the traceback first.
    """
    try:
        yield
    except MailmoverError as exc:
        if debug:
            traceback.print_exc()
        print(f"mailmover: {exc.message}", file=sys.stderr)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        print(f"mailmover: {interrupted}", file=sys.stderr)
        raise typer.Exit(130) from None
    except typer.Exit:
        raise
    except Exception as exc:
        if internal is None:
            raise
        if debug:
            traceback.print_exc()
        print(f"mailmover: internal error: {type(exc).__name__}: {exc} ({internal})",
              file=sys.stderr)  # fmt: skip
        raise typer.Exit(1) from None
