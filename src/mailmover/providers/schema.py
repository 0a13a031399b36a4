"""Read one preset file strictly: every key known, every value of its type.

A misspelt key, a string where a number belongs or a missing ``port`` is a
``ValueError`` that names the file and the key (``gmail.toml: folders.sepparator:
unknown key``), so a typo in a new preset fails the test suite instead of being
silently ignored.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

from mailmover.providers.model import (
    ROLE_KEYS,
    AdminLogin,
    Caps,
    FlagRules,
    FolderRules,
    OAuth2Config,
    Preset,
    Throttling,
    VirtualFolder,
)

T = TypeVar("T")

AUTH_METHODS = ("login", "plain", "xoauth2", "oauthbearer")
_OAUTH_METHODS = {"xoauth2", "oauthbearer"}
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")
_FLAG = re.compile(r"\\?[!#-'*+\-./0-9:<-Z^-z|~]+")  # RFC 9051 flag: atom, optionally \-prefixed


class _Table:
    """One TOML table being read: takes keys off it and complains about the rest."""

    def __init__(self, file: str, data: Mapping[str, Any], path: str = "") -> None:
        self.file = file
        self.data = dict(data)
        self.path = path

    def where(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def fail(self, key: str, problem: str) -> ValueError:
        return ValueError(f"{self.file}: {self.where(key)}: {problem}")

    def take(self, key: str, kind: type[T], *, required: bool = False) -> T | None:
        if key not in self.data:
            if required:
                raise self.fail(key, "missing required key")
            return None
        value = self.data.pop(key)
        # bool is an int in Python, not in TOML: keep them apart.
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            raise self.fail(key, f"expected {_kind(kind)}, got {_describe(value)}")
        return cast(T, value)

    def need(self, key: str, kind: type[T]) -> T:
        value = self.take(key, kind, required=True)
        assert value is not None
        return value

    def strings(self, key: str, *, required: bool = False) -> tuple[str, ...]:
        values = self.take(key, list, required=required)
        if values is None:
            return ()
        for i, item in enumerate(values):
            if not isinstance(item, str):
                raise self.fail(f"{key}[{i}]", f"expected a string, got {_describe(item)}")
        return tuple(values)

    def positive(self, key: str) -> int | None:
        value = self.take(key, int)
        if value is not None and value <= 0:
            raise self.fail(key, f"must be positive, got {value}")
        return value

    def table(self, key: str) -> _Table | None:
        value = self.take(key, dict)
        return None if value is None else _Table(self.file, value, self.where(key))

    def tables(self, key: str) -> list[_Table]:
        values = self.take(key, list)
        if values is None:
            return []
        found = []
        for i, item in enumerate(values):
            if not isinstance(item, dict):
                raise self.fail(f"{key}[{i}]", f"expected a table, got {_describe(item)}")
            found.append(_Table(self.file, item, f"{self.where(key)}[{i}]"))
        return found

    def choice(self, key: str, allowed: tuple[str, ...], default: str | None = None) -> str:
        value = self.take(key, str, required=default is None)
        if value is None:
            assert default is not None
            return default
        if value not in allowed:
            raise self.fail(key, f"must be one of {', '.join(allowed)}; got {value!r}")
        return value

    def done(self) -> None:
        """Every key must have been taken."""
        for key in self.data:
            raise self.fail(key, "unknown key")


def _kind(kind: type) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(
        kind, "an array" if kind is list else "a table"
    )


def _describe(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str | int | float):
        return f"{type(value).__name__} {value!r}"
    return type(value).__name__  # TOML dates and times


def _regexes(table: _Table, key: str) -> tuple[str, ...]:
    patterns = table.strings(key)
    for i, pattern in enumerate(patterns):
        try:
            re.compile(pattern)
        except re.error as exc:
            raise table.fail(f"{key}[{i}]", f"not a regular expression: {exc}") from None
    return patterns


def _flags(table: _Table, key: str) -> tuple[str, ...]:
    flags = table.strings(key)
    for i, flag in enumerate(flags):
        if not _FLAG.fullmatch(flag):
            raise table.fail(f"{key}[{i}]", f"not an IMAP flag: {flag!r}")
    return flags


def _urls(table: _Table, key: str, *, required: bool = False) -> tuple[str, ...]:
    urls = table.strings(key, required=required)
    for i, url in enumerate(urls):
        if not url.startswith("https://") and not url.startswith("http://"):
            raise table.fail(f"{key}[{i}]", f"not an http(s) URL: {url!r}")
    return urls


def _oauth2(t: _Table) -> OAuth2Config:
    endpoints = {
        "authorization_endpoint": t.take("authorization_endpoint", str, required=True),
        "token_endpoint": t.take("token_endpoint", str, required=True),
        "device_endpoint": t.take("device_endpoint", str),
    }
    for key, url in endpoints.items():
        if url is not None and not url.startswith("https://"):
            raise t.fail(key, f"must be an https URL, got {url!r}")
    scopes = t.strings("scopes", required=True)
    if not scopes:
        raise t.fail("scopes", "must name at least one scope")
    flow = t.choice("flow", ("browser", "device"), default="browser")
    if flow == "device" and endpoints["device_endpoint"] is None:
        raise t.fail("flow", "device flow needs a device_endpoint")
    params = t.table("authorize_params")
    pairs: list[tuple[str, str]] = []
    if params is not None:
        for key in list(params.data):
            pairs.append((key, params.need(key, str)))
        params.done()
    config = OAuth2Config(
        authorization_endpoint=cast(str, endpoints["authorization_endpoint"]),
        token_endpoint=cast(str, endpoints["token_endpoint"]),
        device_endpoint=endpoints["device_endpoint"],
        scopes=scopes,
        flow=cast(Any, flow),
        authorize_params=tuple(pairs),
        notes=t.take("notes", str) or "",
    )
    t.done()
    return config


def _caps(t: _Table) -> Caps:
    caps = Caps(
        download_per_day=t.positive("download_per_day"),
        upload_per_day=t.positive("upload_per_day"),
        max_folder_messages=t.positive("max_folder_messages"),
        max_line_length=t.positive("max_line_length"),
    )
    t.done()
    return caps


def _folders(t: _Table) -> FolderRules:
    separator = t.take("separator", str)
    if separator is not None and len(separator) != 1:
        raise t.fail("separator", f"must be one character, got {separator!r}")
    roles: list[tuple[str, tuple[str, ...]]] = []
    role_table = t.table("roles")
    if role_table is not None:
        for key in ROLE_KEYS.values():
            names = role_table.strings(key)
            if names:
                roles.append((key, names))
        role_table.done()
    rules = FolderRules(
        separator=separator,
        prefix=t.take("prefix", str),
        case_insensitive=bool(t.take("case_insensitive", bool)),
        reserved=t.strings("reserved"),
        invalid_chars=t.take("invalid_chars", str) or "",
        no_edge_whitespace=bool(t.take("no_edge_whitespace", bool)),
        max_name_length=t.positive("max_name_length"),
        roles=tuple(roles),
    )
    t.done()
    return rules


def _flag_rules(t: _Table) -> FlagRules:
    rules = FlagRules(
        keywords=t.take("keywords", bool),
        refused=_flags(t, "refused"),
        set_after_append=_flags(t, "set_after_append"),
        notes=t.take("notes", str) or "",
    )
    t.done()
    return rules


def _throttling(t: _Table) -> Throttling:
    hint = t.take("backoff_hint", str)
    if hint is not None:
        try:
            groups = re.compile(hint).groupindex
        except re.error as exc:
            raise t.fail("backoff_hint", f"not a regular expression: {exc}") from None
        if not {"ms", "s"} & set(groups):
            raise t.fail("backoff_hint", "needs a named group (?P<ms>...) or (?P<s>...)")
    default_backoff = t.take("default_backoff", float)
    if default_backoff is not None and default_backoff < 0:
        raise t.fail("default_backoff", f"must not be negative, got {default_backoff}")
    throttling = Throttling(
        patterns=_regexes(t, "patterns"),
        quota_patterns=_regexes(t, "quota_patterns"),
        backoff_hint=hint,
        default_backoff=30.0 if default_backoff is None else default_backoff,
        quota_pause=t.positive("quota_pause"),
    )
    t.done()
    return throttling


def _virtual_folder(t: _Table) -> VirtualFolder:
    folder = VirtualFolder(
        name=t.need("name", str),
        special_use=t.take("special_use", str),
        flag=t.take("flag", str),
    )
    if folder.flag is not None and not _FLAG.fullmatch(folder.flag):
        raise t.fail("flag", f"not an IMAP flag: {folder.flag!r}")
    t.done()
    return folder


def _admin_login(t: _Table) -> AdminLogin:
    methods = ("authzid", "login-form", "master-user", "oauth2-delegation", "unknown")
    method = t.choice("method", methods)
    form = t.take("form", str)
    templated = form is not None and "{admin}" in form and "{user}" in form
    if method in ("login-form", "master-user") and not templated:
        raise t.fail("form", f"{method} needs a form naming {{admin}} and {{user}}")
    login = AdminLogin(method=cast(Any, method), form=form, note=t.take("note", str) or "")
    t.done()
    return login


def _optional(t: _Table, key: str, read: Callable[[_Table], T]) -> T | None:
    sub = t.table(key)
    return None if sub is None else read(sub)


def parse_preset(file: str, text: str) -> Preset:
    """Build a ``Preset`` from the TOML ``text`` of ``file`` (named ``<name>.toml``)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{file}: not valid TOML: {exc}") from None
    t = _Table(file, data)
    name = t.need("name", str)
    if not _NAME.fullmatch(name):
        raise t.fail("name", f"must be lower-case letters, digits, - or _; got {name!r}")
    stem = file.rsplit("/", 1)[-1].removesuffix(".toml")
    if name != stem:
        raise t.fail("name", f"is {name!r} but the file is {stem}.toml")
    port = t.need("port", int)
    if not 0 < port < 65536:
        raise t.fail("port", f"must be 1-65535, got {port}")
    auth = t.strings("auth", required=True)
    if not auth:
        raise t.fail("auth", "must name at least one method")
    for i, method in enumerate(auth):
        if method not in AUTH_METHODS:
            raise t.fail(f"auth[{i}]", f"must be one of {', '.join(AUTH_METHODS)}; got {method!r}")
    preset = Preset(
        name=name,
        title=t.need("title", str),
        host=t.take("host", str),
        host_patterns=t.strings("host_patterns"),
        capabilities=t.strings("capabilities"),
        port=port,
        security=cast(Any, t.choice("security", ("tls", "starttls"))),
        auth=auth,
        app_password=bool(t.take("app_password", bool)),
        max_connections=t.positive("max_connections"),
        max_message_size=t.positive("max_message_size"),
        labels=bool(t.take("labels", bool)),
        notes=t.take("notes", str) or "",
        sources=_urls(t, "sources", required=True),
        oauth2=_optional(t, "oauth2", _oauth2),
        caps=_optional(t, "caps", _caps) or Caps(),
        folders=_optional(t, "folders", _folders) or FolderRules(),
        flags=_optional(t, "flags", _flag_rules) or FlagRules(),
        throttling=_optional(t, "throttling", _throttling) or Throttling(),
        virtual_folders=tuple(_virtual_folder(v) for v in t.tables("virtual_folders")),
        admin_login=_optional(t, "admin_login", _admin_login),
    )
    t.done()
    if not preset.sources:
        raise t.fail("sources", "must list at least one URL backing the preset")
    if _OAUTH_METHODS & set(auth) and preset.oauth2 is None:
        raise t.fail("oauth2", "auth names an OAuth2 mechanism but there is no [oauth2] table")
    return preset
