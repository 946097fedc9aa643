"""--repeat on real QEMU: one container, N fresh pairs of QEMUs, every sample kept, the logs of one."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
from conftest import run_harness, store_args

pytestmark = [pytest.mark.docker, pytest.mark.qemu]


def test_repeat_keeps_every_sample_and_the_median(tmp_path: Path, cache_dir: Path) -> None:
    cell = "debian-11.1/prebuilt/cpr-reboot/tcg"
    done = run_harness(
        "test", "--matrix", "matrices/smoke.yaml", "--cells", cell, "--repeat", "3",
        *store_args(cache_dir, tmp_path / "reports", "rep"),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    folder = tmp_path / "reports" / "rep" / "results" / "debian-11.1__prebuilt__cpr-reboot__tcg"
    result = json.loads((folder / "result.json").read_text())
    samples = result["samples"]
    assert [s["repetition"] for s in samples] == [1.0, 2.0, 3.0] and all(s["passed"] == 1.0 for s in samples)
    assert all(s["pause_ms"] > 0 and s["state_file_bytes"] > 0 and "migration_ms" in s for s in samples)
    assert result["timings"]["pause_ms"] == pytest.approx(statistics.median(s["pause_ms"] for s in samples))
    assert result["reason"].endswith("in each of 3 repetitions")
    serial = (folder / "serial.log").read_text()
    assert serial.count("CPRGUEST BOOT") == 1  # the logs of one repetition, not three appended
    page = (
        tmp_path / "reports" / "rep" / "cells" / "debian-11.1__prebuilt__cpr-reboot__tcg.html"
    ).read_text()
    assert 'id="samples"' in page
