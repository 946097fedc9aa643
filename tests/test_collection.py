"""Every test file under tests/ is collected: a folder the runner skips would pass silently."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO


def test_every_test_file_is_collected() -> None:
    files = {p.relative_to(REPO).as_posix() for p in (REPO / "tests").rglob("test_*.py")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=REPO, capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    collected = {line.split("::", 1)[0] for line in done.stdout.splitlines() if "::" in line}
    assert files - collected == set(), done.stdout[-2000:] + done.stderr[-2000:]
