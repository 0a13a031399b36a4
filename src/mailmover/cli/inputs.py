"""Turning what the user typed into endpoints with secrets, and clear errors when it is wrong."""

from __future__ import annotations

import getpass
import os
import sys
from datetime import date, datetime
from pathlib import Path

from mailmover.config import Endpoint, parse_endpoint
from mailmover.engine.flags import FlagRewrite
from mailmover.engine.gmail import Policy
from mailmover.errors import UsageError


def read_secret(endpoint: Endpoint, *, env: str, file: Path | None, label: str) -> Endpoint:
    """The endpoint with its password: from ``file``, then ``env``, then a prompt on a terminal."""
    if file is not None:
        try:
            secret = file.read_text(encoding="utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            raise UsageError(f"the {label} password file {str(file)!r} is not UTF-8 text") from None
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


def credentials(endpoint: Endpoint, *, env: str, file: Path | None, label: str) -> Endpoint:
    """The endpoint ready to log in: a password, an access token, or a stored OAuth2 token.

    With ``?auth=xoauth2`` or ``?auth=oauthbearer`` a token given like a password
    (environment or file) is used as an access token; without one, the refresh
    token that ``mailmover auth`` stored for the user is used and kept fresh.
    """
    if endpoint.auth not in ("xoauth2", "oauthbearer"):
        return read_secret(endpoint, env=env, file=file, label=label)
    from mailmover.oauth import TokenStore, endpoint_with_oauth

    if file is not None or os.environ.get(env):
        given = read_secret(endpoint, env=env, file=file, label=label)
        assert given.secret is not None
        return endpoint_with_oauth(given, given.secret)
    return endpoint_with_oauth(endpoint, TokenStore.open())


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


def parse_rules(pairs: list[str], drop: list[str]) -> FlagRewrite:
    mapping: dict[str, str] = {}
    for pair in pairs:
        old, sep, new = pair.partition("=")
        if not sep or not old.strip() or not new.strip() or " " in new.strip():
            raise UsageError(f"--flag-map takes OLD=NEW (two flags), not {pair!r}")
        mapping[old.strip()] = new.strip()
    names = {flag.strip().lower() for item in drop for flag in item.split(",") if flag.strip()}
    return FlagRewrite(mapping, frozenset(names))


def endpoints(
    source: str,
    dest: str,
    *,
    ca_file: Path | None,
    insecure: bool,
    source_password_file: Path | None,
    dest_password_file: Path | None,
) -> tuple[Endpoint, Endpoint]:
    """Both sides of a run, ready to log in."""
    src = credentials(
        endpoint(source, ca_file=ca_file, insecure=insecure),
        env="MAILMOVER_SOURCE_PASSWORD", file=source_password_file, label="source",
    )  # fmt: skip
    dst = credentials(
        endpoint(dest, ca_file=ca_file, insecure=insecure),
        env="MAILMOVER_DEST_PASSWORD", file=dest_password_file, label="dest",
    )  # fmt: skip
    return src, dst


def output_file(path: Path | None, option: str) -> Path | None:
    """A file the run will write: refused before connecting when it cannot be one."""
    if path is None:
        return None
    if path.is_dir():
        raise UsageError(f"{option} {str(path)!r} is a directory; give a file name")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"{option} {str(path)!r}: the folder {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UsageError(f"{option} {str(path)!r} cannot be written")
    return path


def parse_policy(text: str) -> Policy:
    if text == "folders":
        return "folders"
    if text == "primary":
        return "primary"
    raise UsageError(f"--gmail-labels takes 'folders' or 'primary', not {text!r}")


def parse_day(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise UsageError(f"{option} takes a date as YYYY-MM-DD, not {text!r}") from None
