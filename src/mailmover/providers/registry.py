"""The shipped presets: load them, find one by name, recognise a server.

Presets are the ``*.toml`` files in ``mailmover/providers/presets``; adding a
provider is adding a file. They are read once per process.
"""

from __future__ import annotations

import functools
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from mailmover.errors import UsageError
from mailmover.providers.model import Preset
from mailmover.providers.schema import parse_preset


def _package_dir() -> Traversable:
    return resources.files("mailmover.providers").joinpath("presets")


def load_presets(directory: Path | Traversable | None = None) -> dict[str, Preset]:
    """Every preset in ``directory`` (default: the shipped ones), by name.

    Raises ``ValueError`` naming the file and key when a file is not a valid preset.
    """
    if directory is None:
        return dict(_shipped())
    return dict(_read(directory))


@functools.cache
def _shipped() -> tuple[tuple[str, Preset], ...]:
    return _read(_package_dir())


def _read(directory: Path | Traversable) -> tuple[tuple[str, Preset], ...]:
    files = sorted(
        (f for f in directory.iterdir() if f.name.endswith(".toml") and f.is_file()),
        key=lambda f: f.name,
    )
    return tuple(
        (preset.name, preset)
        for preset in (parse_preset(f.name, f.read_text(encoding="utf-8")) for f in files)
    )


def get_preset(name: str) -> Preset:
    """The shipped preset called ``name``; ``UsageError`` listing the known names otherwise."""
    presets = load_presets()
    preset = presets.get(name.strip().lower())
    if preset is None:
        raise UsageError(f"unknown provider preset {name!r}; known: {', '.join(sorted(presets))}")
    return preset


def detect(host: str, capabilities: frozenset[str] | None = None) -> Preset | None:
    """The shipped preset for a server, from its host name or else its capabilities.

    Host names match ``host`` and ``host_patterns`` (``*.outlook.com``) without
    regard to case; a marker capability (Gmail's ``X-GM-EXT-1``) identifies a
    provider behind any name. ``None`` when nothing matches.
    """
    presets = load_presets().values()
    for preset in presets:
        if preset.matches_host(host):
            return preset
    if capabilities:
        for preset in presets:
            if preset.matches_capabilities(capabilities):
                return preset
    return None
