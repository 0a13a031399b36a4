"""imap/proto/ is sans-IO: none of its modules imports networking or an event loop."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import mailmover.imap.proto

FORBIDDEN = {"asyncio", "socket", "ssl", "selectors"}
PROTO_DIR = Path(mailmover.imap.proto.__file__).parent
MODULES = sorted(PROTO_DIR.glob("*.py"))


def imported_roots(source: str) -> set[str]:
    """Top-level package names of every import statement, however deeply nested."""
    roots = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_the_package_has_modules() -> None:
    assert {"parser.py", "responses.py", "commands.py"} <= {m.name for m in MODULES}


@pytest.mark.parametrize("module", MODULES, ids=[m.name for m in MODULES])
def test_no_io_imports(module: Path) -> None:
    assert imported_roots(module.read_text(encoding="utf-8")) & FORBIDDEN == set()


def test_the_check_sees_nested_and_from_imports() -> None:
    source = "import os\nif x:\n    from asyncio import sleep\ndef f():\n    import ssl as s\n"
    assert imported_roots(source) == {"os", "asyncio", "ssl"}
