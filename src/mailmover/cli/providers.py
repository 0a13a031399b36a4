"""``mailmover providers``: the provider presets as a table, as JSON, or one in full."""

from __future__ import annotations

import dataclasses
import json
import sys
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from mailmover.errors import UsageError
from mailmover.providers import Preset, get_preset, load_presets


def preset_json(preset: Preset) -> dict[str, Any]:
    """A preset as plain JSON data (pairs become objects, ``None`` stays ``null``)."""
    data = dataclasses.asdict(preset)
    data["folders"]["roles"] = {key: list(names) for key, names in preset.folders.roles}
    if preset.oauth2 is not None:
        data["oauth2"]["authorize_params"] = dict(preset.oauth2.authorize_params)
    return data


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:,.1f} {unit}"
    return f"{n:,} B"


def _per_day(n: int) -> str:
    return f"{n / 1e9:,.1f} GB" if n >= 1e9 else f"{n / 1e6:,.0f} MB"


def _caps(preset: Preset) -> str:
    parts = []
    if preset.caps.download_per_day:
        parts.append(f"{_per_day(preset.caps.download_per_day)}/day down")
    if preset.caps.upload_per_day:
        parts.append(f"{_per_day(preset.caps.upload_per_day)}/day up")
    if preset.caps.max_folder_messages:
        parts.append(f"{preset.caps.max_folder_messages:,} msgs/folder")
    return ", ".join(parts) or "-"


def _auth(preset: Preset) -> str:
    text = " ".join(preset.auth)
    return text + " (app password)" if preset.app_password else text


def _auth_short(preset: Preset) -> str:
    kinds = []
    if {"xoauth2", "oauthbearer"} & set(preset.auth):
        kinds.append("OAuth2")
    if {"login", "plain"} & set(preset.auth):
        kinds.append("app password" if preset.app_password else "password")
    return ", ".join(kinds)


def _list_table(presets: list[Preset]) -> Table:
    table = Table(title="provider presets", box=box.SIMPLE_HEAD)
    table.add_column("Name", no_wrap=True)
    table.add_column("Title")
    table.add_column("Host")
    table.add_column("Port")
    table.add_column("Auth")
    table.add_column("Max size", justify="right")
    table.add_column("Conns", justify="right")
    table.add_column("Caps")
    for p in presets:
        table.add_row(
            p.name,
            p.title,
            p.host or "-",
            f"{p.port}/{p.security}",
            _auth_short(p),
            _size(p.max_message_size),
            str(p.max_connections) if p.max_connections else "-",
            _caps(p),
        )
    return table


def _show(preset: Preset, console: Console) -> None:
    rows: list[tuple[str, str]] = [
        ("name", preset.name),
        ("host", preset.host or "- (give it on the command line)"),
        ("also matches", ", ".join(preset.host_patterns) or "-"),
        ("capabilities", ", ".join(preset.capabilities) or "-"),
        ("port", f"{preset.port} ({preset.security})"),
        ("auth", _auth(preset)),
        ("max connections", str(preset.max_connections or "-")),
        ("max message size", _size(preset.max_message_size)),
        ("caps", _caps(preset)),
        ("max line length", str(preset.caps.max_line_length or "-")),
        ("labels", "yes" if preset.labels else "no"),
    ]
    if preset.oauth2 is not None:
        o = preset.oauth2
        rows += [
            ("oauth2 authorize", o.authorization_endpoint),
            ("oauth2 token", o.token_endpoint),
            ("oauth2 device", o.device_endpoint or "-"),
            ("oauth2 scopes", " ".join(o.scopes)),
            ("oauth2 flow", o.flow),
        ]
    f = preset.folders
    rows += [
        ("separator", f.separator or "- (from LIST)"),
        ("prefix", "-" if f.prefix is None else repr(f.prefix)),
        ("case-insensitive", "yes" if f.case_insensitive else "no"),
        ("reserved names", ", ".join(f.reserved) or "-"),
        ("refused characters", f.invalid_chars or "-"),
    ]
    rows += [(f"folder {key}", ", ".join(names)) for key, names in f.roles]
    flags = preset.flags
    keywords = {True: "yes", False: "no", None: "unknown (PERMANENTFLAGS)"}[flags.keywords]
    rows += [
        ("keywords", keywords),
        ("refused flags", " ".join(flags.refused) or "-"),
        ("set after APPEND", " ".join(flags.set_after_append) or "-"),
    ]
    t = preset.throttling
    if t.patterns or t.quota_patterns:
        rows += [
            ("throttle replies", " | ".join(t.patterns) or "-"),
            ("daily-cap replies", " | ".join(t.quota_patterns) or "-"),
            ("default backoff", f"{t.default_backoff:g} s"),
        ]
    for v in preset.virtual_folders:
        what = ", ".join(x for x in (v.special_use, f"= {v.flag}" if v.flag else None) if x)
        rows.append(("virtual folder", f"{v.name} {what}".strip()))
    if preset.admin_login is not None:
        a = preset.admin_login
        rows.append(("admin login", " ".join(x for x in (a.method, a.form, a.note) if x)))
    grid = Table(title=preset.title, show_header=False)
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    for key, value in rows:
        grid.add_row(key, value)
    console.print(grid)
    for note in (preset.notes, preset.flags.notes):
        if note:
            console.print(note, highlight=False)
    console.print("sources:")
    for url in preset.sources:
        console.print(f"  {url}", highlight=False, soft_wrap=True)


def providers_command(
    name: Annotated[str | None, typer.Argument(help="Show this preset in full")] = None,
    json_: Annotated[bool, typer.Option("--json", help="JSON on stdout")] = False,
) -> None:
    """List the provider presets (host, port, login, limits), or show one in full."""
    if name is not None:
        try:
            preset = get_preset(name)
        except UsageError as exc:
            print(f"mailmover: {exc.message}", file=sys.stderr)
            raise typer.Exit(exc.exit_code) from None
        if json_:
            print(json.dumps(preset_json(preset), indent=2))
        else:
            _show(preset, Console())
        return
    presets = sorted(load_presets().values(), key=lambda p: p.name)
    if json_:
        print(json.dumps([preset_json(p) for p in presets], indent=2))
    else:
        Console().print(_list_table(presets))
