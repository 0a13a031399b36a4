"""Turning what the user typed into endpoints with secrets, and clear errors when it is wrong."""

from __future__ import annotations

import getpass
import os
import sys
from datetime import date, datetime
from pathlib import Path

from mailmover.config import Endpoint, parse_endpoint
from mailmover.errors import UsageError


def read_secret(endpoint: Endpoint, *, env: str, file: Path | None, label: str) -> Endpoint:
    """The endpoint with its password: from ``file``, then ``env``, then a prompt on a terminal."""
    if file is not None:
        try:
            secret = file.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise UsageError(
                f"cannot read the {label} password file {str(file)!r}: {exc.strerror or exc}"
            ) from None
        if not secret:
            raise UsageError(f"the {label} password file {str(file)!r} is empty")
        return endpoint.with_secret(secret)
    from_env = os.environ.get(env)
    if from_env:
        return endpoint.with_secret(from_env)
    if sys.stdin.isatty():
        typed = getpass.getpass(f"Password for {endpoint.url}: ")
        if typed:
            return endpoint.with_secret(typed)
    raise UsageError(
        f"no {label} password: set {env}, give --{label}-password-file, or run on a terminal"
    )


def endpoint(text: str, *, ca_file: Path | None, insecure: bool) -> Endpoint:
    if ca_file is not None and not ca_file.is_file():
        raise UsageError(f"the CA file {str(ca_file)!r} does not exist")
    return parse_endpoint(text, ca_file=str(ca_file) if ca_file else None, verify=not insecure)


def parse_map(pairs: list[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for pair in pairs:
        old, sep, new = pair.partition("=")
        if not sep or not old or not new:
            raise UsageError(
                f"--map takes OLD=NEW (folder names with / between levels), not {pair!r}"
            )
        mapping[old] = new
    return mapping


def parse_day(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise UsageError(f"{option} takes a date as YYYY-MM-DD, not {text!r}") from None
