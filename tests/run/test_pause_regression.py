"""A real slowdown is flagged, the unchanged tree is not (issue 17).

The slow tree is QEMU 10.2.2 with patches/qemu-ds-slow-switchover (a 50 ms sleep right after the source
stops the guest), built by the harness (ccache makes it a rebuild of one file). Three runs into one
reports folder, five repetitions each: default tree, slow tree (history flags the pause regression),
default tree again compared with the first (not flagged).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_harness, store_args

pytestmark = [pytest.mark.docker, pytest.mark.qemu, pytest.mark.slow]
CELL = "upstream-10.2/lean/normal/tcg"


def _run(matrix: str, run_id: str, reports: Path, cache: Path) -> dict:
    done = run_harness(
        "test", "--matrix", f"matrices/{matrix}.yaml", "--cells", CELL, "--repeat", "5",
        *store_args(cache, reports, run_id),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    return json.loads((reports / run_id / "results.json").read_text())


def test_a_real_switchover_delay_is_a_pause_regression(tmp_path: Path, cache_dir: Path) -> None:
    reports = tmp_path / "reports"
    base = _run("default", "1-base", reports, cache_dir)
    slow = _run("slowdown", "2-slow", reports, cache_dir)
    assert base["history"] is None
    (flagged,) = slow["history"]["pause_regressions"]
    assert flagged["cell_id"] == CELL and flagged["p_value"] < 0.01 and flagged["ratio"] > 1.2, flagged
    assert slow["history"]["regressions"] == []  # the verdicts did not change: only the pause did
    series = slow["builds"]["upstream-10.2/lean"]["series"]
    assert [s["status"] for s in series["statuses"]] == ["applied", "applied"]
    _run("default", "3-base", reports, cache_dir)
    control = run_harness(
        "report", "--reports", str(reports), "--run", "3-base", "--baseline", str(reports / "1-base")
    )
    assert control.returncode == 0, control.stdout + control.stderr
    again = json.loads((reports / "3-base" / "results.json").read_text())
    assert again["history"]["baseline"] == "1-base" and again["history"]["pause_regressions"] == []
