"""The container boundary as a test: every import in harness/live is the standard library, qemu.qmp or
harness.live itself (the import-linter contract forbids known packages; this allows only these)."""

from __future__ import annotations

import ast
import sys

from conftest import REPO

LIVE = REPO / "harness" / "live"


def _imports(path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def test_live_imports_only_the_standard_library_and_qemu_qmp():
    files = sorted(LIVE.rglob("*.py"))
    assert len(files) > 20
    strays = []
    for path in files:
        for name in _imports(path):
            top = name.split(".")[0]
            allowed = top in sys.stdlib_module_names or name.startswith(("qemu.qmp", "harness.live"))
            if not allowed:
                strays.append(f"{path.relative_to(REPO)}: {name}")
    assert strays == []


def test_live_has_no_relative_imports_that_could_escape():
    for path in LIVE.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        assert not [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level], path
