"""What a pass is asked to do, as plain data: what a job stores and a worker receives.

``MailboxPair`` names the two sides (no secrets: those come from ``ports.Credentials``);
``PassSettings`` holds every choice of the user. Both turn into JSON-ready dicts and back.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import date
from typing import Any, Literal

from mailmover.config import Endpoint
from mailmover.engine.flags import FlagRewrite
from mailmover.imap.transport import TLSSettings

#: preflight: log in, plan, size, nothing written; prestage: only mail before ``before``;
#: full and delta: everything the destination lacks, flags brought across (a delta is a
#: full pass after an earlier one); retry_errors: only the messages that failed before.
PassKind = Literal["preflight", "prestage", "full", "delta", "retry_errors"]
PASS_KINDS: tuple[PassKind, ...] = ("preflight", "prestage", "full", "delta", "retry_errors")
GmailLabels = Literal["folders", "primary"]


@dataclass(frozen=True)
class PassSettings:
    """Every choice a pass needs beyond the two endpoints; defaults as ``copy`` has them."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    mapping: dict[str, str] = field(default_factory=dict)  # logical path OLD → NEW
    connections: int = 4
    since: date | None = None
    before: date | None = None
    source_preset: str | None = None  # None: recognised from host and capabilities
    dest_preset: str | None = None
    flag_map: dict[str, str] = field(default_factory=dict)
    drop_flags: tuple[str, ...] = ()
    gmail_labels: GmailLabels = "folders"
    retry_for: float = 900.0  # seconds of backoff without progress before giving up
    cap_probe: float = 900.0  # after a provider's daily cap: how often to try again
    timeout: float = 120.0  # seconds a server may stay silent mid-command
    connect_timeout: float = 20.0
    compress: bool | None = None  # None: on unless the server is on loopback
    window: int = 256  # commands in flight per connection
    memory_budget: int = 16 * 1024 * 1024  # message data held at once, whole mailbox
    batch_bytes: int = 4 * 1024 * 1024
    batch_messages: int = 250

    @property
    def flag_rules(self) -> FlagRewrite:
        return FlagRewrite(dict(self.flag_map), frozenset(f.lower() for f in self.drop_flags))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("since", "before"):
            data[key] = data[key].isoformat() if data[key] else None
        data["include"], data["exclude"] = list(self.include), list(self.exclude)
        data["drop_flags"] = list(self.drop_flags)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PassSettings:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for key in ("since", "before"):
            if values.get(key):
                values[key] = date.fromisoformat(values[key])
        for key in ("include", "exclude", "drop_flags"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)


@dataclass(frozen=True)
class MailboxPair:
    """The source and destination of one mailbox; endpoints without secrets."""

    source: Endpoint
    dest: Endpoint

    def to_dict(self) -> dict[str, Any]:
        return {"source": endpoint_dict(self.source), "dest": endpoint_dict(self.dest)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MailboxPair:
        return cls(endpoint_from_dict(data["source"]), endpoint_from_dict(data["dest"]))


def endpoint_dict(endpoint: Endpoint) -> dict[str, Any]:
    """An endpoint as JSON-ready data, never with its secret."""
    return {
        "user": endpoint.user,
        "host": endpoint.host,
        "port": endpoint.port,
        "security": endpoint.security,
        "auth": endpoint.auth,
        "verify": endpoint.tls.verify,
        "ca_file": endpoint.tls.ca_file,
    }


def endpoint_from_dict(data: dict[str, Any]) -> Endpoint:
    return Endpoint(
        user=data["user"],
        host=data["host"],
        port=int(data["port"]),
        security=data["security"],
        tls=TLSSettings(verify=bool(data.get("verify", True)), ca_file=data.get("ca_file")),
        auth=data.get("auth", "login"),
    )
