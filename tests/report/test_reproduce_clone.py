"""The reproduce command on a cell page works from a second clone of the repository, as written there.

A real smoke cell runs through the CLI; its cell page's reproduce line is read from the HTML, then run
unmodified (``nox -s test -- ...``) in a fresh ``git clone`` of this repository, where nox builds its own
virtualenv. The clone's run folder must hold a new result of the same cell, with the same verdict.
"""

from __future__ import annotations

import html
import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import REPO, run_harness, store_args

CELL = "debian-11.1/prebuilt/normal/tcg"
FOLDER = "debian-11.1__prebuilt__normal__tcg"

pytestmark = [pytest.mark.docker, pytest.mark.qemu, pytest.mark.slow]


def _nox() -> str:
    found = shutil.which("nox")
    if found is None:
        if os.environ.get("CI"):  # .ci/run installs nox: in CI its absence is a failure
            pytest.fail("nox is not on PATH")
        pytest.skip("nox is not installed (pip install 'nox>=2026.10.20')")
    return found


def test_reproduce_line_reruns_the_cell_from_a_second_clone(cache_dir: Path, tmp_path: Path) -> None:
    nox = _nox()
    reports = tmp_path / "reports"
    first = run_harness(
        "test", "--matrix", "matrices/smoke.yaml", "--cells", CELL, *store_args(cache_dir, reports, "first")
    )
    assert first.returncode == 0, first.stdout + first.stderr
    page = (reports / "first" / "cells" / f"{FOLDER}.html").read_text(encoding="utf-8")
    found = re.search(r'<pre id="reproduce">(.*?)</pre>', page, re.S)
    assert found, "no reproduce line on the cell page"
    line = html.unescape(found.group(1)).strip()
    argv = shlex.split(line)
    assert argv[:4] == ["nox", "-s", "test", "--"], line
    assert not any(Path(a).is_absolute() for a in argv), f"a path of this machine in {line!r}"

    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True, timeout=120)
    env = {**os.environ, "CPR_HARNESS_CACHE": str(cache_dir), "CPR_RUN_ID": "second"}
    env.pop("VIRTUAL_ENV", None)  # nox makes its own virtualenv in the clone
    again = subprocess.run([nox, *argv[1:]], cwd=clone, env=env, capture_output=True, text=True, timeout=1200)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    result = json.loads((clone / "reports" / "second" / "results" / FOLDER / "result.json").read_text())
    original = json.loads((reports / "first" / "results" / FOLDER / "result.json").read_text())
    assert result["cell_id"] == CELL and result["verdict"] == original["verdict"] == "pass"
    assert result["started_at"] > original["finished_at"]  # a new run, not a copy
    assert result["reproduce"] == line  # the same command from the clone: nothing machine-specific
    assert sorted(p.name for p in (clone / "reports" / "second" / "results").iterdir()) == [FOLDER]
