"""--jobs N runs scenario cells concurrently and gives the same results as a serial run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_harness

pytestmark = [pytest.mark.docker, pytest.mark.qemu]

CELLS = ["debian-11.1/prebuilt/normal/tcg", "debian-11.1/prebuilt/cpr-reboot/tcg",
         "debian-11.1/prebuilt/cpr-transfer/tcg", "debian-10.0/prebuilt/cpr-exec/tcg"]  # fmt: skip


def _outcome(reports: Path, run_id: str) -> dict[str, tuple[str, list[tuple[str, str]]]]:
    out = {}
    for path in (reports / run_id / "results").glob("*/result.json"):
        r = json.loads(path.read_text())
        out[r["cell_id"]] = (r["verdict"], [(c["name"], c["verdict"]) for c in r["checks"]])
    return out


def test_parallel_run_matches_serial(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    for run_id, jobs in (("serial", "1"), ("parallel", "3")):
        done = run_harness("test", "--matrix", "matrices/smoke.yaml", "--reports", str(reports),
                           "--run-id", run_id, "--jobs", jobs, "--cells", *CELLS)  # fmt: skip
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    serial, parallel = _outcome(reports, "serial"), _outcome(reports, "parallel")
    assert set(serial) == set(CELLS) and serial == parallel
    assert serial["debian-10.0/prebuilt/cpr-exec/tcg"][0] == "unsupported"
