"""One mailbox moved from form values: the web wizard's service.

The wizard names each side by a provider preset (or a custom server) and a user,
gives a password or an OAuth2 sign-in (``service.credentials`` specs), runs
``preflight`` (logins, folders with counts and sizes, the destination's limits, the
folders that will be renamed), lets the user choose folders, dates and a folder map,
then ``create_transfer`` makes a one-mailbox job, queued, with its credentials
encrypted.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any, Final, Literal

from mailmover.config import Endpoint, parse_endpoint
from mailmover.engine.ports import SideName as SideName  # the web's name for a side, too
from mailmover.engine.settings import PassSettings
from mailmover.errors import UsageError
from mailmover.providers import get_preset, load_presets
from mailmover.service.batchfile import BatchRow
from mailmover.service.jobs import JobSpec, create_job_from_batch
from mailmover.service.logins import LoginCheck, try_login
from mailmover.service.preflight import preflight_pass
from mailmover.service.secrets import SecretBox
from mailmover.store.database import Store

Security = Literal["tls", "starttls", "plain"]
CUSTOM: Final = "custom"
#: OAuth2 providers (mailmover.oauth presets) by provider preset
OAUTH_PROVIDERS: Final = {"gmail": "google", "microsoft365": "microsoft"}


@dataclass(frozen=True)
class Provider:
    """A preset as the wizard offers it."""

    name: str
    title: str
    host: str | None  # None: the user gives the server
    port: int
    security: str
    app_password: bool
    oauth: str | None  # the OAuth2 provider that signs its users in, if any
    notes: str


def providers() -> list[Provider]:
    """Every shipped preset, those with a fixed host first, then by title."""
    found = [
        Provider(p.name, p.title, p.host, p.port, p.security, p.app_password,
                 OAUTH_PROVIDERS.get(p.name), p.notes)
        for p in load_presets().values()
    ]  # fmt: skip
    return sorted(found, key=lambda p: (p.host is None, p.title.lower()))


@dataclass(frozen=True)
class SideForm:
    """One side as the form gives it: a preset or a custom server, and the user."""

    provider: str
    user: str
    host: str = ""
    port: int | None = None
    security: Security = "tls"
    verify: bool = True
    ca_file: str | None = None

    def endpoint(self, auth: str | None = None) -> Endpoint:
        """The endpoint; ``UsageError`` in words for what is missing or wrong."""
        user = self.user.strip()
        if not user:
            raise UsageError("give the user name (often the whole email address)")
        host, port, security = self.host.strip(), self.port, self.security
        if self.provider != CUSTOM:
            preset = get_preset(self.provider)
            if preset.host and not host:
                host, port, security = preset.host, port or preset.port, preset.security
            port = port or preset.port
        if not host:
            raise UsageError("give the server's name (for example mail.example.com)")
        scheme = "imaps" if security == "tls" else "imap"
        query = "?tls=none" if security == "plain" else ""
        user_part = user.replace("%", "%25").replace("@", "%40").replace("/", "%2F")
        text = f"{scheme}://{user_part}@{host}{f':{port}' if port else ''}{query}"
        endpoint = parse_endpoint(text, ca_file=self.ca_file, verify=self.verify)
        if auth is not None:
            endpoint = replace(endpoint, auth=auth)
        return endpoint

    @property
    def preset(self) -> str | None:
        """The preset named for the pass (None: recognised from the server)."""
        return None if self.provider == CUSTOM else self.provider


def side_endpoint(form: SideForm, spec: dict[str, Any]) -> Endpoint:
    """The endpoint for a side with its credentials (an OAuth2 sign-in logs in by XOAUTH2)."""
    return form.endpoint("xoauth2" if spec.get("kind") == "oauth" else None)


@dataclass(frozen=True)
class Choices:
    """What the user chose after the pre-flight."""

    exclude: tuple[str, ...] = ()  # folders left out (logical names, exact)
    mapping: dict[str, str] = field(default_factory=dict)
    since: date | None = None
    before: date | None = None

    def settings(self, source: SideForm, dest: SideForm) -> PassSettings:
        if self.since and self.before and self.since >= self.before:
            raise UsageError("the first date must come before the last one")
        return PassSettings(
            exclude=tuple(literal(name) for name in self.exclude),
            mapping=dict(self.mapping),
            since=self.since,
            before=self.before,
            source_preset=source.preset,
            dest_preset=dest.preset,
        )


def parse_mapping(text: str) -> dict[str, str]:
    """``OLD = NEW`` lines (folder paths with ``/``); ``UsageError`` naming the bad line."""
    mapping: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        old, sep, new = line.partition("=")
        old, new = old.strip().strip("/"), new.strip().strip("/")
        if not sep or not old or not new:
            raise UsageError(f"folder map line {number}: write OLD = NEW, not {line!r}")
        if old in mapping:
            raise UsageError(f"folder map line {number}: {old!r} is mapped twice")
        mapping[old] = new
    return mapping


def literal(name: str) -> str:
    """A folder pattern matching exactly ``name`` (and its subfolders)."""
    return re.sub(r"([*?\[])", r"[\1]", name)


# -- pre-flight -------------------------------------------------------------------------


@dataclass(frozen=True)
class FolderInfo:
    """One source folder and where it goes."""

    name: str  # the logical path, ``/`` between levels: what choices name
    source_name: str
    dest_name: str
    messages: int
    bytes: int
    note: str | None
    dest_exists: bool

    @property
    def renamed(self) -> bool:
        return self.note is not None and self.dest_name != self.source_name


@dataclass(frozen=True)
class Limits:
    """What the destination takes, from its preset and what the server says."""

    preset: str
    max_message_size: int | None
    appendlimit: int | None
    max_connections: int | None
    upload_per_day: int | None
    max_folder_messages: int | None


@dataclass(frozen=True)
class Preflight:
    """The pre-flight result the wizard shows."""

    logins: dict[SideName, str | None]  # None: logged in; else why not
    reason: str | None = None  # the pass failed after logging in
    folders: tuple[FolderInfo, ...] = ()
    limits: Limits | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None and all(r is None for r in self.logins.values())

    @property
    def renamed(self) -> list[FolderInfo]:
        return [f for f in self.folders if f.renamed]

    @property
    def messages(self) -> int:
        return sum(f.messages for f in self.folders)

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.folders)


async def preflight(
    source: SideForm,
    dest: SideForm,
    specs: dict[SideName, dict[str, Any]],
    choices: Choices | None = None,
) -> Preflight:
    """Log in to both sides, then plan and size the folders; nothing is written anywhere."""
    ends = {"source": side_endpoint(source, specs["source"]),
            "dest": side_endpoint(dest, specs["dest"])}  # fmt: skip
    checks: tuple[LoginCheck, LoginCheck] = await asyncio.gather(
        try_login(ends["source"], specs["source"]), try_login(ends["dest"], specs["dest"])
    )
    logins: dict[SideName, str | None] = {"source": checks[0].reason, "dest": checks[1].reason}
    if not all(c.ok for c in checks):
        return Preflight(logins)
    settings = (choices or Choices()).settings(source, dest)
    report = await preflight_pass(ends["source"], ends["dest"], settings, specs)
    if report.outcome == "failed":
        return Preflight(logins, report.reason or "the pre-flight pass failed")
    folders = tuple(
        FolderInfo(
            name="/".join(plan.path),
            source_name=plan.source_name,
            dest_name=plan.dest_name,
            messages=report.sizes.get(plan.source_name, (0, 0))[0],
            bytes=report.sizes.get(plan.source_name, (0, 0))[1],
            note=plan.note,
            dest_exists=plan.dest_exists,
        )
        for plan in report.plans
    )
    preset = get_preset(report.dest_preset or "generic")
    limits = Limits(
        preset=preset.title,
        max_message_size=preset.max_message_size,
        appendlimit=checks[1].appendlimit,
        max_connections=preset.max_connections,
        upload_per_day=preset.caps.upload_per_day,
        max_folder_messages=preset.caps.max_folder_messages,
    )
    return Preflight(logins, None, folders, limits)


# -- creating ---------------------------------------------------------------------------


def create_transfer(
    store: Store,
    box: SecretBox,
    source: SideForm,
    dest: SideForm,
    specs: dict[SideName, dict[str, Any]],
    choices: Choices,
    *,
    owner: str | None = None,
    owner_id: int | None = None,
    name: str | None = None,
) -> str:
    """A job of one mailbox whose pre-flight passed, queued for its full pass; its name."""
    src, dst = side_endpoint(source, specs["source"]), side_endpoint(dest, specs["dest"])
    row = BatchRow(1, src, dst, source_login=specs["source"], dest_login=specs["dest"])
    spec = JobSpec(name=name or job_name(src.user.split("@")[0], "transfer"), owner=owner,
                   owner_id=owner_id, settings=choices.settings(source, dest),
                   logins_checked=True)  # fmt: skip
    return create_job_from_batch(store, box, [row], spec)


def job_name(text: str, default: str) -> str:
    """A fresh job name made from ``text`` (a user's name, a file's): ``alice-3f9a1c``."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-._")[:40] or default
    return f"{base}-{secrets.token_hex(3)}"
