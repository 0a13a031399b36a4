"""``mailmover providers``: the table, one preset in full, and JSON for scripts."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from mailmover.cli.main import app
from mailmover.providers import get_preset, load_presets

WIDE = {"COLUMNS": "220"}


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["providers", *args], env=WIDE)
    return result.exit_code, result.stdout, result.stderr


def test_the_table_lists_every_preset_with_its_host() -> None:
    code, out, _ = run()
    assert code == 0
    for preset in load_presets().values():
        assert preset.name in out
        if preset.host:
            assert preset.host in out


def test_json_lists_every_preset_as_the_loader_reads_it() -> None:
    code, out, _ = run("--json")
    assert code == 0
    data = json.loads(out)
    presets = load_presets()
    assert sorted(d["name"] for d in data) == sorted(presets)
    for entry in data:
        preset = presets[entry["name"]]
        assert entry["port"] == preset.port
        assert entry["max_message_size"] == preset.max_message_size
        assert entry["auth"] == list(preset.auth)
        assert entry["folders"]["roles"] == {k: list(v) for k, v in preset.folders.roles}


def test_one_preset_in_full() -> None:
    gmail = get_preset("gmail")
    code, out, _ = run("gmail")
    assert code == 0
    assert gmail.title in out
    assert gmail.oauth2 is not None and gmail.oauth2.token_endpoint in out
    for url in gmail.sources:
        assert url in out
    for folder in gmail.virtual_folders:
        assert folder.name in out


def test_one_preset_as_json() -> None:
    code, out, _ = run("microsoft365", "--json")
    assert code == 0
    data = json.loads(out)
    microsoft = get_preset("microsoft365")
    assert data["name"] == "microsoft365"
    assert data["folders"]["roles"]["trash"] == list(microsoft.role_names("\\Trash"))
    assert microsoft.oauth2 is not None
    assert data["oauth2"]["scopes"] == list(microsoft.oauth2.scopes)
    assert data["throttling"]["backoff_hint"] == microsoft.throttling.backoff_hint


def test_an_unknown_name_is_a_usage_error_listing_the_presets() -> None:
    code, out, err = run("hotmail")
    assert code == 2
    assert out == ""
    assert "hotmail" in err
    for name in load_presets():
        assert name in err
