"""The layers of DESIGN.md, read from the imports: each knows nothing above it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "mailmover"

#: package -> packages of mailmover it must not import
FORBIDDEN = {
    "imap": ("engine", "store", "service", "web", "cli"),
    "store": ("engine", "service", "web", "cli"),
    "engine": ("service", "web", "cli"),
    "service": ("web", "cli"),
    "web": ("engine", "imap", "cli"),
}


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_layer_imports_nothing_above_it(package: str) -> None:
    wrong = [
        f"{path.relative_to(SRC)} imports {name}"
        for path in sorted((SRC / package).rglob("*.py"))
        for name in sorted(imported(path))
        if any(name == f"mailmover.{up}" or name.startswith(f"mailmover.{up}.")
               for up in FORBIDDEN[package])
    ]  # fmt: skip
    assert wrong == []
